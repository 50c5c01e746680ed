// Package dockertest starts a private Docker daemon for a test, inside a
// network namespace of its own, so the host's interfaces, routes and
// firewall are never touched: the daemon's bridge, veths, iptables rules
// and published ports all live in that namespace.
//
// Equivalent to:
//
//	ip netns add NAME
//	nsenter --net=/var/run/netns/NAME dockerd --data-root DIR/data --exec-root DIR/exec \
//	  -H unix://DIR/d.sock --pidfile DIR/d.pid --bip 10.X.Y.1/24 --iptables=true
//
// (nsenter, not ip netns exec: ip netns exec also remounts /sys, which hides
// the cgroup mounts dockerd needs.)
//
// It is for tests only: no non-test code may import it. It imports docker
// and testutil and nothing above them.
package dockertest
