package dockerlab_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/docker/dockerlab"
	"github.com/latlab/latlab/internal/docker/dockertest"
	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/wire"
)

// TestDockerLab runs every mode on a private dockerd (macvlan on a veth
// inside its namespace), checks every trial succeeded, that the default
// bridge is measurably slower than the host network for tcp_rr, and that
// nothing labelled remains.
func TestDockerLab(t *testing.T) {
	d := dockertest.Start(t)
	bin := dockertest.Latlab(t)
	d.Veth(t, "llmv0", "llmv1")
	jdir := t.TempDir()
	spec := dockerlab.Spec{
		Host: d.Host, Binary: bin, MacvlanParent: "llmv0", MacvlanSubnet: "10.199.7.0/24",
		Workloads: []wire.Workload{wire.TCPRR, wire.UDPRR, wire.TCPCRR, wire.TCPStream},
		// 5 modes × 4 workloads × 3 rounds × 250ms ≈ 15s: every mode and
		// workload works; the statistics come below.
		Trials: 3, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond,
		JournalDir: jdir, Seed: 42,
	}
	var built []experiment.ModeInfo
	spec.OnBuilt = func(m []experiment.ModeInfo, _ time.Duration) { built = m }
	out, err := dockerlab.RunLab(context.Background(), spec, nil)
	if err != nil {
		t.Fatalf("RunLab: %v\n%s", err, d.Log())
	}
	if len(built) != 5 {
		t.Fatalf("built %d modes, want 5: %+v", len(built), built)
	}
	for _, m := range out.Modes {
		if m.Status != "ok" {
			t.Errorf("mode %s: %s: %s", m.Name, m.Status, m.Reason)
		}
	}
	for _, tr := range out.Trials {
		if tr.Error != "" {
			t.Errorf("trial %s %s round %d: %s", tr.Mode, tr.Workload, tr.Round, tr.Error)
		}
	}
	if want := 5 * 4 * spec.Trials; len(out.Trials) != want {
		t.Errorf("%d trials, want %d", len(out.Trials), want)
	}
	checkClean(t, d, jdir)

	// The comparison: host vs default bridge, tcp_rr only, enough
	// interleaved rounds for a verdict on a noisy shared 2-CPU machine.
	cmp := dockerlab.Spec{Host: d.Host, Binary: bin, Modes: []string{dockerlab.ModeHost, dockerlab.ModeBridge},
		Workloads: []wire.Workload{wire.TCPRR}, Trials: 60, Duration: 100 * time.Millisecond,
		Warmup: 50 * time.Millisecond, JournalDir: jdir,
		// Client and server on one core: each transaction is then CPU work
		// (the bridge's extra veth and bridge hops included) rather than
		// cross-core wake-up latency, which swings with other tenants' load.
		Placement: experiment.Placement{Name: "same-core", ClientCPUs: []int{0}, ServerCPU: 0}}
	out, err = dockerlab.RunLab(context.Background(), cmp, nil)
	if err != nil {
		t.Fatalf("RunLab host vs bridge: %v", err)
	}
	sum := experiment.Summarize(out)
	var br *experiment.ModeResult
	for i, r := range sum.Results {
		if r.RatePerSec != nil {
			t.Logf("tcp_rr %-7s median %.0f/s [%.0f, %.0f]  p50 %dns  p99 %dns", r.Mode, r.RatePerSec.Median, r.RatePerSec.CILow, r.RatePerSec.CIHigh, r.P50Ns, r.P99Ns)
		}
		if r.Mode == dockerlab.ModeBridge {
			br = &sum.Results[i]
		}
	}
	if br == nil || br.RatioVsHost == nil || br.PValue == nil {
		t.Fatalf("no tcp_rr bridge result with a ratio: %+v", br)
	}
	t.Logf("bridge/host tcp_rr rate ratio %.3f [%.3f, %.3f] (%.1f%%), p %.2g, verdict %q", br.RatioVsHost.Median,
		br.RatioVsHost.CILow, br.RatioVsHost.CIHigh, 100*br.RatioVsHost.Confidence, *br.PValue, br.Verdict)
	// The rate suffers from other tenants' stalls; each trial's median
	// latency much less. Paired by round, bridge p50 over host p50.
	p50 := map[string]map[int]float64{}
	for _, tr := range out.Trials {
		if tr.Result != nil && tr.Result.Latency != nil {
			if p50[tr.Mode] == nil {
				p50[tr.Mode] = map[int]float64{}
			}
			p50[tr.Mode][tr.Round] = float64(tr.Result.Latency.P50)
		}
	}
	var num, den []float64
	for round, h := range p50[dockerlab.ModeHost] {
		if b, ok := p50[dockerlab.ModeBridge][round]; ok {
			num, den = append(num, b), append(den, h)
		}
	}
	lat, lerr := stats.PairedRatio(num, den, 0.95)
	t.Logf("bridge/host tcp_rr p50 latency ratio %.3f [%.3f, %.3f] over %d rounds (%v)", lat.Center, lat.Lo, lat.Hi, len(num), lerr)
	rateSlower := br.RatioVsHost.CIHigh < 1 || (br.Significant && br.RatioVsHost.Median < 1)
	latSlower := lerr == nil && lat.Lo > 1
	if !rateSlower && !latSlower {
		t.Errorf("default bridge not measurably slower than host for tcp_rr: rate ratio %.3f [%.3f, %.3f], p %.2g, verdict %q; p50 latency ratio %.3f [%.3f, %.3f]",
			br.RatioVsHost.Median, br.RatioVsHost.CILow, br.RatioVsHost.CIHigh, *br.PValue, br.Verdict, lat.Center, lat.Lo, lat.Hi)
	}
	checkClean(t, d, jdir)
}

