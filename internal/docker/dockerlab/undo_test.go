package dockerlab

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/journal"
)

// The docker undo handler refuses entries naming something latlab does not
// create, before touching anything.
func TestUndoHandlersRefuseForeignNames(t *testing.T) {
	h := UndoHandlers()[docker.JournalKind]
	data := func(label string) json.RawMessage {
		b, _ := json.Marshal(JournalData{Host: "unix:///nonexistent/docker.sock", Label: label})
		return b
	}
	for _, e := range []journal.Entry{
		{Kind: docker.JournalKind, Name: "someones-run", Data: data(docker.LabelRun + "=someones-run")},
		{Kind: docker.JournalKind, Name: "latlab-d1234", Data: data(docker.LabelRun)},                   // every run's objects
		{Kind: docker.JournalKind, Name: "latlab-d1234", Data: data(docker.LabelRun + "=latlab-d9999")}, // another run's
		{Kind: docker.JournalKind, Name: "latlab-d1234", Data: data("com.example=x")},
	} {
		if err := h(e); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("docker %s %s: %v, want a refusal", e.Name, e.Data, err)
		}
	}
	// A well-formed entry on a daemon that cannot be reached is an error
	// (the journal stays), not "nothing to do".
	e := journal.Entry{Kind: docker.JournalKind, Name: "latlab-d1234", Data: data(docker.LabelRun + "=latlab-d1234")}
	if err := h(e); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable daemon: %v, want an error saying so", err)
	}
}
