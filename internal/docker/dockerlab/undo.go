package dockerlab

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/topo"
)

// UndoHandlers returns the journal undo handler of a `latlab docker lab`
// run (kind docker.JournalKind, data JournalData): it removes every
// container and network carrying the run's label. internal/cli adds it to
// experiment.UndoHandlers to build the registry `latlab cleanup` and every
// lab's first sweep use. It undoes runs on the default daemon
// ($DOCKER_HOST, else the default socket); UndoHandlersFor names another.
func UndoHandlers() journal.Undoers { return UndoHandlersFor("") }

// UndoHandlersFor is UndoHandlers for the daemon at host (as Open takes
// it): an entry naming any other daemon is refused and its journal kept,
// so a forged journal cannot make cleanup dial an address it names.
func UndoHandlersFor(host string) journal.Undoers {
	return journal.Undoers{docker.JournalKind: journal.RequirePrefix(topo.Prefix, func(e journal.Entry) error {
		return undoRun(e, host)
	})}
}

// undoRun removes what a docker run left: every labelled container and
// network on the daemon it names. The entry's name is the run id (latlab's
// prefix, checked by the wrapper in UndoHandlers) and its label must be
// that run's, and the daemon it names must be host (resolved as Open
// does), so a damaged journal cannot make cleanup remove anything else or
// connect anywhere else. A daemon that cannot be reached is an error (docker.ErrUnreachable):
// the journal stays, for a cleanup once the daemon is back.
func undoRun(e journal.Entry, host string) error {
	var d JournalData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return fmt.Errorf("docker entry: %w", err)
	}
	if want := docker.LabelRun + "=" + e.Name; d.Label != want {
		return fmt.Errorf("refusing docker entry with label %q: want %q", d.Label, want)
	}
	configured, err := docker.ResolveHost(host)
	if err != nil {
		return fmt.Errorf("docker entry: %w", err)
	}
	if d.Host != configured {
		return fmt.Errorf("refusing docker entry for daemon %q: this latlab is configured for %q (--docker-host, $DOCKER_HOST); run latlab cleanup --docker-host %s if that daemon is yours", d.Host, configured, d.Host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return docker.CleanupLabel(ctx, d.Host, d.Label)
}
