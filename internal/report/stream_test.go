package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/experiment"
)

// Every line of the stream is one JSON object with its event; the first
// is the start envelope, the last the summary, and a trial line carries
// the trial's result.
func TestJSONStreamLines(t *testing.T) {
	_, o := synthetic()
	var b bytes.Buffer
	s, err := NewJSONStream(&b, Meta{Version: "v-test", Command: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range o.Trials[:3] {
		if err := s.Event(experiment.Event{Kind: "trial", Trial: &o.Trials[i], Done: i + 1, Total: len(o.Trials), Round: o.Trials[i].Round, Elapsed: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	s.Event(experiment.Event{Kind: "server-error", Err: errors.New("server in latlab-x-b exited")})
	s.Event(experiment.Event{Kind: "teardown"})
	if err := s.Summary(experiment.Summarize(o)); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	sc := bufio.NewScanner(&b)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var l struct {
			Event         string `json:"event"`
			SchemaVersion int    `json:"schema_version"`
			Start         Meta   `json:"start"`
			Done          int    `json:"done"`
			Error         string `json:"error"`
			Trial         *struct {
				Mode   string `json:"mode"`
				Result *struct {
					RatePerSec float64 `json:"rate_per_sec"`
				} `json:"result"`
			} `json:"trial"`
			Summary *experiment.Summary `json:"summary"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", len(kinds)+1, err, sc.Bytes())
		}
		kinds = append(kinds, l.Event)
		switch l.Event {
		case "start":
			if l.SchemaVersion != SchemaVersion || l.Start.Version != "v-test" {
				t.Errorf("start line: %s", sc.Bytes())
			}
		case "trial":
			if l.Trial == nil || l.Trial.Result == nil || l.Trial.Result.RatePerSec <= 0 || l.Trial.Mode == "" || l.Done == 0 {
				t.Errorf("trial line without its result: %s", sc.Bytes())
			}
		case "server-error":
			if l.Error != "server in latlab-x-b exited" {
				t.Errorf("server-error line: %s", sc.Bytes())
			}
		case "summary":
			if l.Summary == nil || l.Summary.Baseline != "host" {
				t.Errorf("summary line: %s", sc.Bytes())
			}
		}
	}
	want := []string{"start", "trial", "trial", "trial", "server-error", "teardown", "summary"}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
}
