package probe

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var roots618 = Roots{Proc: "testdata/proc-6.18", Sys: "testdata/sys-6.18"}

func collect(t *testing.T, c Collector) *Sample {
	t.Helper()
	s := NewSample()
	if err := c.Collect(s); err != nil {
		t.Fatalf("%s: %v", c.Name(), err)
	}
	return s
}

func wantCounter(t *testing.T, s *Sample, key string, total uint64, perCPU ...uint64) {
	t.Helper()
	c, ok := s.Counters[key]
	if !ok {
		t.Errorf("%s missing (have %v)", key, s.Keys())
		return
	}
	if c.Total != total {
		t.Errorf("%s total = %d, want %d", key, c.Total, total)
	}
	if perCPU != nil && !slices.Equal(c.PerCPU, perCPU) {
		t.Errorf("%s per CPU = %v, want %v", key, c.PerCPU, perCPU)
	}
}

func wantGauge(t *testing.T, s *Sample, key string, v float64) {
	t.Helper()
	if g, ok := s.Gauges[key]; !ok || g != v {
		t.Errorf("gauge %s = %v (present %v), want %v", key, g, ok, v)
	}
}

func TestSoftirqs(t *testing.T) {
	s := collect(t, Softirqs{Roots: roots618})
	wantCounter(t, s, KeyNetRX, 22214800+55563736, 22214800, 55563736)
	wantCounter(t, s, KeyNetTX, 1019+537, 1019, 537)
	wantCounter(t, s, "softirqs.HRTIMER", 269004+13847788, 269004, 13847788)
	wantCounter(t, s, "softirqs.HI", 0, 0, 0)
	if len(s.Counters) != 10 {
		t.Errorf("%d vectors, want 10: %v", len(s.Counters), s.Keys())
	}
}

