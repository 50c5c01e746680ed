package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/topo"
)

// KindDocker is the journal kind of a `latlab docker lab` run: Data holds
// the daemon address and the run's label; undoing it removes every
// container and network carrying that label.
const KindDocker = docker.JournalKind

// undoDocker removes what a docker run left: every labelled container and
// network on the daemon it names. The entry's name is the run id (latlab's
// prefix, checked by the wrapper in addDockerUndo) and its label must be
// that run's, so a damaged journal cannot make cleanup remove anything
// else. A daemon that cannot be reached is an error (docker.ErrUnreachable):
// the journal stays, for a cleanup once the daemon is back.
func undoDocker(e journal.Entry) error {
	var d struct {
		Host  string `json:"host"`
		Label string `json:"label"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return fmt.Errorf("docker entry: %w", err)
	}
	if want := docker.LabelRun + "=" + e.Name; d.Label != want {
		return fmt.Errorf("refusing docker entry with label %q: want %q", d.Label, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return docker.CleanupLabel(ctx, d.Host, d.Label)
}

// addDockerUndo adds the docker handler to an UndoHandlers map.
func addDockerUndo(h map[string]journal.Undo) {
	h[KindDocker] = journal.RequirePrefix(topo.Prefix, undoDocker)
}
