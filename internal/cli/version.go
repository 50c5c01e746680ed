package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/buildinfo"
	"github.com/latlab/latlab/internal/workload"
)

// version is set at build time with -ldflags "-X .../internal/cli.version=v1.2.3".
var version = ""

// Version returns latlab's version: the linker-set one, else the module
// version or VCS revision recorded in the build (buildinfo.Info.Version).
func Version() string { return buildinfo.Read(version).Version }

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print latlab's version and protocol version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(e.stdout, "latlab %s (protocol %d, %s, %s/%s)\n", Version(), workload.Version,
				runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
