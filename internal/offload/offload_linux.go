package offload

import (
	"errors"
	"fmt"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"

	"github.com/latlab/latlab/internal/netns"
)

// Open returns a client for devices in the network namespace at nsPath (a
// path such as /var/run/netns/NAME; "" is the caller's own namespace). The
// caller's namespace is never changed: the socket is opened on a throwaway
// OS thread that entered nsPath (netns.Do), and a socket stays in the
// namespace it was created in.
//
// It uses ethtool netlink, or the legacy SIOCETHTOOL ioctl when the kernel
// has no ethtool generic netlink family.
func Open(nsPath string) (*Client, error) { return open(nsPath, false) }

func open(nsPath string, forceIoctl bool) (*Client, error) {
	var b backend
	err := netns.Do(nsPath, func() error {
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
	return &Client{netns: nsPath, b: b}, nil
}
