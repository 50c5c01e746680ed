package topo

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CreateNetNS creates a named network namespace with its loopback up. It
// never changes the caller's own namespace: the work happens on a throwaway
// OS thread.
//
// Equivalent to: ip netns add NAME && ip -n NAME link set lo up
func CreateNetNS(name string) error {
	if err := prepareNetNSDir(); err != nil {
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	path := NetNSPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread is discarded when this goroutine ends,
		// so its namespace cannot leak into the runtime's thread pool.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	if err := withHandle(name, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.LinkSetUp(lo)
	}); err != nil {
		DeleteNetNS(name)
		return fmt.Errorf("create netns %s: set lo up: %w", name, err)
	}
	return nil
}

// prepareNetNSDir makes NetNSDir a shared mount point, as iproute2 does
// before its first `ip netns add`. Without it, a later `ip netns add` (by
// anyone) bind-mounts the directory over itself and hides the namespaces
// mounted before, which then can be neither unmounted nor removed by path.
//
// Equivalent to: mount --make-rshared /run/netns || (mount --bind /run/netns
// /run/netns && mount --make-rshared /run/netns)
func prepareNetNSDir() error {
	if err := os.MkdirAll(NetNSDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", NetNSDir, err)
	}
	if err := unix.Mount(NetNSDir, NetNSDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s: %w", NetNSDir, err)
	}
	if err := unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", NetNSDir, err)
	}
	return nil
}

// DeleteNetNS removes a named namespace. A missing namespace is not an
// error. Interfaces inside it disappear with it (veth peers too).
//
// Equivalent to: ip netns delete NAME
func DeleteNetNS(name string) error {
	path := NetNSPath(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete netns %s: unmount: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("delete netns %s: %w (its mount is hidden under a later mount of %s; see /proc/self/mountinfo)", name, err, NetNSDir)
		}
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// withHandle runs fn with a netlink handle bound to the named namespace.
func withHandle(name string, fn func(*netlink.Handle) error) error {
	ns, err := netns.GetFromPath(NetNSPath(name))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", name, err)
	}
	defer h.Close()
	return fn(h)
}
