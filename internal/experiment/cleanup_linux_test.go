package experiment

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// Attack (issue 37, 4): the offload undo handler checked only that an entry
// and its snapshot agreed, so a journal naming the host's namespace (or any
// other) made `latlab cleanup` change devices latlab never touched. Now an
// entry is restored only in a namespace with latlab's prefix, or when the
// run journalled --allow-host-nic; anything else is refused and its journal
// kept. A genuine entry (a latlab- namespace) is still restored.
func TestCleanupRestoresOffloadsOnlyWhereLatlabMayTouch(t *testing.T) {
	testutil.RequireRoot(t)
	ns := existingVeth(t) // latlab-t-…, created by the test
	c, err := offload.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot("mine0")
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	sweep := func(e journal.Entry) (journal.SweepResult, error, string) {
		dir := t.TempDir()
		j, err := journal.Create(dir, "latlab-cafe01", "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Record(e); err != nil {
			t.Fatal(err)
		}
		path := j.Path()
		// The journal's owner dies: a copy without the lock stands in.
		b, _ := os.ReadFile(path)
		j.Remove()
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := journal.Sweep(dir, journal.SweepOptions{IncludeKept: true, Handlers: UndoHandlers()})
		return res, err, path
	}
	forged := func(ns, dev string, allowHost bool) journal.Entry {
		s := *snap
		s.NetNS, s.Dev = ns, dev
		b, _ := json.Marshal(offloadRecord{Snapshot: &s, AllowHostNIC: allowHost})
		return journal.Entry{Kind: KindOffload, Name: dev, NS: ns, Data: b}
	}
	for name, e := range map[string]journal.Entry{
		"the host's namespace":       forged("", "lo", false),
		"PID 1's namespace":          forged("/proc/1/ns/net", "lo", false),
		"a namespace not latlab's":   forged(topo.NetNSPath("other-ns"), "eth0", false),
		"a path dressed as latlab's": forged(topo.NetNSPath("latlab-x")+"/../other", "eth0", false),
	} {
		res, err, path := sweep(e)
		if err == nil || !strings.Contains(err.Error(), "refusing") || len(res.Undone) != 0 {
			t.Errorf("%s: sweep %+v, %v: want the entry refused", name, res, err)
		}
		if _, serr := os.Stat(path); serr != nil {
			t.Errorf("%s: journal not kept after a refusal: %v", name, serr)
		}
	}
	// The real thing: TSO turned off in the lab's namespace is put back.
	if _, err := offload.Set(ns, "mine0", []offload.Setting{{Name: "tso", On: false}}); err != nil {
		t.Fatal(err)
	}
	if res, err, _ := sweep(forged(ns, "mine0", false)); err != nil || len(res.Undone) != 1 {
		t.Fatalf("genuine entry: %+v %v", res, err)
	}
	if !tso(t, ns, "mine0") {
		t.Errorf("genuine entry in a latlab namespace was not restored")
	}
}
