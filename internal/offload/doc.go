// Package offload reads and changes a network device's offloads (TSO, GSO,
// GRO, LRO, checksums, scatter-gather...) and its interrupt coalescing, ring
// and channel settings, inside any named network namespace, the way
// ethtool -k/-K/-c/-C/-g/-l do.
//
// It speaks ethtool netlink (the "ethtool" generic netlink family) and falls
// back to the legacy SIOCETHTOOL ioctl on kernels without it. Feature names
// are the kernel's (tx-tcp-segmentation, rx-gro-hw, tx-checksum-ip-generic)
// and ethtool's legacy names and short aliases (tso, gso, gro, lro, tx, rx,
// sg, generic-receive-offload...) which expand as `ethtool -K` expands them.
//
// Set and Restore never trust the request: they re-read the device and
// report what really moved, what the kernel refused and what moved with it.
//
// It is one of experiment's workers: it imports only netns of latlab, never
// experiment or another worker (topo, probe, workload, docker); how an
// offload result is printed is report's.
package offload
