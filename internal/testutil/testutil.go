package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/latlab/latlab/internal/topo"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipIfUnsupported skips the test with the reason, or fails it under
// CI=true.
func SkipIfUnsupported(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true, refusing to skip: "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips (fails under CI) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipIfUnsupported(t, "needs root (namespaces, pinning, netlink); run the suite as root")
	}
}

// RequireTool returns the path of an external program, or skips (fails
// under CI) when it is not installed.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipIfUnsupported(t, "%s is not installed (apt-get install it; .ci/run does)", name)
	}
	return p
}

// UniqueName returns prefix plus a random suffix: "latlab-t-3fa9c1".
// Interface names must stay within 15 bytes, so keep prefixes short.
func UniqueName(prefix string) string {
	var b [3]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// NewNetNS creates a fresh named network namespace (loopback up) and
// removes it when the test ends, pass or fail. It returns the name and the
// path under /var/run/netns.
func NewNetNS(t testing.TB) (name, path string) {
	t.Helper()
	RequireRoot(t)
	name = UniqueName("latlab-t-")
	if err := topo.CreateNetNS(name); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := topo.DeleteNetNS(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name, topo.NetNSPath(name)
}

// NewVeth creates a veth pair a–b inside the namespace at nsPath (never in
// the caller's namespace); it goes away with the namespace.
//
// Equivalent to: ip -n NS link add A type veth peer name B
func NewVeth(t testing.TB, nsPath, a, b string) {
	t.Helper()
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	la := netlink.NewLinkAttrs()
	la.Name = a
	if err := nh.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: b}); err != nil {
		t.Fatalf("create veth %s in %s: %v", a, nsPath, err)
	}
}
