package topo_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/datapath"
	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// vethBPFUp builds veth-bpf (plus veth-routed, whose packets its programs
// must never see) and skips, with the reason, where the kernel lacks a
// helper or hook.
func vethBPFUp(t *testing.T, tp *topo.Topology, method string) (*topo.Lab, *topo.ModeState) {
	t.Helper()
	if method != "" {
		m, _ := tp.Mode("veth-bpf")
		for i := range m.Programs {
			m.Programs[i].Method = method
		}
	}
	lab, _ := buildLab(t, tp, []string{"veth-routed", "veth-bpf"}, topo.NATAuto)
	m := lab.Mode("veth-bpf")
	if m.Status == topo.StatusSkipped {
		if !strings.Contains(m.Reason, "not supported") {
			t.Errorf("skip reason does not say what the kernel lacks: %q", m.Reason)
		}
		testutil.SkipIfUnsupported(t, "veth-bpf skipped: %s", m.Reason)
	}
	if m.Status != topo.StatusOK {
		t.Fatalf("veth-bpf %s: %s", m.Status, m.Reason)
	}
	return lab, m
}

// veth-bpf is reachable over both families and both attach methods, and
// its programs, not the stack, forward the traffic: redirect-peer sends
// node b's packets into the pod, fib-redirect the pod's out of the wire.
// The mode reports each program, its device, hook and method.
func TestVethBPFForwardsInBPF(t *testing.T) {
	for _, c := range []struct {
		fam    topo.Family
		method string
	}{{topo.Family4, ""}, {topo.Family6, ""}, {topo.FamilyDual, ""}, {topo.Family4, datapath.MethodTC}} {
		t.Run(fmt.Sprintf("family=%s/method=%s", c.fam, c.method), func(t *testing.T) {
			lab, m := vethBPFUp(t, topo.DefaultFamily(c.fam), c.method)
			if len(m.Programs) != 2 {
				t.Fatalf("programs %+v, want redirect-peer and fib-redirect", m.Programs)
			}
			want := map[string]string{datapath.RedirectPeer: "wire-bpf", datapath.FIBRedirect: "lxc0"}
			for _, p := range m.Programs {
				if want[p.Program] != p.Dev || p.Hook != datapath.HookIngress || p.ID == 0 ||
					(p.Method != datapath.MethodTCX && p.Method != datapath.MethodTC) || (c.method != "" && p.Method != c.method) {
					t.Errorf("program reported as %+v", p)
				}
			}
			if rm := lab.Mode("veth-routed"); rm.Status != topo.StatusOK || len(rm.Programs) != 0 {
				t.Errorf("veth-routed: %s %v", rm.Status, rm.Programs)
			}
			reach(t, lab, m)
			for _, a := range lab.Programs() {
				cnt, err := a.Counts()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %+v", a.Info, cnt)
				// reach ran thousands of transactions each way: nearly all
				// of them must have gone through the program's redirect.
				if cnt.Redirected+cnt.Neigh < 1000 || cnt.Passed*10 > cnt.Seen {
					t.Errorf("%s: counts %+v: the stack, not the program, forwarded", a.Info, cnt)
				}
			}
		})
	}
}

// The programs forward as a router does: the TTL (hop limit) drops by
// exactly one across node a in each direction (redirect_peer and
// bpf_redirect bypass the stack's own decrement), and MACs are right (a
// packet with another's destination MAC would be dropped by the receiver,
// so reachability already checks them).
func TestVethBPFDecrementsTTLOnce(t *testing.T) {
	for _, fam := range []topo.Family{topo.Family4, topo.Family6} {
		t.Run("family="+string(fam), func(t *testing.T) {
			tp := topo.DefaultFamily(fam)
			lab, m := vethBPFUp(t, tp, "")
			server := netip.MustParseAddrPort(m.Mode.Target).Addr()
			pod := netip.MustParseAddr("10.81.0.2")
			if fam == topo.Family6 {
				pod = netip.MustParseAddr("fd00:81::2")
			}
			clientNS, serverNS := topo.NetNSPath(m.ClientNS), topo.NetNSPath(m.ServerNS)
			if got := ttlAcross(t, clientNS, serverNS, server); got != 63 {
				t.Errorf("pod -> node b: TTL %d at the receiver, want 63 (sent 64, one hop)", got)
			}
			if got := ttlAcross(t, serverNS, clientNS, pod); got != 63 {
				t.Errorf("node b -> pod: TTL %d at the receiver, want 63 (sent 64, one hop)", got)
			}
			var fwd uint64
			for _, a := range lab.Programs() {
				c, _ := a.Counts()
				fwd += c.Redirected + c.Neigh
			}
			if fwd == 0 {
				t.Error("no packet went through the programs: the test measured the stack")
			}
		})
	}
}

