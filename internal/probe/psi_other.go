//go:build !linux

package probe

import "github.com/latlab/latlab/internal/netns"

// errNotSupported: there is no PSI off Linux.
var errNotSupported = netns.ErrNotSupported