func TestSoftirqsSparseCPUs(t *testing.T) {
	m, err := ParseSoftirqs([]byte("  CPU0  CPU2\n NET_RX: 5 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := m["NET_RX"]; c.Total != 12 || !slices.Equal(c.PerCPU, []uint64{5, 0, 7}) {
		t.Errorf("got %+v", c)
	}
}

func TestStat(t *testing.T) {
	s := collect(t, Stat{Roots: roots618})
	// cpu  21237 0 70796 258179 459 0 35676 ...; ticks of 10 ms.
	wantCounter(t, s, KeySoftirqUs, 35676*10000, 5802*10000, 29874*10000)
	wantCounter(t, s, KeyIRQUs, 0, 0, 0)
}

func TestInterrupts(t *testing.T) {
	s := collect(t, Interrupts{Roots: roots618})
	wantCounter(t, s, KeyInterrupts, 16728072+17296054, 16728072, 17296054)
}

func TestSoftnet618(t *testing.T) {
	s := collect(t, Softnet{Roots: roots618})
	wantCounter(t, s, KeySoftnetProc, 0x01a4f935+0x0424beb3, 0x01a4f935, 0x0424beb3)
	wantCounter(t, s, KeySoftnetDrop, 0, 0, 0)
	wantCounter(t, s, KeyTimeSqueeze, 0x19, 0, 0x19)
	wantCounter(t, s, KeyReceivedRPS, 0, 0, 0)
	wantGauge(t, s, "softnet.backlog_len", 0)
	if s.Counters[KeySoftnetProc].Width != 32 {
		t.Errorf("softnet counters should be 32-bit")
	}
	st, _ := ParseSoftnet([]byte("1 0 0 0 0 0 0 0 0 0 0 0 3 0 0\n2 0 0 0 0 0 0 0 0 0 0 0 5 0 0\n"))
	if !st.CPUColumn || !slices.Equal(st.Processed.PerCPU, []uint64{0, 0, 0, 1, 0, 2}) {
		t.Errorf("CPU column not honoured: %+v", st.Processed)
	}
}

// TestSoftnetOld is a 5.4-style file: 11 columns, no CPU column, one line
// per online CPU.
func TestSoftnetOld(t *testing.T) {
	s := collect(t, Softnet{Roots: Roots{Proc: "testdata/proc-5.4"}})
	wantCounter(t, s, KeySoftnetProc, 0xa2f1+0xffffff00+0x10, 0xa2f1, 0xffffff00, 0x10)
	wantCounter(t, s, KeySoftnetDrop, 4, 3, 0, 1)
	wantCounter(t, s, KeyTimeSqueeze, 30, 28, 2, 0)
	wantCounter(t, s, KeyReceivedRPS, 5, 5, 0, 0)
	wantCounter(t, s, KeyFlowLimit, 1, 0, 1, 0)
	if _, ok := s.Gauges["softnet.backlog_len"]; ok {
		t.Errorf("5.4 layout has no backlog column")
	}
	st, err := ParseSoftnet([]byte("00000001 00000002 00000003 0 0 0 0 0 0\n"))
	if err != nil || st.Dropped.Total != 2 || st.ReceivedRPS.PerCPU != nil {
		t.Errorf("9-column layout: %+v %v", st, err)
	}
}

func TestNetStat(t *testing.T) {
	s := collect(t, NetStat{Roots: roots618})
	wantCounter(t, s, KeyRetransSegs, 23436)
	wantCounter(t, s, KeyInSegs, 78080407)
	wantCounter(t, s, KeyOutSegs, 78055501)
	wantCounter(t, s, KeyUDPInErrors, 0)
	wantCounter(t, s, KeyUDPRcvbufErr, 0)
	wantCounter(t, s, KeyUDPNoPorts, 0)
	wantCounter(t, s, "snmp.Udp.InDatagrams", 85247)
	wantCounter(t, s, KeyListenOverflw, 0)
	wantCounter(t, s, KeyListenDrops, 0)
	wantCounter(t, s, KeyTCPTimeouts, 2)
	wantGauge(t, s, "snmp.Tcp.MaxConn", -1)
	wantGauge(t, s, "snmp.Tcp.CurrEstab", 4)
	if _, ok := s.Counters["snmp.Tcp.MaxConn"]; ok {
		t.Errorf("MaxConn is not a counter")
	}
}

func TestPressure(t *testing.T) {
	s := collect(t, Pressure{Roots: roots618})
	wantCounter(t, s, KeyPSICPUSome, 236341442)
	wantCounter(t, s, KeyPSICPUFull, 0)
	wantGauge(t, s, "pressure.cpu.some_avg10", 13.39)
	wantGauge(t, s, "pressure.cpu.full_avg300", 0)
}

// TestCgroupHybrid reads this machine's layout: cgroup2 at
// /sys/fs/cgroup/unified with no cpu controller, own cgroup "/".
func TestCgroupHybrid(t *testing.T) {
	s := collect(t, Cgroup{Roots: roots618})
	wantCounter(t, s, "cgroup.cpu.usage_usec", 1277135995)
	wantCounter(t, s, KeyCgroupPSISome, 236345381)
	if _, ok := s.Counters[KeyCgroupThrotUs]; ok {
		t.Errorf("no cpu controller, yet throttling reported")
	}
	if _, ok := s.Unavailable["cgroup.cpu.throttling"]; !ok {
		t.Errorf("throttling not reported unavailable: %v", s.Unavailable)
	}
}

func TestCgroupThrottled(t *testing.T) {
	s := collect(t, Cgroup{Roots: Roots{Proc: "testdata/proc-6.18", Sys: "testdata/sys-throttled"}, Path: "kubepods/pod1"})
	wantCounter(t, s, KeyCgroupThrotUs, 812345)
	wantCounter(t, s, KeyCgroupThrotN, 37)
	wantCounter(t, s, KeyCgroupPeriods, 1200)
	wantCounter(t, s, KeyCgroupPSISome, 923456)
	wantCounter(t, s, KeyCgroupPSIFull, 400000)
	if len(s.Unavailable) != 0 {
		t.Errorf("unavailable: %v", s.Unavailable)
	}
}

// TestMissingSources: a kernel without the files is not an error.
func TestMissingSources(t *testing.T) {
	dir := t.TempDir()
	r := DefaultRegistry(Options{Roots: Roots{Proc: dir, Sys: dir}})
	s, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Counters) != 0 {
		t.Errorf("counters from nowhere: %v", s.Keys())
	}
	for _, src := range []string{"softirqs", "stat", "interrupts", "softnet", "netstat.snmp", "netstat.netstat", "pressure", "cgroup"} {
		if _, ok := s.Unavailable[src]; !ok {
			t.Errorf("%s not reported unavailable: %v", src, s.Unavailable)
		}
	}
}

func TestMalformed(t *testing.T) {
	for name, f := range map[string]func() error{
		"softirqs":   func() error { _, err := ParseSoftirqs([]byte("CPU0\nNET_RX: x\n")); return err },
		"stat":       func() error { _, _, err := ParseStat([]byte("intr 1\n")); return err },
		"softnet":    func() error { _, err := ParseSoftnet([]byte("zz 1 2\n")); return err },
		"netstat":    func() error { _, err := ParseNetStat([]byte("Tcp: A B\nTcp: 1\n")); return err },
		"psi":        func() error { _, err := ParsePSI([]byte("some avg10\n")); return err },
		"interrupts": func() error { _, err := ParseInterrupts([]byte("")); return err },
	} {
		if f() == nil {
			t.Errorf("%s: malformed input accepted", name)
		}
	}
	// A registry goes on past a failing collector.
	r := NewRegistry(failing{}, Softirqs{Roots: roots618})
	s, err := r.Snapshot()
	if err == nil || !errors.Is(err, errBroken) {
		t.Errorf("error %v, want errBroken", err)
	}
	if _, ok := s.Counters[KeyNetRX]; !ok {
		t.Errorf("softirqs not collected after a failing collector")
	}
}

var errBroken = errors.New("broken")

type failing struct{}

func (failing) Name() string          { return "failing" }
func (failing) Collect(*Sample) error { return errBroken }

