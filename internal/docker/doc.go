// Package docker drives a Docker Engine through its API (the official Go
// client, github.com/moby/moby/client, API version negotiated down to
// 1.40, so Debian's 20.10 daemon works): it builds latlab's own image
// from a latlab binary (no registry; a dynamically linked one with its
// interpreter and libraries), creates labelled networks and containers,
// finds a container's network namespace, and removes everything carrying
// a run's label.
//
// Every object it creates carries LabelRun=<run id>, so Cleanup (and the
// journal undo handler, through CleanupLabel) can find it again however the
// run ended.
//
// It is one of experiment's workers: it imports no latlab package (in
// particular not experiment, topo, offload, probe or workload); the lab on
// Docker networks, which needs both, is docker/dockerlab.
package docker
