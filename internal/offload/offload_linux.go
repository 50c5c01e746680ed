package offload

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Open returns a client for devices in the network namespace at netns (a
// path such as /var/run/netns/NAME; "" is the caller's own namespace). The
// caller's namespace is never changed: the socket is opened on a throwaway
// OS thread that entered netns, and a socket stays in the namespace it was
// created in.
//
// It uses ethtool netlink, or the legacy SIOCETHTOOL ioctl when the kernel
// has no ethtool generic netlink family.
func Open(netns string) (*Client, error) { return open(netns, false) }

func open(netns string, forceIoctl bool) (*Client, error) {
	var b backend
	err := inNetNS(netns, func() error {
		if !forceIoctl {
			conn, err := genetlink.Dial(nil)
			if err != nil {
				return fmt.Errorf("dial generic netlink: %w", err)
			}
			e, err := newEthnl(conn)
			if err == nil {
				// Best effort: the kernel's explanation in error messages.
				_ = conn.SetOption(netlink.ExtendedAcknowledge, true)
				b = e
				return nil
			}
			conn.Close()
			if !errors.Is(err, ErrNotSupported) {
				return err
			}
		}
		ib, err := newIoctl()
		if err != nil {
			return err
		}
		b = ib
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Client{netns: netns, b: b}, nil
}

// inNetNS runs fn inside the namespace at path on a locked OS thread that is
// never unlocked, so the runtime discards the thread when fn returns and
// its namespace cannot leak to other goroutines. An empty path runs fn in
// the caller's namespace.
func inNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked (see above).
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
