package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/buildinfo"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/wire"
)

// version is set at build time with -ldflags "-X .../internal/cli.version=v1.2.3".
var version = ""

// Version returns latlab's version: the linker-set one, else the module
// version or VCS revision recorded in the build (buildinfo.Info.Version).
func Version() string { return buildinfo.Read(version).Version }

func newVersionCmd(e *env) *cobra.Command {
	var out *outputFlags
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print latlab's version and protocol version",
		Long: `Version prints latlab's version, the version of its wire protocol (client
and server must agree), the Go toolchain and the platform. -o json adds
the host fingerprint every JSON document carries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			if output.Format == report.FormatJSON {
				return report.WriteJSON(e.stdout, output.Meta, struct {
					Version  string `json:"version"`
					Protocol int    `json:"protocol"`
					Go       string `json:"go"`
					OS       string `json:"os"`
					Arch     string `json:"arch"`
				}{Version(), int(wire.Version), runtime.Version(), runtime.GOOS, runtime.GOARCH})
			}
			fmt.Fprintf(e.stdout, "latlab %s (protocol %d, %s, %s/%s)\n", Version(), wire.Version,
				runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
	out = addOutput(cmd, report.FormatTable, report.FormatJSON)
	return cmd
}
