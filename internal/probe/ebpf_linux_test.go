//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm || mips || mips64 || ppc64 || s390x)

package probe

import (
	"net"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/testutil"
)

// loadEBPF loads the probes for a test; under CI=true a kernel that takes
// none is a failure.
func loadEBPF(t testing.TB) *EBPF {
	t.Helper()
	testutil.RequireRoot(t)
	e, err := LoadEBPF()
	if err != nil {
		testutil.SkipIfUnsupported(t, "no eBPF hook attaches on this kernel: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEBPFSoftirqs(t *testing.T) {
	e := loadEBPF(t)
	t.Logf("tier %s, hooks %v", e.Tier(), e.Hooks())
	for _, u := range e.Unavailable() {
		t.Logf("unavailable: %s", u)
	}
	for _, h := range []string{"softirq_entry", "softirq_exit", "softirq_raise", "kfree_skb", "tcp_retransmit_skb", "sched_wakeup", "sched_switch"} {
		if _, ok := e.Hooks()[h]; !ok {
			t.Errorf("hook %s not attached", h)
		}
	}
	_, ns := testutil.NewNetNS(t)
	inum, err := NetNSInode(ns)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Read()
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := NewRegistry(NetStat{NetNS: ns}).Snapshot()
	const n = 2000
	loopbackTCP(t, ns, n)
	b, err := e.Read()
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := NewRegistry(NetStat{NetNS: ns}).Snapshot()
	d := DeltaEBPF(a, b)
	if d.NetRX.Count.Total < n || d.NetRX.NS.Total == 0 || d.NetRX.Hist.Count() != d.NetRX.Count.Total {
		t.Errorf("NET_RX count %d ns %d hist %d, want >= %d runs with time", d.NetRX.Count.Total, d.NetRX.NS.Total, d.NetRX.Hist.Count(), n)
	}
	if d.NetRX.RaiseCount.Total == 0 {
		t.Errorf("no NET_RX raise->entry delays")
	}
	if d.RunqCount.Total == 0 {
		t.Errorf("no run-queue delays measured")
	}
	// No retransmits in a clean loopback run: the namespace's count is 0,
	// by eBPF and by snmp.
	if v := d.RetransByNetNS[inum]; v != 0 {
		t.Errorf("namespace retransmits %d, want 0", v)
	}
	pd := Delta(pa, pb)
	if v, _ := pd.Total(KeyRetransSegs); v != 0 {
		t.Errorf("snmp RetransSegs +%d, want 0", v)
	}
	at := Attribute(pd, n)
	at.AddEBPF(d)
	t.Logf("attribution: %+v", at)
	if at.EBPFTier != e.Tier() || at.SoftirqTimeSource != "ebpf_net_rx_tx" || at.NetRXSoftirqsPerTxn < 1 || at.SoftirqUsPerTxn <= 0 {
		t.Errorf("attribution %+v", at)
	}
}

// TestEBPFDropReason: UDP to a closed port is freed with NO_SOCKET.
func TestEBPFDropReason(t *testing.T) {
	e := loadEBPF(t)
	_, ns := testutil.NewNetNS(t)
	a, err := e.Read()
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := NewRegistry(NetStat{NetNS: ns}).Snapshot()
	const n = 50
	err = netns.Do(ns, func() error {
		// Unconnected, so the ICMP errors do not fail the next send.
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer c.Close()
		to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} // nothing listens
		for range n {
			if _, err := c.WriteTo([]byte("x"), to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Read()
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := NewRegistry(NetStat{NetNS: ns}).Snapshot()
	d := DeltaEBPF(a, b)
	t.Logf("drops by reason: %v", d.DropsByReason)
	if v := d.DropsByReason["NO_SOCKET"]; v < n {
		t.Errorf("NO_SOCKET drops %d, want >= %d", v, n)
	}
	if v, _ := Delta(pa, pb).Total(KeyUDPNoPorts); v != n {
		t.Errorf("snmp Udp NoPorts +%d, want %d", v, n)
	}
}

// TestEBPFTiers forces each tier in turn: every hook must attach at it and
// count NET_RX runs (classic tracepoints read offsets from format files,
// raw tracepoints use CO-RE reads).
func TestEBPFTiers(t *testing.T) {
	testutil.RequireRoot(t)
	_, ns := testutil.NewNetNS(t)
	for _, tier := range []string{TierTPBTF, TierRawTP, TierTP} {
		t.Run(tier, func(t *testing.T) {
			e, err := loadTiers(tier)
			if err != nil {
				testutil.SkipIfUnsupported(t, "tier %s: %v", tier, err)
			}
			defer e.Close()
			if e.Tier() != tier || len(e.Hooks()) != len(allHooks()) {
				t.Errorf("tier %s, hooks %v; unavailable %v", e.Tier(), e.Hooks(), e.Unavailable())
			}
			a, _ := e.Read()
			loopbackTCP(t, ns, 500)
			b, err := e.Read()
			if err != nil {
				t.Fatal(err)
			}
			d := DeltaEBPF(a, b)
			if d.NetRX.Count.Total < 500 || d.NetRX.NS.Total == 0 || d.RunqCount.Total == 0 {
				t.Errorf("NET_RX %d runs %d ns, runq %d", d.NetRX.Count.Total, d.NetRX.NS.Total, d.RunqCount.Total)
			}
		})
	}
}

// A hook the kernel does not have is reported, with why at each tier, and
// the others still attach: the chain never fails on one missing hook.
func TestEBPFMissingHookReported(t *testing.T) {
	testutil.RequireRoot(t)
	hs := allHooks()[:1]
	hs = append(hs, hook{group: "irq", name: "latlab_no_such_tracepoint", prog: "softirq_entry",
		fields: map[string]string{"vec": "off_softirq_vec"}})
	e, err := loadHooks(hs, TierRawTP, TierTP)
	if err != nil {
		t.Fatalf("one missing hook must not fail the load: %v", err)
	}
	defer e.Close()
	if _, ok := e.Hooks()["softirq_entry"]; !ok {
		t.Errorf("softirq_entry did not attach: %v", e.Unavailable())
	}
	if _, ok := e.Hooks()["latlab_no_such_tracepoint"]; ok {
		t.Fatalf("a tracepoint that does not exist attached")
	}
	found := false
	for _, u := range e.Unavailable() {
		if strings.HasPrefix(u, "latlab_no_such_tracepoint: ") && strings.Contains(u, "raw_tracepoint: ") && strings.Contains(u, "tracepoint: ") {
			found = true
		}
	}
	if !found {
		t.Errorf("the missing hook is not reported with a reason per tier: %q", e.Unavailable())
	}
	// Nothing at all attaching is the one case that fails.
	if _, err := loadHooks(hs[1:], TierRawTP, TierTP); err == nil || !strings.Contains(err.Error(), "no hook could be attached") {
		t.Errorf("no hook at all: %v", err)
	}
}

// eBPF's NET_RX count agrees with /proc/softirqs over the same window (the
// /proc reads enclose the eBPF reads, so /proc may only be slightly higher).
func TestEBPFSoftirqsMatchProc(t *testing.T) {
	e := loadEBPF(t)
	_, ns := testutil.NewNetNS(t)
	reg := NewRegistry(Softirqs{})
	pa, err := reg.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := e.Read()
	loopbackTCP(t, ns, 1000)
	b, _ := e.Read()
	pb, _ := reg.Snapshot()
	ebpfRX := DeltaEBPF(a, b).NetRX.Count.Total
	procRX, _ := Delta(pa, pb).Total("softirqs.NET_RX")
	t.Logf("NET_RX: eBPF %d, /proc/softirqs %d", ebpfRX, procRX)
	if ebpfRX < 1000 || ebpfRX > procRX || float64(procRX-ebpfRX) > 50+0.05*float64(procRX) {
		t.Errorf("eBPF NET_RX %d vs /proc/softirqs %d: should agree within 5%%", ebpfRX, procRX)
	}
}
