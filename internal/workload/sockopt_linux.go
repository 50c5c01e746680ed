package workload

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Socket options only the client sets (the helpers both sides use are in
// internal/sockio).

// familyOf is the socket family for a: unix.AF_INET for IPv4 (mapped or
// not), unix.AF_INET6 otherwise.
func familyOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// setCongestion sets the socket's TCP congestion control algorithm; "" does
// nothing. An algorithm the kernel lacks fails with the list it offers.
// Equivalent to: iperf3 -C NAME, netperf -K NAME.
func setCongestion(fd int, name string) error {
	if name == "" {
		return nil
	}
	err := unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
	if err == nil {
		return nil
	}
	if err == unix.ENOENT {
		avail, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
		return fmt.Errorf("set congestion control %q: %w (this kernel offers: %s; a module may need loading: modprobe tcp_%s)",
			name, err, strings.TrimSpace(string(avail)), name)
	}
	return fmt.Errorf("set congestion control %q: %w", name, err)
}

// congestionOf returns the socket's congestion control algorithm, or "" if
// it cannot be read.
func congestionOf(fd int) string {
	name, err := unix.GetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	if err != nil {
		return ""
	}
	return strings.TrimRight(name, "\x00")
}

func setNoDelay(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fmt.Errorf("set TCP_NODELAY: %w", err)
	}
	return nil
}
