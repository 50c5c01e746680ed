// Package cli wires latlab's commands: flags, output selection and exit
// codes. The work itself lives in the other internal packages.
//
// Only cmd/latlab imports it, and it is the only package that knows about
// flags (cobra) and exit codes: nothing below it may import cli or cobra.
// It may import every other internal package except the test-only ones
// (testutil, chaos, docker/dockertest, web/webtest).
package cli
