package topo_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/sidecar"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

// buildLab builds t (or the default) with a journal in a temp dir and
// tears it down when the test ends.
func buildLab(t *testing.T, tp *topo.Topology, modes []string, nat string) (*topo.Lab, string) {
	t.Helper()
	testutil.RequireRoot(t)
	if tp == nil {
		tp = topo.Default()
	}
	dir := t.TempDir()
	prefix := testutil.UniqueName("latlab-t")
	j, err := journal.Create(dir, prefix, "test")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := topo.Build(context.Background(), tp, topo.BuildOptions{Prefix: prefix, Modes: modes, Journal: j, NAT: nat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Teardown(); err != nil {
			t.Errorf("teardown: %v", err)
		}
		for _, ns := range lab.Namespaces() {
			if _, err := os.Stat(topo.NetNSPath(ns)); err == nil {
				t.Errorf("namespace %s still there after teardown", ns)
			}
		}
	})
	return lab, dir
}

// reach runs a short tcp_rr and udp_rr through a mode and fails unless
// transactions went through.
func reach(t *testing.T, lab *topo.Lab, m *topo.ModeState) {
	t.Helper()
	listen := m.Mode.Listen
	if listen == "" {
		listen = ":7707"
	}
	srv, err := server.New(server.Config{Listen: listen, NetNS: topo.NetNSPath(m.ServerNS)})
	if err != nil {
		t.Fatalf("%s: server: %v", m.Mode.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if m.Mode.Sidecar != nil {
		p, err := sidecar.Start(sidecar.Config{NetNS: topo.NetNSPath(m.ClientNS), Listen: m.Mode.Target, Upstream: m.Mode.Sidecar.Upstream})
		if err != nil {
			t.Fatalf("%s: sidecar: %v", m.Mode.Name, err)
		}
		defer p.Close()
	}
	for _, w := range []wire.Workload{wire.TCPRR, wire.UDPRR} {
		cfg := workload.Config{Target: m.Mode.Target, Workload: w, Duration: 150 * time.Millisecond,
			NetNS: topo.NetNSPath(m.ClientNS), IOTimeout: 3 * time.Second, UDPTimeout: 200 * time.Millisecond}
		cfg.Defaults()
		res, err := workload.Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s %s: %v", m.Mode.Name, w, err)
		}
		if res.Transactions < 50 {
			t.Fatalf("%s %s: only %d transactions", m.Mode.Name, w, res.Transactions)
		}
	}
}

func TestEveryModeBuiltReachableTornDown(t *testing.T) {
	for _, fam := range []topo.Family{topo.Family4, topo.Family6, topo.FamilyDual} {
		t.Run("family="+string(fam), func(t *testing.T) { everyModeReachable(t, fam) })
	}
}

// everyModeReachable builds the default topology of a family, runs tcp_rr
// and udp_rr through every mode it could build, and checks the caller's
// namespace is untouched. The target must be of the family's dialled
// address; a dual-stack lab must also be reachable over IPv4 (the v4
// plan's targets), so both families work on every link.
func everyModeReachable(t *testing.T, fam topo.Family) {
	before := callerState(t)
	lab, _ := buildLab(t, topo.DefaultFamily(fam), nil, topo.NATAuto)
	t.Logf("built %d modes in %v (NAT via %s)", len(lab.Modes), lab.BuildTime, lab.NATBackend)
	v4 := topo.Default()
	for _, m := range lab.Modes {
		t.Run(m.Mode.Name, func(t *testing.T) {
			if ap := netip.MustParseAddrPort(m.Mode.Target); ap.Addr().Is6() != (fam != topo.Family4) {
				t.Fatalf("target %s is not of family %s's dialled address", m.Mode.Target, fam)
			}
			if kind, opt := kernelNeeds(m.Mode.Name); kind != "" && m.Status == topo.StatusSkipped {
				// This kernel may lack ipvlan or netkit; the reason must
				// say so, citing the kernel option.
				if !strings.Contains(m.Reason, kind) || !strings.Contains(m.Reason, "not supported") || !strings.Contains(m.Reason, opt) {
					t.Errorf("skip reason does not explain: %q", m.Reason)
				}
				if strings.HasPrefix(topo.KernelConfig(opt), "CONFIG_") {
					t.Errorf("the kernel has %s (%s) but the mode was skipped: %s", kind, topo.KernelConfig(opt), m.Reason)
				}
				t.Logf("kernel lacks %s, reported as skipped: %s", kind, m.Reason)
				return
			}
			if (m.Mode.Name == "veth-bpf" || m.Mode.Name == "sidecar-sockmap") && m.Status == topo.StatusSkipped && strings.Contains(m.Reason, "not supported") {
				t.Logf("kernel lacks an eBPF helper or hook, reported as skipped: %s", m.Reason)
				return
			}
			if m.Status != topo.StatusOK {
				t.Fatalf("status %s: %s", m.Status, m.Reason)
			}
			reach(t, lab, m)
			if fam == topo.FamilyDual {
				m4 := *m
				for _, vm := range v4.Modes {
					if vm.Name == m.Mode.Name {
						m4.Mode.Target = vm.Target
					}
				}
				reach(t, lab, &m4)
			}
		})
	}
	if after := callerState(t); after != before {
		t.Errorf("the caller's namespace changed:\nbefore: %s\nafter:  %s", before, after)
	}
}

func TestIPvlanDetectedNotCrashed(t *testing.T) {
	lab, _ := buildLab(t, nil, []string{"host", "ipvlan-l2", "ipvlan-l3"}, topo.NATAuto)
	cfg := topo.KernelConfig("CONFIG_IPVLAN")
	for _, name := range []string{"ipvlan-l2", "ipvlan-l3"} {
		m := lab.Mode(name)
		switch {
		case cfg == "# CONFIG_IPVLAN is not set" && m.Status != topo.StatusSkipped:
			t.Errorf("%s: kernel says %q but status is %s (%s)", name, cfg, m.Status, m.Reason)
		case m.Status == topo.StatusOK:
			reach(t, lab, m)
		case m.Status == topo.StatusFailed:
			t.Errorf("%s failed: %s", name, m.Reason)
		}
	}
	if lab.Mode("host").Status != topo.StatusOK {
		t.Errorf("host mode should survive a skipped mode: %+v", lab.Mode("host"))
	}
}

func TestIptablesFallbackBackend(t *testing.T) {
	testutil.RequireTool(t, "iptables")
	testutil.RequireTool(t, "nsenter")
	t.Run("ipv4", func(t *testing.T) { iptablesFallback(t, topo.Default()) })
	t.Run("ipv6", func(t *testing.T) {
		testutil.RequireTool(t, "ip6tables")
		iptablesFallback(t, topo.DefaultFamily(topo.Family6))
	})
}

func iptablesFallback(t *testing.T, tp *topo.Topology) {
	lab, _ := buildLab(t, tp, []string{"bridge-nat", "bridge-nat-dnat"}, topo.NATIptables)
	if lab.NATBackend != topo.NATIptables {
		t.Fatalf("backend %q", lab.NATBackend)
	}
	for _, m := range lab.Modes {
		if m.Status != topo.StatusOK {
			t.Fatalf("%s: %s", m.Mode.Name, m.Reason)
		}
		reach(t, lab, m)
	}
}

func TestJournalSweepAfterCrash(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	prefix := testutil.UniqueName("latlab-t")
	j, err := journal.Create(dir, prefix, "test")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := topo.Build(context.Background(), topo.Default(), topo.BuildOptions{Prefix: prefix, Modes: []string{"host", "bridge-nat"}, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	names := lab.Namespaces()
	t.Cleanup(func() {
		for _, n := range names {
			topo.DeleteNetNS(n)
		}
	})
	// While the owner holds the journal, a sweep leaves it alone.
	res, err := journal.Sweep(dir, journal.SweepOptions{Handlers: topo.UndoHandlers()})
	if err != nil || len(res.Busy) != 1 || len(res.Journals) != 0 {
		t.Fatalf("sweep of a live journal: %+v, %v", res, err)
	}
	// Simulate the owner dying: drop the lock without teardown. (The
	// kill -9 test in internal/cli does this with a real process.)
	if err := lab.Keep(); err != nil {
		t.Fatal(err)
	}
	res, err = journal.Sweep(dir, journal.SweepOptions{Handlers: topo.UndoHandlers()})
	if err != nil || len(res.Kept) != 1 {
		t.Fatalf("a kept journal must survive a plain sweep: %+v, %v", res, err)
	}
	res, err = journal.Sweep(dir, journal.SweepOptions{IncludeKept: true, Handlers: topo.UndoHandlers()})
	if err != nil || len(res.Journals) != 1 || len(res.Undone) != len(names) {
		t.Fatalf("sweep: %+v, %v (want %d namespaces undone)", res, err, len(names))
	}
	for _, n := range names {
		if _, err := os.Stat(topo.NetNSPath(n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s survived the sweep", n)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Errorf("journal files left: %v", m)
	}
}

func TestBadTopologyRejected(t *testing.T) {
	cases := map[string]string{
		"unknown kind":  "name: x\nbase: {namespaces: [a], links: [{kind: tun, ns: a, name: t0}]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1}]\n",
		"undefined ns":  "name: x\nbase: {namespaces: [a]}\nmodes: [{name: m, client: a, server: zz, target: 10.0.0.1:1}]\n",
		"bad target":    "name: x\nbase: {namespaces: [a]}\nmodes: [{name: m, client: a, server: a, target: nowhere}]\n",
		"host sysctl":   "name: x\nbase: {namespaces: [a], sysctls: [{ns: a, key: kernel.pid_max, value: '1'}]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1}]\n",
		"unknown field": "name: x\nbase: {namespaces: [a]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1, colour: red}]\n",
		"long ifname":   "name: x\nbase: {namespaces: [a], links: [{kind: bridge, ns: a, name: abcdefghijklmnopq}]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1}]\n",
	}
	for name, y := range cases {
		if _, err := topo.ParseTopology([]byte(y), "t.yaml"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDefaultTopologyRoundTripsYAML(t *testing.T) {
	for _, fam := range []topo.Family{topo.Family4, topo.Family6, topo.FamilyDual} {
		t.Run(string(fam), func(t *testing.T) { roundTrip(t, topo.DefaultFamily(fam)) })
	}
}

func roundTrip(t *testing.T, d *topo.Topology) {
	b, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := topo.ParseTopology(b, "default.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b2, _ := back.YAML()
	if string(b) != string(b2) {
		t.Errorf("YAML round trip differs")
	}
	want := []string{"host", "bridge-nat", "bridge-nat-dnat", "veth-routed", "veth-bpf", "sidecar", "sidecar-sockmap", "macvlan", "ipvlan-l2", "ipvlan-l3", "netkit", "vxlan"}
	if !slices.Equal(back.ModeNames(), want) {
		t.Errorf("modes %v, want %v", back.ModeNames(), want)
	}
}

// callerState fingerprints the caller's own namespace: links, addresses
// and routes. Building a lab must not change it.
func callerState(t *testing.T) string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, l := range links {
		a := l.Attrs()
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
		var as []string
		for _, ad := range addrs {
			as = append(as, ad.IPNet.String())
		}
		parts = append(parts, a.Name+"["+strings.Join(as, ",")+"]")
	}
	routes, _ := netlink.RouteList(nil, netlink.FAMILY_ALL)
	for _, r := range routes {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, " ")
}

// kernelNeeds names the link type a default mode needs that kernels may
// lack, and the kernel option that provides it.
func kernelNeeds(mode string) (kind, opt string) {
	switch {
	case strings.HasPrefix(mode, "ipvlan"):
		return "ipvlan", "CONFIG_IPVLAN"
	case mode == "netkit":
		return "netkit", "CONFIG_NETKIT"
	}
	return "", ""
}