// checkClean fails unless nothing labelled remains on the daemon and the
// journal directory is empty.
func checkClean(t *testing.T, d *dockertest.Daemon, jdir string) {
	t.Helper()
	// Nothing labelled remains, and the journal is gone.
	e, err := docker.Open(context.Background(), d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if c, n, err := e.Labelled(context.Background(), docker.LabelRun); err != nil || c+n != 0 {
		t.Errorf("after the run: %d labelled containers, %d networks (%v)", c, n, err)
	}
	if ents, _ := os.ReadDir(jdir); len(ents) != 0 {
		t.Errorf("journal left: %v", ents)
	}
}

// TestDockerCleanupAfterCrash: a run that died leaves a journal naming its
// label; sweeping it with experiment.UndoHandlers and UndoHandlers (the
// registry `latlab cleanup` builds) removes the labelled containers and networks.
func TestDockerCleanupAfterCrash(t *testing.T) {
	d := dockertest.Start(t)
	bin := dockertest.Latlab(t)
	ctx := context.Background()
	e, err := docker.Open(ctx, d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	img, err := e.EnsureImage(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := e.EnsureImage(ctx, bin); err != nil || again != img {
		t.Fatalf("EnsureImage again: %q %v, want the same %q", again, err, img)
	}
	jdir := t.TempDir()
	id := dockerlab.NewRunID()
	j, err := journal.Create(jdir, id, "test")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(dockerlab.JournalData{Host: e.Host, Label: docker.LabelRun + "=" + id})
	if err := j.Record(journal.Entry{Kind: docker.JournalKind, Name: id, Data: data}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateNetwork(ctx, docker.Network{Name: id + "-br", Driver: "bridge", RunID: id}); err != nil {
		t.Fatal(err)
	}
	r, err := e.Run(ctx, docker.Container{Name: id + "-c", Image: img, Network: id + "-br", RunID: id,
		Cmd: []string{"serve", "--listen", "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	// ContainerNetNS resolves to the container's own namespace.
	p, err := e.ContainerNetNS(ctx, id+"-c")
	if err != nil {
		t.Fatal(err)
	}
	var a, b unix.Stat_t
	if err := unix.Stat(p, &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(r.NetNS(), &b); err != nil || a.Ino != b.Ino {
		t.Fatalf("ContainerNetNS %s (ino %d) is not %s (ino %d): %v", p, a.Ino, r.NetNS(), b.Ino, err)
	}
	j.MarkKept() // the "crash": the journal stays, its lock is released
	if c, n, _ := e.Labelled(ctx, docker.LabelRun+"="+id); c != 1 || n != 1 {
		t.Fatalf("before cleanup: %d containers, %d networks, want 1 and 1", c, n)
	}
	res, err := journal.Sweep(jdir, journal.SweepOptions{IncludeKept: true, Handlers: experiment.UndoHandlers().With(dockerlab.UndoHandlersFor(e.Host))})
	if err != nil || len(res.Undone) != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if c, n, err := e.Labelled(ctx, docker.LabelRun); err != nil || c+n != 0 {
		t.Errorf("after cleanup: %d labelled containers, %d networks (%v)", c, n, err)
	}
	// A journal naming a daemon that cannot be reached is kept: cleanup
	// says so instead of dropping what it could not undo.
	if err := docker.CleanupLabel(ctx, "unix://"+t.TempDir()+"/gone.sock", docker.LabelRun+"=x"); !errors.Is(err, docker.ErrUnreachable) {
		t.Errorf("cleanup on a vanished daemon: %v, want docker.ErrUnreachable", err)
	}
}
