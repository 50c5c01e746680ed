package testutil

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/topo"
)

// HostNetNSAlias makes a name under /var/run/netns that is the calling
// thread's own namespace, bind-mounted as `ip netns attach NAME $$` would,
// and removes it (the mount only) when the test ends.
func HostNetNSAlias(t testing.TB) (name, path string) {
	t.Helper()
	name = UniqueName("latlab-t-")
	path = topo.NetNSPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() {
		if err := topo.DeleteNetNS(name); err != nil { // unmounts the alias only
			t.Errorf("remove alias: %v", err)
		}
	})
	if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mount the caller's namespace on %s: %v", path, err)
	}
	return name, path
}
