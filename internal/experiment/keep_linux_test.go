package experiment

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
)

// A --keep run restores its pre-existing interfaces at the end and marks
// them undone: the kept journal lists only the lab's namespaces, so a
// later cleanup does not revert a change made to the interface after the
// run (to the run's stale snapshot).
func TestKeptJournalHoldsNoRestoredOffloads(t *testing.T) {
	testutil.RequireRoot(t)
	ns := existingVeth(t)
	seg, _ := offload.ParsePreset("seg-off")
	dir := t.TempDir()
	spec := LabSpec{
		Modes: []string{"host"}, Workloads: []wire.Workload{wire.UDPRR},
		Offloads: []offload.Preset{seg}, Interfaces: []Target{{NetNS: ns, Dev: "mine0"}},
		Trials: 1, Duration: 60 * time.Millisecond, JournalDir: dir, Keep: true, NoCalibrate: true,
	}
	out, err := RunLab(context.Background(), spec, nil)
	if out != nil && out.Prefix != "" {
		t.Cleanup(func() {
			for _, n := range topo.NetNSNames(out.Prefix + "-") {
				topo.DeleteNetNS(n)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if !out.Kept || !tso(t, ns, "mine0") {
		t.Fatalf("kept %v, TSO restored %v", out.Kept, tso(t, ns, "mine0"))
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.journal"))
	if len(paths) != 1 {
		t.Fatalf("journals %v, want the kept one", paths)
	}
	f, err := os.Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	entries, kept, err := journal.Read(f)
	f.Close()
	if err != nil || !kept {
		t.Fatalf("kept journal: kept %v %v", kept, err)
	}
	for _, e := range entries {
		if e.Kind != topo.KindNetNS {
			t.Errorf("kept journal still lists %s %s (%s)", e.Kind, e.Name, e.NS)
		}
	}
	if len(entries) == 0 {
		t.Errorf("kept journal lists no namespaces")
	}
	// The user turns TSO off on purpose; cleanup removes the lab and
	// leaves the interface as the user left it.
	if _, err := offload.Set(ns, "mine0", []offload.Setting{{Name: "tso", On: false}}); err != nil {
		t.Fatal(err)
	}
	res, err := journal.Sweep(dir, journal.SweepOptions{IncludeKept: true, Handlers: UndoHandlers()})
	if err != nil || len(res.Journals) != 1 {
		t.Fatalf("cleanup: %+v %v", res, err)
	}
	if tso(t, ns, "mine0") {
		t.Errorf("cleanup reverted mine0 to the run's stale snapshot (TSO back on)")
	}
	if left := topo.NetNSNames(out.Prefix + "-"); len(left) != 0 {
		t.Errorf("namespaces left after cleanup: %v", left)
	}
}

// Undo handlers refuse entries naming something latlab does not create,
// before touching anything.
func TestUndoHandlersRefuseForeignNames(t *testing.T) {
	h := UndoHandlers()
	for _, name := range []string{"eth0", "default", "latlab-../../etc", "latlab-"} {
		if err := h[topo.KindNetNS](journal.Entry{Kind: topo.KindNetNS, Name: name}); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("netns %q: %v, want a refusal", name, err)
		}
	}
	snap, _ := json.Marshal(offload.Snapshot{Version: offload.SnapshotVersion, NetNS: "/var/run/netns/latlab-t-x", Dev: "mine0"})
	if err := h[KindOffload](journal.Entry{Kind: KindOffload, Name: "eth0", NS: "", Data: snap}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("offload entry whose snapshot is of another device: %v", err)
	}
}