func TestRegistry(t *testing.T) {
	r := DefaultRegistry(Options{Roots: roots618})
	want := []string{"softirqs", "stat", "interrupts", "softnet", "netstat", "pressure", "cgroup"}
	if !slices.Equal(r.Names(), want) {
		t.Errorf("names %v, want %v", r.Names(), want)
	}
	r.Register(Softirqs{Roots: Roots{Proc: "testdata/proc-5.4"}}) // replaces
	if len(r.Names()) != len(want) {
		t.Errorf("Register did not replace: %v", r.Names())
	}
}

func TestDelta(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := &Sample{Time: t0, Counters: map[string]Counter{
		"x":     {Total: 10, PerCPU: []uint64{4, 6}},
		"wrap":  {Total: 0xffffff00 + 5, PerCPU: []uint64{5, 0xffffff00}, Width: 32},
		"reset": {Total: 100},
		"gone":  {Total: 1},
		"grow":  {Total: 1, PerCPU: []uint64{1}},
	}, Gauges: map[string]float64{"g": 1}, Unavailable: map[string]string{"a": "x"}}
	b := &Sample{Time: t0.Add(2 * time.Second), Counters: map[string]Counter{
		"x":     {Total: 25, PerCPU: []uint64{10, 15}},
		"wrap":  {Total: 7 + 0x100, PerCPU: []uint64{7, 0x100}, Width: 32},
		"reset": {Total: 3},
		"new":   {Total: 9},
		"grow":  {Total: 4, PerCPU: []uint64{2, 2}},
	}, Gauges: map[string]float64{"g": 2}, Unavailable: map[string]string{"b": "y"}}
	d := Delta(a, b)
	if d.Elapsed != 2*time.Second || !d.Time.Equal(b.Time) {
		t.Errorf("elapsed %v time %v", d.Elapsed, d.Time)
	}
	wantCounter(t, d, "x", 15, 6, 9)
	wantCounter(t, d, "wrap", 2+0x200, 2, 0x200)
	wantCounter(t, d, "reset", 0)
	wantCounter(t, d, "grow", 3, 1, 2)
	for _, k := range []string{"gone", "new"} {
		if _, ok := d.Counters[k]; ok {
			t.Errorf("%s in delta", k)
		}
	}
	wantGauge(t, d, "g", 2)
	if len(d.Unavailable) != 2 {
		t.Errorf("unavailable %v", d.Unavailable)
	}
}

func TestDeltaFixtures(t *testing.T) {
	// The same fixture twice: everything is zero.
	r := DefaultRegistry(Options{Roots: roots618})
	a, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Snapshot()
	for k, c := range Delta(a, b).Counters {
		if c.Total != 0 {
			t.Errorf("%s moved by %d", k, c.Total)
		}
	}
}

func TestAttribute(t *testing.T) {
	d := &Sample{Counters: map[string]Counter{
		KeyNetRX:           {Total: 2000},
		KeyNetTX:           {Total: 10},
		KeySoftirqUs:       {Total: 30000},
		KeySoftnetDrop:     {Total: 2, Width: 32},
		KeyUDPNoPorts:      {Total: 3},
		KeyUDPInErrors:     {Total: 0},
		KeyRetransSegs:     {Total: 4},
		KeyTimeSqueeze:     {Total: 5},
		KeyPSICPUSome:      {Total: 70},
		KeyCgroupThrotUs:   {Total: 8},
		KeyCgroupPSISome:   {Total: 60},
		"softirqs.HRTIMER": {Total: 99},
	}}
	a := Attribute(d, 1000)
	if a.NetRXSoftirqsPerTxn != 2 || a.NetTXSoftirqsPerTxn != 0.01 || a.SoftirqUsPerTxn != 30 {
		t.Errorf("per-txn figures: %+v", a)
	}
	if a.Drops != 5 || len(a.DropsBySource) != 2 || a.DropsBySource[KeyUDPNoPorts] != 3 {
		t.Errorf("drops %d %v", a.Drops, a.DropsBySource)
	}
	if a.Retransmits != 4 || a.TimeSqueeze != 5 || a.ThrottledUs != 8 || a.CPUPressureUs != 60 {
		t.Errorf("%+v", a)
	}
	if a.EBPFTier != TierProc || a.SoftirqTimeSource != "proc_stat_ticks" {
		t.Errorf("tier %q source %q", a.EBPFTier, a.SoftirqTimeSource)
	}
	if z := Attribute(d, 0); z.NetRXSoftirqsPerTxn != 0 {
		t.Errorf("zero transactions: %+v", z)
	}
}

func TestSampler(t *testing.T) {
	s := &Sampler{Registry: DefaultRegistry(Options{Roots: roots618}), Interval: 20 * time.Millisecond}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(110 * time.Millisecond)
	w, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if w.Delta.Elapsed < 100*time.Millisecond || len(w.Intervals) < 3 {
		t.Errorf("elapsed %v, %d intervals", w.Delta.Elapsed, len(w.Intervals))
	}
	if _, ok := w.Delta.Counters[KeyNetRX]; !ok {
		t.Errorf("no NET_RX in delta")
	}
	if _, err := s.Stop(); err == nil {
		t.Errorf("second Stop accepted")
	}
}
