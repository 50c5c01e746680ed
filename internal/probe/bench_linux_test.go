//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm || mips || mips64 || ppc64 || s390x)

package probe

import (
	"context"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// rrServer starts a latlab server in a fresh namespace's loopback.
func rrServer(t testing.TB) (target, ns string) {
	t.Helper()
	_, ns = testutil.NewNetNS(t)
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv.Addr().String(), ns
}

func runRR(t testing.TB, target, ns string, d time.Duration) *workload.Result {
	t.Helper()
	res, err := workload.Run(context.Background(), workload.Config{
		Target: target, Workload: wire.TCPRR, NetNS: ns, ServerCPU: wire.CPUAuto,
		Warmup: 100 * time.Millisecond, Duration: d, Interval: d,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestTrialAttribution is a trial as latlab runs one: the workload engine
// over loopback in a namespace, sampled by /proc collectors and eBPF.
func TestTrialAttribution(t *testing.T) {
	e := loadEBPF(t)
	target, ns := rrServer(t)
	s := &Sampler{Registry: DefaultRegistry(Options{NetNS: ns}), EBPF: e, Interval: 100 * time.Millisecond}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	res := runRR(t, target, ns, 400*time.Millisecond)
	w, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	// The window includes warm-up: attribute over every transaction the
	// kernel saw (InSegs/2 is close), but the measured count is what a
	// report divides by.
	a := w.Attribute(res.Transactions)
	t.Logf("%d transactions, attribution %+v", res.Transactions, a)
	if a.EBPFTier != e.Tier() || a.NetRXSoftirqsPerTxn < 1 || a.SoftirqUsPerTxn <= 0 || a.Retransmits != 0 {
		t.Errorf("attribution %+v", a)
	}
	if len(w.Intervals) < 3 {
		t.Errorf("%d intervals", len(w.Intervals))
	}
}

func benchRR(b *testing.B, probes bool) {
	testutil.RequireRoot(b)
	target, ns := rrServer(b)
	if probes {
		loadEBPF(b)
	}
	var txns int64
	var dur float64
	for b.Loop() {
		res := runRR(b, target, ns, time.Second)
		txns += res.Transactions
		dur += res.DurationS
	}
	b.ReportMetric(float64(txns)/dur, "txn/s")
	b.ReportMetric(dur*1e6/float64(txns), "us/txn")
}

// BenchmarkTCPRR is tcp_rr over loopback without probes.
func BenchmarkTCPRR(b *testing.B) { benchRR(b, false) }

// BenchmarkTCPRRWithProbes alternates runs without and with every eBPF
// probe attached and reports the ratio of mean transaction times
// (with/without; 1.05 means 5% overhead).
func BenchmarkTCPRRWithProbes(b *testing.B) {
	testutil.RequireRoot(b)
	target, ns := rrServer(b)
	var off, on float64
	i := 0
	for b.Loop() {
		// Alternate the order so neither side always runs first.
		for _, probes := range [][2]bool{{false, true}, {true, false}}[i%2] {
			var e *EBPF
			if probes {
				var err error
				if e, err = LoadEBPF(); err != nil {
					testutil.SkipIfUnsupported(b, "%v", err)
				}
			}
			r := runRR(b, target, ns, time.Second)
			per := r.DurationS / float64(r.Transactions)
			if e != nil {
				e.Close()
				on += per
			} else {
				off += per
			}
		}
		i++
	}
	b.ReportMetric(on/off, "ratio")
	b.ReportMetric(off/float64(b.N)*1e6, "us/txn-off")
	b.ReportMetric(on/float64(b.N)*1e6, "us/txn-on")
}
