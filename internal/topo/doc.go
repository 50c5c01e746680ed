// Package topo builds network topologies (namespaces, veth pairs, bridges,
// macvlan, vxlan) through netlink and tears them down.
//
// It is one of experiment's workers: it imports journal and netns of
// latlab, never experiment or another worker (offload, probe, workload,
// docker). Creating and deleting lab namespaces is topo's (netns only
// enters them).
package topo
