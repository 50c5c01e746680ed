// Package chaos holds the kill -9 tests of latlab's promise that nothing is
// lost and nothing is left behind: they run the real binary (lab with and
// without eBPF attribution, an offload matrix on a pre-existing interface,
// watch --once, docker lab against a private dockerd), kill it at random
// moments, run `latlab cleanup` against the run's private journal
// directory, and check that no namespace, host link, nft table, eBPF
// program or link, container or network remains, that offloads are back
// to their snapshot and that the results database opens with every
// complete run readable. The package has no code of its own; see
// chaos_linux_test.go and docker_linux_test.go.
//
// It is for tests only and nothing imports it: its tests build and run
// the latlab binary, using testutil, docker/dockertest and the packages
// whose leftovers they check (topo, offload, store, experiment, docker).
package chaos
