// Command latlab reproduces, measures and explains container network latency.
package main

import (
	"os"

	"github.com/latlab/latlab/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
