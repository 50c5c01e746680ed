// Package netns owns "run this in network namespace X": entering a
// namespace on a locked OS thread that is never handed back to the runtime,
// running a function there, resolving a name to its path under
// /var/run/netns (where `ip netns add` bind-mounts it), and the one
// ErrNotSupported every latlab package wraps where the platform or kernel
// lacks a feature.
//
// It sits below everything else: it imports only the standard library and
// golang.org/x/sys, never another latlab package (topo, probe, offload and
// workload import it). Creating and deleting namespaces is topo's.
package netns
