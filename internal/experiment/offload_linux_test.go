package experiment

import (
	"context"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/workload"
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
	axis, err := newOffloadAxis(lab)
	if err != nil {
		t.Fatal(err)
	}
	defer axis.close()
	if len(axis.ifaces) < 5 {
		t.Fatalf("only %d interfaces: %+v", len(axis.ifaces), axis.ifaces)
	}
	state := func(i topo.Iface, name string) bool {
		info, err := offload.Show(topo.NetNSPath(i.NS), i.Name)
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
		Modes: []string{"host"}, Workloads: []workload.Workload{workload.TCPRR},
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
