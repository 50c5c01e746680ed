package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// AlertEvent is what alert hooks receive: the webhook's POST body and the
// command's stdin (JSON).
type AlertEvent struct {
	Event      string    `json:"event"` // opened, resolved
	AlertID    int64     `json:"alert_id"`
	Job        string    `json:"job"`
	ConfigKey  string    `json:"config_key"`
	Metric     string    `json:"metric"`
	RunID      int64     `json:"run_id"`        // the run that opened or resolved it
	OpenedBy   int64     `json:"opened_by_run"` // the run that opened it
	Summary    string    `json:"summary"`
	Suspects   []string  `json:"suspects,omitempty"`
	BaseMedian float64   `json:"base_median"`
	NewMedian  float64   `json:"new_median"`
	DeltaPct   float64   `json:"delta_pct"`
	PValue     float64   `json:"p_value"`
	MinEffect  float64   `json:"min_effect"`
	Time       time.Time `json:"time"`
}

// Notifier delivers alert events.
type Notifier interface {
	Notify(ctx context.Context, ev *AlertEvent) error
}

// Webhook POSTs the event as JSON; any 2xx status is success.
type Webhook struct {
	URL    string
	Client *http.Client // nil: a client with a 10s timeout
}

// Notify sends ev.
func (w *Webhook) Notify(ctx context.Context, ev *AlertEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "latlab-watch")
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: %s", w.URL, resp.Status)
	}
	return nil
}

// Command runs Argv with the event as JSON on stdin; a non-zero exit is
// an error (with the start of its output).
type Command struct {
	Argv    []string
	Timeout time.Duration // 0: 30s
}

// Notify runs the command.
func (c *Command) Notify(ctx context.Context, ev *AlertEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	t := c.Timeout
	if t == 0 {
		t = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(cmd.Environ(), "LATLAB_ALERT_EVENT="+ev.Event, "LATLAB_ALERT_JOB="+ev.Job)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return fmt.Errorf("alert command %s: %w: %s", c.Argv[0], err, msg)
	}
	return nil
}

func notifiers(j *Job, client *http.Client) []Notifier {
	var out []Notifier
	for _, a := range j.Alerts {
		if a.Webhook != "" {
			out = append(out, &Webhook{URL: a.Webhook, Client: client})
		} else {
			out = append(out, &Command{Argv: a.Command})
		}
	}
	return out
}
