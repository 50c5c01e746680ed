package netns

import (
	"errors"
	"path/filepath"
)

// Dir is where named network namespaces are bind-mounted, as iproute2 does.
const Dir = "/var/run/netns"

// ErrNotSupported is returned where the platform or kernel lacks a feature.
// Packages that return it wrap it (or alias it), so errors.Is(err,
// netns.ErrNotSupported) holds whichever package said it.
var ErrNotSupported = errors.New("not supported")

// Path returns the path of the named namespace under Dir.
//
// Equivalent to the NAME in: ip netns exec NAME ...
func Path(name string) string { return filepath.Join(Dir, name) }
