package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/docker/dockerlab"
	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/topo"
)

// undoers is the journal undo registry of every kind a latlab run
// journals, each from the package that creates it: `latlab cleanup`
// sweeps with it, and every lab's first sweep (LabSpec.Undoers,
// dockerlab.Spec.Undoers, watch jobs).
// Docker runs are undone only on the default daemon ($DOCKER_HOST, else
// the default socket); undoersFor names the one a command is pointed at.
func undoers() journal.Undoers { return undoersFor("") }

func undoersFor(dockerHost string) journal.Undoers {
	return experiment.UndoHandlers().With(dockerlab.UndoHandlersFor(dockerHost))
}

// dockerHostNone is the --docker-host value that skips the label sweep.
const dockerHostNone = "none"

// cleanupItem is one thing cleanup found: -o json lists them.
type cleanupItem struct {
	// Action: removed, restored, busy (a latlab still runs), kept (an undo
	// failed; the journal stays), orphan (listed; --orphans removes it) or
	// unreachable (the Docker daemon could not be asked).
	Action string `json:"action"`
	Kind   string `json:"kind,omitempty"`
	Name   string `json:"name"`
	Detail string `json:"detail,omitempty"`
}

// cleanupLog collects what cleanup did and prints each line to w as it
// happens (w nil: collect only, for -o json).
type cleanupLog struct {
	w     io.Writer
	items []cleanupItem
}

func (l *cleanupLog) add(it cleanupItem, format string, a ...any) {
	l.items = append(l.items, it)
	if l.w != nil {
		fmt.Fprintf(l.w, format+"\n", a...)
	}
}

func newCleanupCmd(e *env) *cobra.Command {
	var (
		dir        string
		orphans    bool
		dockerHost string
		out        *outputFlags
	)
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove what crashed or --keep runs left behind",
		Long: `Cleanup undoes every journal (under --journal-dir) whose latlab is no longer
running: labs left up with --keep, and runs that died without tearing down
(kill -9, a crash, a power cut). Every object is journalled before latlab
creates it, so nothing escapes. Runs still in progress are left alone.

A journal whose undo fails stays, and cleanup says why and exits 1: a
Docker daemon that cannot be reached (stopped, socket gone) still holds the
containers and networks, so their journal is kept for a cleanup once the
daemon is back.

Namespaces whose names start with "latlab-" but that no journal lists (made
by hand, or by a latlab older than the journal) are listed; so are the
containers and networks carrying latlab's run label (io.latlab.run) on the
Docker daemon (--docker-host) whose run no journal lists — the journal
lives on tmpfs and a reboot loses it, the daemon keeps them. --orphans
removes them too, and old latlab images but the newest. Only use --orphans
when no latlab with another --journal-dir is running: its objects are
orphans from here. Exit status 0 when everything that was found is gone.

-o json writes {"items": [{"action", "kind", "name", "detail"}]} (actions:
removed, restored, busy, kept, orphan, unreachable); there is no CSV form.`,
		Example: `  latlab cleanup
  latlab cleanup --orphans
  latlab cleanup --docker-host unix:///run/user/1000/docker.sock`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("latlab cleanup needs root to delete network namespaces")
			}
			log := &cleanupLog{w: e.stdout}
			if output.Format == report.FormatJSON {
				log.w = nil
			}
			err = runCleanup(cmd.Context(), log, dir, dockerHost, cmd.Flags().Changed("docker-host"), orphans)
			if log.w == nil {
				items := log.items
				if items == nil {
					items = []cleanupItem{}
				}
				if jerr := report.WriteJSON(e.stdout, output.Meta, struct {
					Items []cleanupItem `json:"items"`
				}{items}); jerr != nil {
					return errors.Join(err, jerr)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "journal-dir", journal.DefaultDir, "where journals live")
	cmd.Flags().BoolVar(&orphans, "orphans", false, "also remove latlab-* namespaces, labelled containers and networks that no journal lists, and old latlab images")
	cmd.Flags().StringVar(&dockerHost, "docker-host", "", `Docker daemon to look for latlab's labelled containers and networks on (default $DOCKER_HOST, else the default socket; "none" skips)`)
	out = addOutput(cmd, report.FormatTable, report.FormatJSON)
	cmd.MarkFlagDirname("journal-dir")
	cmd.RegisterFlagCompletionFunc("docker-host", fixedCompletion(dockerHostNone, "unix:///var/run/docker.sock"))
	return cmd
}

