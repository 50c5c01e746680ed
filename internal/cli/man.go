package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newManCmd(e *env) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "man --dir DIR",
		Short: "Write man pages, one per command, generated from the commands",
		Long: `Man writes a section-1 man page for latlab and for every command and
subcommand (latlab-lab.1, latlab-offload-show.1, ...) into DIR, generated
from the same help texts as --help. DIR is created if needed.`,
		Example: `  latlab man --dir /usr/local/share/man/man1 && mandb
  latlab man --dir /tmp/man && man -l /tmp/man/latlab-lab.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef("--dir DIR is required: where to write the pages")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("write man pages: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "LATLAB", Section: "1", Source: "latlab " + Version(), Manual: "latlab manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("write man pages to %s: %w", dir, err)
			}
			fmt.Fprintf(e.stderr, "latlab man: pages written to %s\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the pages to (required)")
	cmd.MarkFlagDirname("dir")
	return cmd
}
