package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/latlab/latlab/internal/experiment"
)

// JSONStream writes a lab run as JSON lines while it runs (`latlab lab
// --json-stream`), for dashboards and pipelines that follow a long run:
// one compact JSON object per line, each with an "event" field —
//
//	start       schema_version and the envelope's start block (first line)
//	built       the modes and whether each came up
//	calibrated  the placement calibration's findings
//	trial       one finished trial (its result, round, done/total, elapsed, ETA)
//	precision   after a round of an adaptive run: each group's CI half-width
//	server-error a server stopped unexpectedly
//	teardown    the lab is coming down
//	summary     the run's summary, as `-o json` prints it (last line)
//
// Lines are written whole, so a reader can parse each as it arrives.
type JSONStream struct {
	enc *json.Encoder
}

// NewJSONStream writes the start line and returns the stream.
func NewJSONStream(w io.Writer, m Meta) (*JSONStream, error) {
	s := &JSONStream{enc: json.NewEncoder(w)}
	return s, s.line(struct {
		Event         string `json:"event"`
		SchemaVersion int    `json:"schema_version"`
		Start         Meta   `json:"start"`
	}{"start", SchemaVersion, m})
}

func (s *JSONStream) line(v any) error {
	if err := s.enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON stream: %w", err)
	}
	return nil
}

// streamMode is a mode's line in the "built" event.
type streamMode struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Event writes one progress event of the run.
func (s *JSONStream) Event(ev experiment.Event) error {
	switch ev.Kind {
	case "built":
		var ms []streamMode
		if ev.Lab != nil {
			for _, m := range ev.Lab.Modes {
				ms = append(ms, streamMode{m.Mode.Name, string(m.Status), m.Reason})
			}
		}
		return s.line(struct {
			Event string       `json:"event"`
			Modes []streamMode `json:"modes"`
		}{ev.Kind, ms})
	case "calibrated":
		return s.line(struct {
			Event       string                   `json:"event"`
			Calibration []experiment.Calibration `json:"calibration"`
		}{ev.Kind, ev.Calibration})
	case "trial":
		return s.line(struct {
			Event      string                  `json:"event"`
			Round      int                     `json:"round"`
			Done       int                     `json:"done"`
			Total      int                     `json:"total"`
			ElapsedS   float64                 `json:"elapsed_s"`
			ETAS       float64                 `json:"eta_s"`
			EndOfRound bool                    `json:"end_of_round,omitempty"`
			Trial      *experiment.TrialResult `json:"trial"`
		}{ev.Kind, ev.Round, ev.Done, ev.Total, ev.Elapsed.Seconds(), ev.ETA.Seconds(), ev.EndOfRound, ev.Trial})
	case "precision":
		return s.line(struct {
			Event     string                 `json:"event"`
			Round     int                    `json:"round,omitempty"`
			Precision []experiment.Precision `json:"precision"`
		}{ev.Kind, ev.Round, ev.Precision})
	case "server-error":
		msg := ""
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		return s.line(struct {
			Event string `json:"event"`
			Error string `json:"error"`
		}{ev.Kind, msg})
	}
	return s.line(struct {
		Event string `json:"event"`
	}{ev.Kind})
}

// Summary writes the last line: the run's summary.
func (s *JSONStream) Summary(sum *experiment.Summary) error {
	return s.line(struct {
		Event   string              `json:"event"`
		Summary *experiment.Summary `json:"summary"`
	}{"summary", sum})
}
