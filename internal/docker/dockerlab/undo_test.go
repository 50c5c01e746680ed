package dockerlab

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

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
	if err := UndoHandlersFor("unix:///nonexistent/docker.sock")[docker.JournalKind](e); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable daemon: %v, want an error saying so", err)
	}
}

// Attack (issue 37, 4): a forged docker entry made cleanup dial whatever
// daemon address it named. Now an entry is undone only on the daemon the
// command is configured with; one naming another is refused without a
// connection.
func TestUndoOnlyOnTheConfiguredDaemon(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			dialed <- struct{}{}
			c.Close()
		}
	}()
	b, _ := json.Marshal(JournalData{Host: "tcp://" + ln.Addr().String(), Label: docker.LabelRun + "=latlab-d1234"})
	e := journal.Entry{Kind: docker.JournalKind, Name: "latlab-d1234", Data: b}
	err = UndoHandlersFor("unix:///nonexistent/docker.sock")[docker.JournalKind](e)
	if err == nil || !strings.Contains(err.Error(), "refusing") || !strings.Contains(err.Error(), "--docker-host") {
		t.Errorf("entry naming another daemon: %v, want a refusal naming --docker-host", err)
	}
	select {
	case <-dialed:
		t.Errorf("cleanup connected to the daemon a forged entry named")
	case <-time.After(200 * time.Millisecond):
	}
}
