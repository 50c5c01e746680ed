package topo

import (
	"errors"
	"fmt"
	"io/fs"
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

// callerNetNS is the caller's own network namespace, read from the calling
// thread. Not /proc/self/ns/net: that is the main thread's, and the main
// thread can be the one a throwaway namespace thread (CreateNetNS) ran on —
// the runtime never exits the main thread, it parks it, still in the lab
// namespace. Threads that are not locked into a namespace are all in the
// caller's; netNSID locks its goroutine to one for the stat.
const callerNetNS = "/proc/thread-self/ns/net"

// initNetNS is the namespace of PID 1: the host's, unless latlab runs in a
// PID namespace of its own.
const initNetNS = "/proc/1/ns/net"

// SameNetNS reports whether the network namespace files a and b (paths such
// as /var/run/netns/NAME or /proc/PID/ns/net; "" is the caller's own
// namespace) are the same namespace. It compares identities (device and
// inode of the nsfs file), not strings: /proc/1/ns/net (in the host's
// namespace), /proc/thread-self/ns/net and a name under /var/run/netns
// bind-mounted from either are all one.
func SameNetNS(a, b string) (bool, error) {
	ia, err := netNSID(a)
	if err != nil {
		return false, err
	}
	ib, err := netNSID(b)
	if err != nil {
		return false, err
	}
	return ia == ib, nil
}

// IsHostNetNS reports whether path ("" is the caller's own namespace) is
// the caller's network namespace or PID 1's: where the host's real NICs
// live. Guards that need --allow-host-nic ask this rather than compare
// the path with "". A path that does not exist is no namespace, so not the
// host's (opening it fails later, with its own error); PID 1's namespace
// is only compared when it can be read.
func IsHostNetNS(path string) (bool, error) {
	if path == "" {
		return true, nil
	}
	target, err := netNSID(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	self, err := netNSID("")
	if err != nil {
		return false, err
	}
	if target == self {
		return true, nil
	}
	init, err := netNSID(initNetNS)
	if err != nil {
		return false, nil
	}
	return target == init, nil
}

type nsID struct{ dev, ino uint64 }

// netNSID returns the identity of a network namespace file.
func netNSID(path string) (nsID, error) {
	if path == "" {
		path = callerNetNS
	}
	// An unlocked goroutine never runs on a thread that entered another
	// namespace (those stay locked until they exit); locking keeps the
	// thread-self lookup and the stat on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, fmt.Errorf("identify netns %s: %w", path, err)
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}, nil
}
