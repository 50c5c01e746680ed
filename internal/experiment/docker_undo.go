package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/journal"
)

// KindDocker is the journal kind of a `latlab docker lab` run: Data holds
// the daemon address and the run's label; undoing it removes every
// container and network carrying that label.
const KindDocker = docker.JournalKind

// undoDocker removes what a docker run left: every labelled container and
// network on the daemon it names.
func undoDocker(e journal.Entry) error {
	var d struct {
		Host  string `json:"host"`
		Label string `json:"label"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return fmt.Errorf("docker entry: %w", err)
	}
	if d.Label == "" {
		return fmt.Errorf("docker entry without a label")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return docker.CleanupLabel(ctx, d.Host, d.Label)
}

// addDockerUndo adds the docker handler to an UndoHandlers map.
func addDockerUndo(h map[string]journal.Undo) { h[KindDocker] = undoDocker }
