package probe

import (
	"io"
	"net"
	"testing"

	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/testutil"
)

// loopbackTCP opens a TCP connection over loopback inside the namespace
// and does n one-byte request/response exchanges.
func loopbackTCP(t *testing.T, nsPath string, n int) {
	t.Helper()
	var ln net.Listener
	var c net.Conn
	err := netns.Do(nsPath, func() error {
		var err error
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return err
		}
		c, err = net.Dial("tcp4", ln.Addr().String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go io.Copy(s, s) // echo
	buf := make([]byte, 1)
	for range n {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNamespaceCounters: loopback traffic in one namespace raises NET_RX
// softirqs (host-wide) and that namespace's Tcp InSegs, and leaves another
// namespace's snmp counters alone.
func TestNamespaceCounters(t *testing.T) {
	testutil.RequireRoot(t)
	_, busy := testutil.NewNetNS(t)
	_, idle := testutil.NewNetNS(t)
	rBusy := NewRegistry(Softirqs{}, Softnet{}, Stat{}, NetStat{NetNS: busy})
	rIdle := NewRegistry(NetStat{NetNS: idle})
	a, err := rBusy.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ai, err := rIdle.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	loopbackTCP(t, busy, n)
	b, err := rBusy.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	bi, err := rIdle.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	d, di := Delta(a, b), Delta(ai, bi)
	if v, _ := d.Total(KeyNetRX); v < n {
		t.Errorf("NET_RX softirqs +%d, want >= %d", v, n)
	}
	// Each exchange is two data segments; the handshake and ACKs add more.
	if v, _ := d.Total(KeyInSegs); v < 2*n {
		t.Errorf("busy namespace InSegs +%d, want >= %d", v, 2*n)
	}
	if v, _ := d.Total(KeyOutSegs); v < 2*n {
		t.Errorf("busy namespace OutSegs +%d, want >= %d", v, 2*n)
	}
	if v, ok := di.Total(KeyInSegs); !ok || v != 0 {
		t.Errorf("idle namespace InSegs +%d (present %v), want 0", v, ok)
	}
	for k, c := range di.Counters {
		if c.Total != 0 {
			t.Errorf("idle namespace %s moved by %d", k, c.Total)
		}
	}
	if v, _ := d.Total(KeySoftnetProc); v < n {
		t.Errorf("softnet processed +%d, want >= %d", v, n)
	}
	at := Attribute(d, n)
	t.Logf("attribution over %d loopback exchanges: %+v", n, at)
	if at.NetRXSoftirqsPerTxn <= 0 || at.EBPFTier != TierProc {
		t.Errorf("attribution %+v", at)
	}
}

// TestHostSnapshot reads the real /proc and /sys.
func TestHostSnapshot(t *testing.T) {
	s, err := DefaultRegistry(Options{}).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{KeyNetRX, KeyNetTX, KeySoftirqUs, KeyInterrupts, KeySoftnetProc, KeyInSegs, KeyRetransSegs, KeyListenDrops} {
		if _, ok := s.Counters[k]; !ok {
			t.Errorf("%s missing", k)
		}
	}
	t.Logf("unavailable on this host: %v", s.Unavailable)
}
