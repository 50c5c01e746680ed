package benchproc

import (
	"slices"
	"strings"
	"testing"
)

func TestPin(t *testing.T) {
	if got, want := Pin("", 1, "a", "b"), []string{"taskset", "-c", "1", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Pin = %v, want %v", got, want)
	}
	if got, want := Pin("ns", 0, "a"), []string{"ip", "netns", "exec", "ns", "taskset", "-c", "0", "a"}; !slices.Equal(got, want) {
		t.Errorf("Pin = %v, want %v", got, want)
	}
}

func TestMedian(t *testing.T) {
	v := []float64{3, 1, 2, 10}
	if m := Median(v); m != 2.5 {
		t.Errorf("Median = %v", m)
	}
	if v[0] != 3 {
		t.Error("Median sorted its input")
	}
	if Median([]float64{4, 1, 9}) != 4 || Median(nil) != 0 {
		t.Error("odd or empty median")
	}
}

func TestProcs(t *testing.T) {
	var p Procs
	if err := p.Start("sleep", "30"); err != nil {
		t.Fatal(err)
	}
	cmd := p.cmds[0]
	p.StopAll()
	if cmd.ProcessState == nil || cmd.ProcessState.Success() {
		t.Errorf("process not killed: %v", cmd.ProcessState)
	}
	if err := p.Start("/nonexistent/latlab-no-such-binary"); err == nil {
		t.Error("start of a missing binary succeeded")
	}
}

func TestRow(t *testing.T) {
	latlab := []float64{10, 11, 12, 9, 10, 10}
	peer := []float64{10, 10, 10, 10, 10, 5}
	got := Row(6, "rate", latlab, peer)
	for _, want := range []string{"  rate  ", " 10.00 ", " 1.000 ", " 1.050 ", "1.000 1.100 1.200 0.900 1.000 2.000"} {
		if !strings.Contains(got, want) {
			t.Errorf("Row = %q, missing %q", got, want)
		}
	}
	if got := Row(4, "x", []float64{1}, []float64{1}); !strings.Contains(got, "(too few rounds)") {
		t.Errorf("one round: %q", got)
	}
}
