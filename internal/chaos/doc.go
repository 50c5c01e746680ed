// Package chaos holds the kill -9 test of latlab's promise that nothing is
// lost and nothing is left behind: it runs the real binary (lab, an
// offload matrix on a pre-existing interface, watch --once), kills it at
// random moments, runs `latlab cleanup` against the run's private journal
// directory, and checks that no namespace, host link or nft table remains,
// that offloads are back to their snapshot and that the results database
// opens with every complete run readable. The package has no code of its
// own; see chaos_linux_test.go.
package chaos
