package offload

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/latlab/latlab/internal/testutil"
)

// newVeth creates a veth pair (up) inside a fresh namespace and returns the
// namespace path and one end's name. The namespace and both ends vanish
// when the test ends.
func newVeth(t *testing.T) (nsPath, dev string) {
	t.Helper()
	_, nsPath = testutil.NewNetNS(t)
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := vnl.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	veth := &vnl.Veth{LinkAttrs: vnl.LinkAttrs{Name: "llo0"}, PeerName: "llo1"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("create veth in %s: %v", nsPath, err)
	}
	for _, n := range []string{"llo0", "llo1"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return nsPath, "llo0"
}

// recorder keeps the last reply of each command.
type recorder struct {
	transport
	replies map[uint8][]genetlink.Message
}

func (r *recorder) Execute(m genetlink.Message, family uint16, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	msgs, err := r.transport.Execute(m, family, flags)
	if err == nil {
		r.replies[m.Header.Command] = msgs
	}
	return msgs, err
}

// TestCaptureVethReplies refreshes testdata from this kernel's veth:
// LATLAB_CAPTURE=1 go test ./internal/offload -run TestCaptureVethReplies
func TestCaptureVethReplies(t *testing.T) {
	if os.Getenv("LATLAB_CAPTURE") != "1" {
		t.Skip("set LATLAB_CAPTURE=1 to rewrite testdata from the running kernel")
	}
	nsPath, dev := newVeth(t)
	c, err := Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, ok := c.b.(*ethnl)
	if !ok {
		t.Fatalf("backend %s, want netlink", c.Backend())
	}
	rec := &recorder{transport: e.t, replies: map[uint8][]genetlink.Message{}}
	e.t = rec
	if _, err := c.Show(dev); err != nil {
		t.Fatal(err)
	}
	for cmd, file := range map[uint8]string{
		msgStrsetGet:   "veth-strset-reply.bin",
		msgFeaturesGet: "veth-features-reply.bin",
		msgCoalesceGet: "veth-coalesce-reply.bin",
		msgChannelsGet: "veth-channels-reply.bin",
		msgRingsGet:    "veth-rings-reply.bin",
	} {
		msgs := rec.replies[cmd]
		if len(msgs) != 1 {
			t.Logf("command %d: %d replies, not written", cmd, len(msgs))
			os.Remove(filepath.Join("testdata", file))
			continue
		}
		b, err := msgs[0].MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", file), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func openVeth(t *testing.T, forceIoctl bool) (*Client, string) {
	t.Helper()
	nsPath, dev := newVeth(t)
	c, err := open(nsPath, forceIoctl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, dev
}

func TestIntegrationShow(t *testing.T) {
	c, dev := openVeth(t, false)
	if c.Backend() != "netlink" {
		t.Errorf("backend %s, want netlink on this kernel", c.Backend())
	}
	info, err := c.Show(dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range info.Features {
		t.Logf("%-40s %-28s %+v", f.Name, f.Kernel, f.State)
	}
	t.Logf("coalesce %v rings %v channels %v", info.Coalesce, info.Rings, info.Channels)
	for _, name := range []string{"tx-tcp-segmentation", "generic-receive-offload", "tx-checksum-ip-generic", "tx-generic-segmentation"} {
		if _, ok := info.Features.Get(name); !ok {
			t.Errorf("feature %s missing", name)
		}
	}
	if f, _ := info.Features.Get("rx-gro"); f.Name != "generic-receive-offload" {
		t.Errorf("rx-gro shown as %q, want ethtool's generic-receive-offload", f.Name)
	}
	if f, _ := info.Features.Get("large-receive-offload"); !f.Fixed || f.Active {
		t.Errorf("veth large-receive-offload: %+v, want off [fixed]", f.State)
	}
	if f, _ := info.Features.Get("tx-tcp-segmentation"); f.Fixed || !f.Active {
		t.Errorf("veth tx-tcp-segmentation: %+v, want on, changeable", f.State)
	}
	// veth: no coalescing or ring settings, one rx and one tx channel.
	if info.Channels["rx"] < 1 || info.Channels["tx"] < 1 {
		t.Errorf("veth channels %v, want rx and tx", info.Channels)
	}
	if _, err := c.Coalesce(dev); err != nil && !errors.Is(err, ErrNotSupported) {
		t.Errorf("coalesce: %v", err)
	}
}

func names(cs []Change) map[string]bool {
	m := map[string]bool{}
	for _, c := range cs {
		m[c.Name] = true
	}
	return m
}

func refusedNames(rs []Refusal) map[string]bool {
	m := map[string]bool{}
	for _, r := range rs {
		m[r.Name] = true
	}
	return m
}

func checkSetRestore(t *testing.T, forceIoctl bool) {
	c, dev := openVeth(t, forceIoctl)
	self, _ := os.Readlink("/proc/self/ns/net")
	snap, err := c.Snapshot(dev)
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as the journal will store it.
	b, err := snap.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	snap, err = UnmarshalSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}

	res, err := c.Set(dev, []Setting{{"tso", false}, {"gro", true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("set tso=off gro=on: %+v", res)
	ch := names(res.Changed)
	for _, n := range []string{"tx-tcp-segmentation", "tx-tcp6-segmentation", "generic-receive-offload"} {
		if !ch[n] {
			t.Errorf("%s not reported changed: %+v", n, res)
		}
	}
	if len(res.Refused) != 0 {
		t.Errorf("refused: %+v", res.Refused)
	}
	fs, err := c.Features(dev)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := fs.Get("tso"); f.Name != "" {
		t.Errorf("alias tso found as a feature: %+v", f)
	}
	if f, _ := fs.Get("tx-tcp-segmentation"); f.Active {
		t.Errorf("TSO still on after tso=off")
	}
	if f, _ := fs.Get("rx-gro"); !f.Active {
		t.Errorf("GRO still off after gro=on")
	}
	res, err = c.Set(dev, []Setting{{"gro", false}})
	if err != nil {
		t.Fatal(err)
	}
	if !names(res.Changed)["generic-receive-offload"] {
		t.Errorf("gro=off: %+v", res)
	}

	// A fixed feature is refused, not silently ignored.
	res, err = c.Set(dev, []Setting{{"lro", true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refused) != 1 || res.Refused[0].Name != "large-receive-offload" {
		t.Errorf("lro=on on veth: %+v, want refused", res)
	}

	// Turning off tx checksumming drops segmentation offloads with it, and
	// TSO cannot come back while checksumming is off.
	res, err = c.Set(dev, []Setting{{"tx", false}, {"tso", true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("set tx=off tso=on: %+v", res)
	if !refusedNames(res.Refused)["tx-tcp-segmentation"] {
		t.Errorf("tso=on with tx=off not refused: %+v", res)
	}
	// Which features follow checksumming is the kernel's business (6.18:
	// tx-udp-segmentation); something must have moved along.
	if len(res.Dependent) == 0 {
		t.Errorf("no dependent feature reported for tx=off: %+v", res)
	}

	rr, err := c.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore: %+v", rr)
	if len(rr.Failed) != 0 {
		t.Errorf("restore failed for %v", rr.Failed)
	}
	after, err := c.Snapshot(dev)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range snap.Features {
		if got := after.Features[k]; got != want {
			t.Errorf("%s after restore %+v, snapshot %+v", k, got, want)
		}
	}
	if now, _ := os.Readlink("/proc/self/ns/net"); now != self {
		t.Errorf("caller's namespace changed: %s -> %s", self, now)
	}
}

func TestIntegrationSetRestore(t *testing.T) { checkSetRestore(t, false) }

func TestIntegrationIoctlSetRestore(t *testing.T) { checkSetRestore(t, true) }

func TestIntegrationIoctlMatchesNetlink(t *testing.T) {
	nsPath, dev := newVeth(t)
	var got [2]Features
	for i, force := range []bool{false, true} {
		c, err := open(nsPath, force)
		if err != nil {
			t.Fatal(err)
		}
		if got[i], err = c.Features(dev); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if len(got[0]) != len(got[1]) {
		t.Fatalf("netlink %d features, ioctl %d", len(got[0]), len(got[1]))
	}
	for i := range got[0] {
		if got[0][i] != got[1][i] {
			t.Errorf("netlink %+v, ioctl %+v", got[0][i], got[1][i])
		}
	}
}

func TestIntegrationErrors(t *testing.T) {
	c, dev := openVeth(t, false)
	_, err := c.Features("nosuch0")
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "read features of nosuch0 in netns "+c.NetNS()) {
		t.Errorf("missing device: %v", err)
	}
	_, err = Show("/var/run/netns/latlab-no-such-ns", dev)
	if err == nil || !strings.Contains(err.Error(), "read features of "+dev+" in netns /var/run/netns/latlab-no-such-ns") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing netns: %v", err)
	}
	_, err = c.Set(dev, []Setting{{"tcp-segmentation-ofload", false}})
	if !errors.Is(err, ErrUnknownFeature) || !strings.Contains(err.Error(), "tcp-segmentation-offload") {
		t.Errorf("unknown feature: %v", err)
	}
	_, err = c.Set(dev, []Setting{{"ufo", false}})
	t.Logf("ufo: %v", err)
	_, err = c.Set("nosuch0", []Setting{{"tso", false}})
	if !errors.Is(err, ErrNoDevice) {
		t.Errorf("set on missing device: %v", err)
	}
}

func TestIntegrationCoalesce(t *testing.T) {
	c, dev := openVeth(t, false)
	co, err := c.Coalesce(dev)
	switch {
	case errors.Is(err, ErrNotSupported):
		t.Logf("veth has no coalescing on this kernel: %v", err)
	case err != nil:
		t.Fatal(err)
	default:
		t.Logf("veth coalescing: %v", co)
	}
	ch, err := c.Channels(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("veth channels: %v", ch)
	if _, err := c.Rings(dev); err != nil && !errors.Is(err, ErrNotSupported) {
		t.Fatal(err)
	}
}
