package cli

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// hostAlias bind-mounts the caller's own network namespace on a fresh
// name under /var/run/netns (as `ip netns attach NAME $$` does) and
// removes the name when the test ends: a string that is not "" but is the
// host's namespace.
func hostAlias(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	name := testutil.UniqueName("latlab-t-")
	path := topo.NetNSPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() {
		if err := topo.DeleteNetNS(name); err != nil { // unmounts the alias only
			t.Errorf("remove alias %s: %v", name, err)
		}
	})
	if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mount the caller's namespace on %s: %v", path, err)
	}
	return name
}

// The host-NIC guard of offload set/coalesce compares namespaces by
// identity: every other name of latlab's own namespace is refused without
// --allow-host-nic, before anything is opened; a lab namespace is not.
func TestOffloadHostNICGuardByIdentity(t *testing.T) {
	alias := hostAlias(t)
	_, labNS := testutil.NewNetNS(t)
	f := withFakeOffload(t)
	for _, ns := range []string{"/proc/thread-self/ns/net", "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net", alias, topo.NetNSPath(alias)} {
		for _, cmd := range [][]string{{"set", "--netns", ns, "veth0", "gro=on"}, {"coalesce", "--netns", ns, "veth0", "rx-usecs=1"}} {
			f.netns = "unopened"
			code, _, stderr := runOffload(t, cmd...)
			if code != ExitUsage || !strings.Contains(stderr, "--allow-host-nic") || f.netns != "unopened" {
				t.Errorf("%v: exit %d, opened %q, stderr %q; want a usage error naming --allow-host-nic, nothing opened", cmd, code, f.netns, stderr)
			}
		}
		code, _, stderr := runOffload(t, "set", "--netns", ns, "--allow-host-nic", "veth0", "gro=on")
		if code != ExitOK {
			t.Errorf("--netns %s --allow-host-nic: exit %d %s", ns, code, stderr)
		}
	}
	code, _, stderr := runOffload(t, "set", "--netns", labNS, "veth0", "gro=on")
	if code != ExitOK || f.netns != labNS {
		t.Errorf("a lab namespace: exit %d netns %q %s", code, f.netns, stderr)
	}
}