// ttlAcross sends UDP datagrams with TTL 64 from namespace from to dst:
// 7799 inside namespace to and returns the TTL (hop limit) the receiver
// saw on the first to arrive.
func ttlAcross(t *testing.T, from, to string, dst netip.Addr) int {
	t.Helper()
	family, level, recvOpt, ttlOpt, setOpt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_RECVTTL, unix.IP_TTL, unix.IP_TTL
	if dst.Is6() {
		family, level, recvOpt, ttlOpt, setOpt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, unix.IPV6_HOPLIMIT, unix.IPV6_UNICAST_HOPS
	}
	var rfd int
	err := netns.Do(to, func() error {
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		rfd = fd
		unix.SetsockoptInt(fd, level, recvOpt, 1)
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 3})
		if dst.Is6() {
			return unix.Bind(fd, &unix.SockaddrInet6{Port: 7799})
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 7799})
	})
	if err != nil {
		t.Fatalf("receiver: %v", err)
	}
	defer unix.Close(rfd)
	err = netns.Do(from, func() error {
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, level, setOpt, 64); err != nil {
			return err
		}
		var sa unix.Sockaddr = &unix.SockaddrInet6{Port: 7799, Addr: dst.As16()}
		if dst.Is4() {
			sa = &unix.SockaddrInet4{Port: 7799, Addr: dst.As4()}
		}
		for range 5 { // the first may wait for neighbour resolution
			if err := unix.Sendto(fd, []byte("ttl"), 0, sa); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("sender: %v", err)
	}
	buf, oob := make([]byte, 64), make([]byte, 128)
	_, oobn, _, _, err := unix.Recvmsg(rfd, buf, oob, 0)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range msgs {
		if cm.Header.Level == int32(level) && cm.Header.Type == int32(ttlOpt) && len(cm.Data) >= 4 {
			return int(int32(binary.NativeEndian.Uint32(cm.Data)))
		}
	}
	t.Fatal(errors.New("no TTL in the control message"))
	return 0
}

// sidecar-sockmap's programs carry the loopback hop: both ends of each
// client–sidecar connection go into the sock hash, and the messages of
// tcp_rr go from one socket to the other by bpf_msg_redirect_hash. The
// lab's cgroup is this process's while the lab is up, and goes at
// teardown.
func TestSidecarSockmapShortCircuits(t *testing.T) {
	for _, fam := range []topo.Family{topo.Family4, topo.Family6} {
		t.Run("family="+string(fam), func(t *testing.T) {
			var prefix string
			// Registered first, so it runs after buildLab's teardown.
			t.Cleanup(func() {
				if cg, _ := os.ReadFile("/proc/self/cgroup"); prefix != "" && strings.Contains(string(cg), prefix) {
					t.Errorf("still in the lab's cgroup after teardown: %s", cg)
				}
			})
			lab, _ := buildLab(t, topo.DefaultFamily(fam), []string{"sidecar", "sidecar-sockmap"}, topo.NATAuto)
			prefix = lab.Prefix
			m := lab.Mode("sidecar-sockmap")
			if m.Status == topo.StatusSkipped {
				testutil.SkipIfUnsupported(t, "sidecar-sockmap skipped: %s", m.Reason)
			}
			if m.Status != topo.StatusOK || len(m.Programs) != 1 {
				t.Fatalf("sidecar-sockmap: %s %s %+v", m.Status, m.Reason, m.Programs)
			}
			p := m.Programs[0]
			if p.Program != datapath.ProgSockmap || p.Hook != datapath.HookSockOps || p.Method != datapath.MethodCgroup {
				t.Errorf("program reported as %+v", p)
			}
			cg, err := os.ReadFile("/proc/self/cgroup")
			if err != nil || !strings.Contains(string(cg), lab.Prefix) {
				t.Errorf("this process is not in the lab's cgroup: %q %v", cg, err)
			}
			reach(t, lab, lab.Mode("sidecar"))
			var before datapath.Counts
			for _, a := range lab.Programs() {
				before, _ = a.Counts()
			}
			reach(t, lab, m)
			for _, a := range lab.Programs() {
				c, err := a.Counts()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %+v (after the plain sidecar: %+v)", a.Info, c, before)
				if before.Seen != 0 || before.Redirected != 0 {
					t.Errorf("the plain sidecar's sockets (port 15001) went into the hash: %+v", before)
				}
				if c.Seen < 4 || c.Redirected < 1000 {
					t.Errorf("counts %+v: the loopback hop did not go through sockmap", c)
				}
			}
		})
	}
}
