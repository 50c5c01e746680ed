package experiment

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
)

// Presets change every lab interface, never accumulate, and "default" puts
// back exactly what the lab started with.
func TestOffloadAxisAppliesAndRestores(t *testing.T) {
	testutil.RequireRoot(t)
	j, err := journal.Create(t.TempDir(), testutil.UniqueName("latlab-t"), "test")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := topo.Build(context.Background(), topo.Default(), topo.BuildOptions{Modes: []string{"host", "bridge-nat"}, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Teardown() })
	own, err := labTestbed{lab}.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	axis, err := newOffloadAxis(own, nil, j, false)
	if err != nil {
		t.Fatal(err)
	}
	defer axis.close()
	if len(axis.ifaces) < 5 {
		t.Fatalf("only %d interfaces: %+v", len(axis.ifaces), axis.ifaces)
	}
	state := func(i topo.Iface, name string) bool {
		info, err := offload.Show(i.NS, i.Name)
		if err != nil {
			t.Fatal(err)
		}
		f, ok := info.Features.Get(name)
		if !ok {
			t.Fatalf("%s has no %s", i.Name, name)
		}
		return f.Active
	}
	var veths []topo.Iface
	for _, i := range axis.ifaces {
		if i.Kind == "veth" {
			veths = append(veths, i)
		}
	}
	before := map[string]bool{}
	for _, i := range veths {
		before[i.NS+i.Name] = state(i, "tx-tcp-segmentation")
		if !before[i.NS+i.Name] {
			t.Fatalf("%s/%s starts with TSO off; the test needs it on", i.NS, i.Name)
		}
	}
	seg, _ := offload.ParsePreset("seg-off")
	gro, _ := offload.ParsePreset("gro-on")
	def, _ := offload.ParsePreset("default")
	if err := axis.apply(seg); err != nil {
		t.Fatal(err)
	}
	for _, i := range veths {
		if state(i, "tx-tcp-segmentation") || state(i, "tx-generic-segmentation") {
			t.Errorf("seg-off: %s/%s still segments", i.NS, i.Name)
		}
	}
	// gro-on is applied on top of the snapshot, not of seg-off.
	if err := axis.apply(gro); err != nil {
		t.Fatal(err)
	}
	for _, i := range veths {
		if !state(i, "tx-tcp-segmentation") || !state(i, "rx-gro") {
			t.Errorf("gro-on: %s/%s tso %v gro %v, want both on", i.NS, i.Name, state(i, "tx-tcp-segmentation"), state(i, "rx-gro"))
		}
	}
	if err := axis.apply(def); err != nil {
		t.Fatal(err)
	}
	for _, i := range veths {
		if state(i, "rx-gro") || state(i, "tx-tcp-segmentation") != before[i.NS+i.Name] {
			t.Errorf("default: %s/%s not restored", i.NS, i.Name)
		}
	}
}

// Every result of an offload matrix carries its preset, and each preset is
// compared with the first one for the same mode.
func TestLabOffloadMatrixResults(t *testing.T) {
	testutil.RequireRoot(t)
	seg, _ := offload.ParsePreset("seg-off")
	spec := LabSpec{
		Modes: []string{"host"}, Workloads: []wire.Workload{wire.TCPRR},
		Offloads: []offload.Preset{{Name: offload.PresetDefault}, seg},
		Trials:   2, Duration: 60 * time.Millisecond, JournalDir: t.TempDir(),
	}
	out, err := RunLab(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(out)
	if len(s.Results) != 2 || s.Results[0].Offload != "default" || s.Results[1].Offload != "seg-off" {
		t.Fatalf("results: %+v", s.Results)
	}
	if s.Results[1].VsOffload == nil || s.Results[1].VsOffload.Preset != "default" || s.Results[1].VsOffload.Ratio == nil {
		t.Errorf("seg-off not compared with default: %+v", s.Results[1].VsOffload)
	}
	for _, tr := range out.Trials {
		if tr.Offload == "" || tr.Error != "" {
			t.Errorf("trial %+v", tr)
		}
	}
}

// existingVeth makes a veth pair inside a fresh namespace: an interface
// that exists before (and after) any run, as a user's own would.
func existingVeth(t *testing.T) (nsPath string) {
	t.Helper()
	_, nsPath = testutil.NewNetNS(t)
	testutil.NewVeth(t, nsPath, "mine0", "mine1")
	return nsPath
}

func tso(t *testing.T, ns, dev string) bool {
	t.Helper()
	info, err := offload.Show(ns, dev)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := info.Features.Get("tx-tcp-segmentation")
	return f.Active
}

// A spec's pre-existing interfaces get the presets during the run and are
// restored, verified, afterwards; one in the caller's namespace is refused
// without AllowHostNIC.
func TestLabRestoresExistingInterfaces(t *testing.T) {
	testutil.RequireRoot(t)
	ns := existingVeth(t)
	if !tso(t, ns, "mine0") {
		t.Fatal("a new veth should start with TSO on")
	}
	seg, _ := offload.ParsePreset("seg-off")
	spec := LabSpec{
		Modes: []string{"host"}, Workloads: []wire.Workload{wire.UDPRR},
		Offloads: []offload.Preset{seg}, Interfaces: []Target{{NetNS: ns, Dev: "mine0"}},
		Trials: 1, Duration: 60 * time.Millisecond, JournalDir: t.TempDir(),
	}
	var during bool
	out, err := RunLab(context.Background(), spec, func(e Event) {
		if e.Kind == "trial" {
			during = tso(t, ns, "mine0")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if during {
		t.Errorf("seg-off was not applied to the existing interface during the run")
	}
	if !tso(t, ns, "mine0") {
		t.Errorf("the existing interface was not restored: TSO still off")
	}
	if len(out.Trials) != 1 {
		t.Errorf("trials: %+v", out.Trials)
	}
	spec.Interfaces = []Target{{Dev: "lo"}}
	spec.Defaults()
	if err := spec.Validate(); err == nil || !strings.Contains(err.Error(), "--allow-host-nic") {
		t.Errorf("an interface in the caller's namespace must be refused: %v", err)
	}
}
