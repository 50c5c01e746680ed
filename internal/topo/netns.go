package topo

import (
	"os"
	"strings"

	"github.com/latlab/latlab/internal/netns"
)

// NetNSDir is where named network namespaces are bind-mounted, as iproute2
// does (netns.Dir).
const NetNSDir = netns.Dir

// ErrNotSupported is returned where the platform or kernel lacks a feature:
// netns.ErrNotSupported, so errors.Is works across packages.
var ErrNotSupported = netns.ErrNotSupported

// NetNSPath returns the path of the named namespace (netns.Path).
func NetNSPath(name string) string { return netns.Path(name) }

// NetNSNames lists the named network namespaces whose names start with
// prefix (all of them for ""), in directory order; none if NetNSDir does
// not exist.
//
// Equivalent to: ip netns list | grep ^PREFIX
func NetNSNames(prefix string) []string {
	ents, _ := os.ReadDir(NetNSDir)
	var out []string
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), prefix) {
			out = append(out, de.Name())
		}
	}
	return out
}
