// Package topo builds network topologies (namespaces, veth pairs, bridges,
// macvlan, vxlan) through netlink and tears them down.
package topo

import (
	"errors"
	"path/filepath"
)

// NetNSDir is where named network namespaces are bind-mounted, as iproute2
// does.
const NetNSDir = "/var/run/netns"

// ErrNotSupported is returned where the platform or kernel lacks a feature.
var ErrNotSupported = errors.New("not supported")

// NetNSPath returns the path of the named namespace.
func NetNSPath(name string) string { return filepath.Join(NetNSDir, name) }