// runCleanup is cleanup's work: undo the journals in dir, then list (or,
// with orphans, remove) the namespaces and Docker objects no journal
// lists, logging every finding.
func runCleanup(ctx context.Context, log *cleanupLog, dir, dockerHost string, explicitHost, orphans bool) error {
	host := dockerHost
	if host == dockerHostNone {
		host = ""
	}
	res, sweepErr := journal.Sweep(dir, journal.SweepOptions{IncludeKept: true, Handlers: undoersFor(host)})
	for _, u := range res.Undone {
		if u.Kind == experiment.KindOffload {
			log.add(cleanupItem{Action: "restored", Kind: string(u.Kind), Name: u.Name, Detail: "netns " + u.NS}, "restored offloads of %s (netns %s)", u.Name, u.NS)
			continue
		}
		log.add(cleanupItem{Action: "removed", Kind: string(u.Kind), Name: u.Name}, "removed %s %s", u.Kind, u.Name)
	}
	for _, b := range res.Busy {
		log.add(cleanupItem{Action: "busy", Kind: "journal", Name: b, Detail: "belongs to a latlab that is still running"}, "left alone: %s belongs to a latlab that is still running", b)
	}
	for _, err := range res.Errors {
		if errors.Is(err, docker.ErrUnreachable) {
			log.add(cleanupItem{Action: "kept", Kind: "journal", Detail: err.Error() + ": the Docker daemon could not be reached"},
				"kept: %v\n  the Docker daemon it names could not be reached: its containers and networks may still exist, so the journal stays; run latlab cleanup again once the daemon is back", err)
			continue
		}
		log.add(cleanupItem{Action: "kept", Kind: "journal", Detail: err.Error()}, "kept: %v", err)
	}
	// Whatever a journal still lists (runs in progress, undos that
	// failed) is accounted for: not an orphan.
	journalled, err := remainingJournals(dir)
	if err != nil {
		return errors.Join(sweepErr, err)
	}
	found := len(res.Undone) + len(res.Busy) + len(res.Errors)
	n, err := cleanupNetNSOrphans(log, journalled, orphans)
	found += n
	if err != nil {
		return errors.Join(sweepErr, err)
	}
	if dockerHost != dockerHostNone {
		n, err := cleanupDockerOrphans(ctx, log, dockerHost, explicitHost, journalled, orphans)
		found += n
		if err != nil {
			return errors.Join(sweepErr, err)
		}
	}
	if sweepErr != nil {
		return fmt.Errorf("%d journal(s) kept, see above: %w", len(res.Errors), sweepErr)
	}
	if found == 0 && log.w != nil {
		fmt.Fprintln(log.w, "nothing to clean")
	}
	return nil
}

// remainingJournals returns the ids (the run prefixes) of the journals
// still in dir after a sweep.
func remainingJournals(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal dir %s: %w", dir, err)
	}
	var ids []string
	for _, de := range ents {
		if id, ok := strings.CutSuffix(de.Name(), ".journal"); ok && !de.IsDir() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// cleanupNetNSOrphans lists (or, with remove, deletes) the latlab-*
// namespaces that belong to no journal in journalled. It returns how many
// it found.
func cleanupNetNSOrphans(log *cleanupLog, journalled []string, remove bool) (int, error) {
	ents, _ := os.ReadDir(topo.NetNSDir)
	n := 0
	for _, de := range ents {
		name := de.Name()
		if !strings.HasPrefix(name, topo.Prefix) || slices.ContainsFunc(journalled, func(p string) bool { return strings.HasPrefix(name, p+"-") }) {
			continue
		}
		n++
		if !remove {
			log.add(cleanupItem{Action: "orphan", Kind: "netns", Name: name}, "orphan netns %s (no journal lists it; --orphans removes it)", name)
			continue
		}
		if err := topo.DeleteNetNS(name); err != nil {
			return n, err
		}
		log.add(cleanupItem{Action: "removed", Kind: "netns", Name: name, Detail: "orphan"}, "removed orphan netns %s", name)
	}
	return n, nil
}

// cleanupDockerOrphans is the label sweep: containers and networks
// carrying latlab's run label whose run no journal lists, on the daemon at
// host. A daemon that cannot be reached is only reported when the user
// named it (explicit): most hosts running latlab have no Docker at all.
// With remove, orphans are removed and so are old latlab images (the
// newest is kept). It returns how many orphans (and pruned images) it
// found.
func cleanupDockerOrphans(ctx context.Context, log *cleanupLog, host string, explicit bool, journalled []string, remove bool) (int, error) {
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	eng, err := docker.Open(octx, host)
	if err != nil {
		if explicit {
			log.add(cleanupItem{Action: "unreachable", Kind: "docker", Name: host, Detail: err.Error()}, "docker: %v: labelled containers and networks not checked", err)
		}
		return 0, nil
	}
	defer eng.Close()
	objs, err := eng.Objects(octx)
	if err != nil {
		return 0, err
	}
	n := 0
	var runs []string
	for _, o := range objs {
		if slices.Contains(journalled, o.Run) {
			continue
		}
		n++
		if !slices.Contains(runs, o.Run) {
			runs = append(runs, o.Run)
		}
		if !remove {
			log.add(cleanupItem{Action: "orphan", Kind: "docker " + o.Kind, Name: o.Name, Detail: "run " + o.Run + " on " + eng.Host},
				"orphan docker %s %s (run %s on %s; no journal lists it; --orphans removes it)", o.Kind, o.Name, o.Run, eng.Host)
		}
	}
	if !remove {
		return n, nil
	}
	var errs []error
	for _, run := range runs {
		if err := eng.CleanupLabel(octx, docker.LabelRun+"="+run); err != nil {
			errs = append(errs, err)
			continue
		}
		log.add(cleanupItem{Action: "removed", Kind: "docker run", Name: run, Detail: "orphan containers and networks on " + eng.Host},
			"removed orphan docker containers and networks of run %s on %s", run, eng.Host)
	}
	pruned, err := eng.PruneImages(octx, "")
	for _, ref := range pruned {
		log.add(cleanupItem{Action: "removed", Kind: "docker image", Name: ref, Detail: "old image"}, "removed old image %s", ref)
	}
	return n + len(pruned), errors.Join(append(errs, err)...)
}
