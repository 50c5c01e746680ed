package experiment_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
)

func result(s *experiment.Summary, mode, w string) *experiment.ModeResult {
	for i := range s.Results {
		if s.Results[i].Mode == mode && s.Results[i].Workload == w {
			return &s.Results[i]
		}
	}
	return nil
}

// The default lab reproduces, on this machine, what the articles found by
// hand: an extra veth hop (Calico-like routing, docker0 bridge + NAT) makes
// TCP_RR measurably slower than the host network, while macvlan, which
// hands packets straight to the parent device, is not significantly slower.
// As the lab runs by default: placement calibrated (no fixed pins) and
// rounds until the ratios' intervals are within 2 points or the budget is
// spent.
func TestLabReproducesExpectedOrder(t *testing.T) {
	testutil.RequireRoot(t)
	spec := experiment.LabSpec{
		Modes:     []string{"host", "veth-routed", "bridge-nat", "macvlan"},
		Workloads: []wire.Workload{wire.TCPRR},
		// Short trials keep the two members of each pair close in time;
		// the adaptive rule adds rounds until the widest interval is
		// within the target (or 45 s pass).
		Duration:   experiment.DefaultDuration,
		Warmup:     experiment.DefaultWarmup,
		TargetCI:   0.02,
		Budget:     45 * time.Second,
		JournalDir: t.TempDir(),
		Seed:       rand.Uint64(),
	}
	out, err := experiment.RunLab(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := experiment.Summarize(out)
	for _, c := range s.Calibration {
		t.Logf("calibration %s", c)
	}
	for _, p := range s.Precision {
		t.Logf("precision %s", p)
	}
	for _, m := range spec.Modes {
		r := result(s, m, "tcp_rr")
		t.Logf("%-12s rate %s cv %.3f ratio %s p=%v %s", m, r.RatePerSec, r.CV, r.RatioVsHost, deref(r.PValue), r.Verdict)
	}
	if len(s.Calibration) != 1 || s.Calibration[0].Chosen == "" || len(out.Spec.Placements) != 1 ||
		!slices.Contains(out.Spec.Placements[0].Workloads, wire.TCPRR) || len(out.Spec.Placements[0].ClientCPUs) != 1 {
		t.Fatalf("calibration %+v, placements %+v", s.Calibration, out.Spec.Placements)
	}
	// Never a wrong answer: an extra veth hop is never significantly
	// faster than host, macvlan never significantly slower.
	for _, m := range []string{"veth-routed", "bridge-nat"} {
		if r := result(s, m, "tcp_rr"); r.Status != "ok" || r.Verdict == "better" {
			t.Errorf("%s: %s %q (%s)", m, r.Status, r.Verdict, r.RatioVsHost)
		}
	}
	if r := result(s, "macvlan", "tcp_rr"); r.Verdict == "worse" {
		t.Errorf("macvlan: significantly slower than host (%s, p=%v); it should not be", r.RatioVsHost, deref(r.PValue))
	}
	if len(s.Precision) != 1 {
		t.Fatalf("precision %+v", s.Precision)
	}
	p := s.Precision[0]
	if p.Met() {
		// Resolved: the seed articles' order, significantly.
		for _, m := range []string{"veth-routed", "bridge-nat"} {
			r := result(s, m, "tcp_rr")
			if r.RatioVsHost.TooFew || r.RatioVsHost.CIHigh >= 1 || r.Verdict != "worse" || !r.Significant {
				t.Errorf("%s: ratio to host %s, verdict %q: want a CI below 1 and a significant \"worse\" (an extra veth hop costs a softirq per packet)", m, r.RatioVsHost, r.Verdict)
			}
		}
	} else if !strings.Contains(s.TooNoisy, "tcp_rr") || p.Stopped != "budget" || p.NeededRounds <= p.Rounds {
		// Unresolved (a machine too noisy for the budget): it must say so
		// at the top, and what it needed.
		t.Errorf("target missed (%s) but the summary says %q", p, s.TooNoisy)
	}
	// Lab namespaces inherit the host's congestion control, and the
	// summary says which one the trials ran.
	if def, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control"); err == nil && s.Congestion != strings.TrimSpace(string(def)) {
		t.Errorf("summary congestion %q, host default %q", s.Congestion, strings.TrimSpace(string(def)))
	}
	// One group: every mode ran the same rounds, at least the minimum.
	if p.Rounds < out.Spec.MinTrials || len(out.Trials) != len(spec.Modes)*p.Rounds || (p.Stopped == "target") != p.Met() {
		t.Errorf("%d trials, precision %+v, min rounds %d", len(out.Trials), p, out.Spec.MinTrials)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// Rounds interleave: no round runs the modes in the same order as every
// other round, and each round holds every configuration exactly once.
func TestRoundsInterleaveInFreshOrder(t *testing.T) {
	testutil.RequireRoot(t)
	spec := experiment.LabSpec{
		Modes:      []string{"host", "macvlan", "bridge-nat"},
		Workloads:  []wire.Workload{wire.TCPRR, wire.UDPRR},
		Trials:     4,
		Duration:   50 * time.Millisecond,
		JournalDir: t.TempDir(),
		Seed:       42,
	}
	out, err := experiment.RunLab(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	orders := map[int][]string{}
	for _, tr := range out.Trials {
		if tr.Error != "" {
			t.Errorf("trial %s %s: %s", tr.Mode, tr.Workload, tr.Error)
		}
		orders[tr.Round] = append(orders[tr.Round], tr.Mode+"/"+string(tr.Workload))
	}
	distinct := map[string]bool{}
	for r := 1; r <= spec.Trials; r++ {
		o := orders[r]
		if len(o) != 6 {
			t.Fatalf("round %d ran %d configurations, want 6", r, len(o))
		}
		seen := map[string]bool{}
		for _, c := range o {
			if seen[c] {
				t.Errorf("round %d ran %s twice", r, c)
			}
			seen[c] = true
		}
		distinct[strings.Join(o, ",")] = true
		// A workload's modes run back to back: the ratios pair trials
		// seconds apart, not a whole round apart.
		for i := 1; i < len(o); i++ {
			w, prev := o[i][strings.Index(o[i], "/"):], o[i-1][strings.Index(o[i-1], "/"):]
			if w != prev && i != 3 {
				t.Errorf("round %d splits a workload's modes: %v", r, o)
				break
			}
		}
	}
	if len(distinct) < 2 {
		t.Errorf("every round ran in the same order: %v", orders)
	}
	// The lab is gone afterwards.
	for _, m := range out.Modes {
		if _, err := os.Stat(topo.NetNSPath(m.ClientNS)); err == nil {
			t.Errorf("namespace %s left behind", m.ClientNS)
		}
	}
}

// --attribute attaches kernel evidence to every trial; it reaches the
// summary with an explanation against host, and survives the store.
func TestLabAttribution(t *testing.T) {
	testutil.RequireRoot(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &experiment.StoreRecorder{Store: st, Kind: "lab", SpecName: "attr", Version: "test"}
	spec := experiment.LabSpec{
		Modes: []string{"host", "veth-routed"}, Workloads: []wire.Workload{wire.TCPRR},
		Trials: 2, Duration: 200 * time.Millisecond, JournalDir: t.TempDir(), Attribute: true, Recorder: rec,
	}
	out, err := experiment.RunLab(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	tiers := map[string]bool{"tp_btf": true, "raw_tracepoint": true, "tracepoint": true, "proc": true}
	if !tiers[out.EBPFTier] {
		t.Errorf("tier %q", out.EBPFTier)
	}
	for _, tr := range out.Trials {
		if tr.Attribution == nil || tr.Attribution.NetRXSoftirqsPerTxn <= 0 || tr.Attribution.Transactions != tr.Result.Transactions {
			t.Errorf("trial %s round %d: attribution %+v", tr.Mode, tr.Round, tr.Attribution)
		}
	}
	check := func(s *experiment.Summary, where string) {
		v := result(s, "veth-routed", "tcp_rr")
		if v.Attribution == nil || v.Attribution.Trials != 2 || !strings.Contains(v.Attribution.Explanation, "NET_RX softirq") ||
			!strings.Contains(v.Attribution.Explanation, "vs host") || !tiers[v.Attribution.EBPFTier] {
			t.Errorf("%s: veth-routed attribution %+v", where, v.Attribution)
		}
	}
	check(experiment.Summarize(out), "fresh")
	back, _, err := experiment.LoadOutcome(context.Background(), st, rec.RunID)
	if err != nil {
		t.Fatal(err)
	}
	check(experiment.Summarize(back), "from the store")
}
