package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/topo"
)

func newCleanupCmd(e *env) *cobra.Command {
	var (
		dir     string
		orphans bool
	)
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove what crashed or --keep runs left behind",
		Long: `Cleanup undoes every journal (under --journal-dir) whose latlab is no longer
running: labs left up with --keep, and runs that died without tearing down
(kill -9, a crash, a power cut). Every object is journalled before latlab
creates it, so nothing escapes. Runs still in progress are left alone.

Namespaces whose names start with "latlab-" but that no journal lists (made
by hand, or by a latlab older than the journal) are listed; --orphans removes
them too. Exit status 0 when there is nothing to clean.`,
		Example: `  latlab cleanup
  latlab cleanup --orphans`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Geteuid() != 0 {
				return fmt.Errorf("latlab cleanup needs root to delete network namespaces")
			}
			res, err := journal.Sweep(dir, journal.SweepOptions{IncludeKept: true, Handlers: experiment.UndoHandlers()})
			for _, u := range res.Undone {
				if u.Kind == experiment.KindOffload {
					fmt.Fprintf(e.stdout, "restored offloads of %s (netns %s)\n", u.Name, u.NS)
					continue
				}
				fmt.Fprintf(e.stdout, "removed %s %s\n", u.Kind, u.Name)
			}
			for _, b := range res.Busy {
				fmt.Fprintf(e.stdout, "left alone: %s belongs to a latlab that is still running\n", b)
			}
			if err != nil {
				return err
			}
			// Namespaces no journal accounts for.
			var stray []string
			busy := busyPrefixes(res.Busy)
			ents, _ := os.ReadDir(topo.NetNSDir)
			for _, de := range ents {
				n := de.Name()
				if !strings.HasPrefix(n, topo.Prefix) || slices.ContainsFunc(busy, func(p string) bool { return strings.HasPrefix(n, p+"-") }) {
					continue
				}
				stray = append(stray, n)
			}
			for _, n := range stray {
				if orphans {
					if err := topo.DeleteNetNS(n); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "removed orphan netns %s\n", n)
				} else {
					fmt.Fprintf(e.stdout, "orphan netns %s (no journal lists it; --orphans removes it)\n", n)
				}
			}
			if len(res.Undone) == 0 && len(res.Busy) == 0 && len(stray) == 0 {
				fmt.Fprintln(e.stdout, "nothing to clean")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "journal-dir", journal.DefaultDir, "where journals live")
	cmd.Flags().BoolVar(&orphans, "orphans", false, "also remove latlab-* namespaces that no journal lists")
	return cmd
}

// busyPrefixes turns running journals' paths into their namespace prefixes.
func busyPrefixes(paths []string) []string {
	var out []string
	for _, p := range paths {
		base := p[strings.LastIndexByte(p, '/')+1:]
		out = append(out, strings.TrimSuffix(base, ".journal"))
	}
	return out
}
