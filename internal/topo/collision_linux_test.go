package topo_test

import (
	"context"
	"os"
	"testing"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// Attack (issue 37, 4): a namespace entered the teardown list (and stayed
// in the journal) before it was created, so a build whose name was taken
// deleted a namespace it did not create. Now a name that could not be
// created is neither torn down nor left in the journal.
func TestBuildNeverDeletesANamespaceItDidNotCreate(t *testing.T) {
	testutil.RequireRoot(t)
	tp := topo.Default()
	prefix := testutil.UniqueName("latlab-t")
	taken := prefix + "-" + tp.Base.Namespaces[0]
	if err := topo.CreateNetNS(taken); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.DeleteNetNS(taken) })
	dir := t.TempDir()
	j, err := journal.Create(dir, prefix, "test")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := topo.Build(context.Background(), tp, topo.BuildOptions{Prefix: prefix, Modes: []string{"host"}, Journal: j})
	if err == nil {
		lab.Teardown()
		t.Fatalf("build over a taken namespace name succeeded")
	}
	if _, err := os.Stat(topo.NetNSPath(taken)); err != nil {
		t.Fatalf("the namespace that was there before the build is gone: %v", err)
	}
	f, err := os.Open(j.Path())
	if os.IsNotExist(err) {
		return // the failed build tore down what it made and removed its journal
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, _, err := journal.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name == taken {
			t.Errorf("journal still lists %s, which the build did not create: a sweep would delete it", taken)
		}
	}
	j.Remove()
}
