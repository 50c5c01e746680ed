package datapath_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/latlab/latlab/internal/datapath"
	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// pair makes two fresh namespaces joined by a veth v0 (10.99.0.1/24, in
// the first) – v1 (10.99.0.2/24, in the second), both up.
func pair(t *testing.T) (ns1, ns2 string) {
	t.Helper()
	_, ns1 = testutil.NewNetNS(t)
	_, ns2 = testutil.NewNetNS(t)
	h1 := handle(t, ns1)
	fd2, err := vnetns.GetFromPath(ns2)
	if err != nil {
		t.Fatal(err)
	}
	defer fd2.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "v0"
	if err := h1.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "v1", PeerNamespace: netlink.NsFd(int(fd2))}); err != nil {
		t.Fatalf("create veth: %v", err)
	}
	for _, s := range []struct{ ns, dev, addr string }{{ns1, "v0", "10.99.0.1/24"}, {ns2, "v1", "10.99.0.2/24"}} {
		h := handle(t, s.ns)
		l, err := h.LinkByName(s.dev)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(s.addr)
		if err := h.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return ns1, ns2
}

func handle(t *testing.T, nsPath string) *netlink.Handle {
	t.Helper()
	fd, err := vnetns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// send writes n UDP datagrams from ns1 to v1's address.
func send(t *testing.T, ns1 string, n int) {
	t.Helper()
	err := netns.Do(ns1, func() error {
		c, err := net.Dial("udp", "10.99.0.2:9")
		if err != nil {
			return err
		}
		defer c.Close()
		for range n {
			c.Write([]byte("latlab"))
			time.Sleep(time.Millisecond) // the first ones may wait for ARP
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// programGone waits until the kernel has freed program id.
func programGone(t *testing.T, id uint32) bool {
	t.Helper()
	for range 200 {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			return true
		}
		p.Close()
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// Each method attaches, counts the packets it sees (traffic to the
// namespace itself is left to the stack), reports itself, and Close
// detaches it and frees the program.
func TestAttachCountsAndDetaches(t *testing.T) {
	for _, method := range []string{datapath.MethodTCX, datapath.MethodTC} {
		t.Run(method, func(t *testing.T) {
			ns1, ns2 := pair(t)
			a, err := datapath.Attach(datapath.Spec{NSPath: ns2, NS: "ns2", Dev: "v1", Hook: datapath.HookIngress,
				Program: datapath.FIBRedirect, Method: method})
			if errors.Is(err, datapath.ErrNotSupported) {
				testutil.SkipIfUnsupported(t, "%v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if a.Info.Method != method || a.Info.ID == 0 || a.Info.Dev != "v1" || a.Info.Hook != "ingress" {
				t.Errorf("info %+v", a.Info)
			}
			if live, err := a.Live(); !live || err != nil {
				t.Fatalf("not attached after Attach: %v", err)
			}
			send(t, ns1, 20)
			c, err := a.Counts()
			if err != nil {
				t.Fatal(err)
			}
			// 20 datagrams (less the few the sender's neighbour queue
			// dropped while ARP resolved) and ARP, all for the namespace
			// itself.
			if c.Seen < 10 || c.Passed != c.Seen || c.Redirected != 0 {
				t.Errorf("counts %+v: want >= 10 seen, all passed to the stack", c)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if live, _ := a.Live(); live {
				t.Error("still attached after Close")
			}
			if method == datapath.MethodTC {
				if fs, _ := handle(t, ns2).FilterList(mustLink(t, ns2, "v1"), netlink.HANDLE_MIN_INGRESS); len(fs) != 0 {
					t.Errorf("filters left after Close: %v", fs)
				}
			}
			if !programGone(t, a.Info.ID) {
				t.Errorf("program %d still loaded after Close", a.Info.ID)
			}
		})
	}
}

func mustLink(t *testing.T, ns, dev string) netlink.Link {
	l, err := handle(t, ns).LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// What a dead run leaves is removed with its namespace: a TCX link still
// held by a process is detached when its device goes (the program is freed
// once the holder closes it, which a dead process has), and a tc filter,
// which nothing in the process holds, goes with the device at once.
func TestProgramsDieWithTheirNamespace(t *testing.T) {
	for _, method := range []string{datapath.MethodTCX, datapath.MethodTC} {
		t.Run(method, func(t *testing.T) {
			testutil.RequireRoot(t)
			ns1 := testutil.UniqueName("latlab-t-")
			if err := topo.CreateNetNS(ns1); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { topo.DeleteNetNS(ns1) })
			ns := topo.NetNSPath(ns1)
			// Nothing of this test may hold the namespace open.
			testutil.NewVeth(t, ns, "v0", "v1")
			if err := netns.Do(ns, func() error {
				h, err := netlink.NewHandle()
				if err != nil {
					return err
				}
				defer h.Close()
				l, err := h.LinkByName("v0")
				if err != nil {
					return err
				}
				return h.LinkSetUp(l)
			}); err != nil {
				t.Fatal(err)
			}
			a, err := datapath.Attach(datapath.Spec{NSPath: ns, NS: ns1, Dev: "v0", Hook: datapath.HookIngress,
				Program: datapath.FIBRedirect, Method: method})
			if errors.Is(err, datapath.ErrNotSupported) {
				testutil.SkipIfUnsupported(t, "%v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			id := a.Info.ID
			if err := topo.DeleteNetNS(ns1); err != nil {
				t.Fatal(err)
			}
			// Devices are unregistered once the namespace's last user is gone.
			deadline := time.Now().Add(5 * time.Second)
			for {
				live, err := a.Live()
				if err != nil {
					t.Fatal(err)
				}
				if !live {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s program still attached 5 s after its namespace was deleted", method)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := a.Close(); err != nil {
				t.Errorf("close after the namespace went: %v", err)
			}
			if !programGone(t, id) {
				t.Errorf("program %d still loaded", id)
			}
		})
	}
}

// Both programs pass this kernel's verifier (no namespace, no traffic).
func TestProgramsLoad(t *testing.T) {
	testutil.RequireRoot(t)
	for _, p := range append(datapath.Programs(), datapath.ProgSockmap) {
		if err := datapath.Load(p); err != nil {
			if errors.Is(err, datapath.ErrNotSupported) {
				testutil.SkipIfUnsupported(t, "%v", err)
			}
			t.Errorf("%s: %v", p, err)
		}
	}
}
