package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"
	"net"

	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/watch"
	"github.com/latlab/latlab/internal/web"
)

// dashboardOptions wires the dashboard to its data: alerts from the store,
// the watcher's scheduler health (w nil: `latlab ui` alone, no scheduler),
// and E-Divisive change points for the history pages.
func dashboardOptions(st *store.Store, w *watch.Watcher, token string, loopback bool, logger *log.Logger) web.Options {
	o := web.Options{Store: st, Token: token, LoopbackOnly: loopback, Log: logger, Version: Version()}
	o.Alerts = web.AlertsFunc(func(ctx context.Context) ([]web.AlertView, error) {
		as, err := st.Alerts(ctx, store.AlertFilter{Limit: 500})
		if err != nil {
			return nil, err
		}
		out := make([]web.AlertView, 0, len(as))
		for _, a := range as {
			state := web.AlertFiring
			since := a.OpenedAt
			if a.State == store.AlertResolved {
				state, since = web.AlertResolved, a.ResolvedAt
			}
			msg := a.Summary
			var suspects []string
			if json.Unmarshal(a.Suspects, &suspects) == nil && len(suspects) > 0 {
				msg += fmt.Sprintf(" (suspects: %v)", suspects)
			}
			out = append(out, web.AlertView{Name: a.Metric + " " + a.ConfigKey, Job: a.Job, ConfigKey: a.ConfigKey,
				Metric: a.Metric, State: state, Since: since, RunID: a.RunID, Message: msg})
		}
		return out, nil
	})
	if w != nil {
		o.Scheduler = schedulerHealth{w}
	}
	o.ChangePoints = func(series []float64) []int {
		// A fixed seed: the same history always shows the same points.
		cps := stats.ChangePoints(series, stats.CPOptions{}, rand.New(rand.NewPCG(1, 2)))
		idx := make([]int, len(cps))
		for i, c := range cps {
			idx[i] = c.Index
		}
		return idx
	}
	return o
}

type schedulerHealth struct{ w *watch.Watcher }

func (s schedulerHealth) Health() web.SchedulerHealth {
	running, jobs := s.w.Status()
	h := web.SchedulerHealth{Running: running}
	for _, j := range jobs {
		h.Jobs = append(h.Jobs, web.JobHealth{Name: j.Name, LastRun: j.LastRun, LastSuccess: j.LastSuccess,
			NextRun: j.NextRun, LastError: j.LastError, Runs: j.Runs, Failures: j.Failures})
	}
	return h
}

// serveDashboard serves the dashboard on listen until ctx ends.
func serveDashboard(ctx context.Context, e *env, st *store.Store, w *watch.Watcher, listen, token string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return usagef("--listen %s: %v", listen, err)
	}
	loop := isLoopbackAddr(ln.Addr())
	if !loop && token == "" {
		fmt.Fprintf(e.stderr, "latlab: warning: dashboard on %s without a token: anyone who can reach it reads every run (--token)\n", ln.Addr())
	}
	h, err := web.New(dashboardOptions(st, w, token, loop, log.New(e.stderr, "latlab ui: ", 0)))
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(e.stderr, "latlab: dashboard of %s on http://%s/ (metrics: /metrics)\n", st.Path(), ln.Addr())
	return serveUntilDone(ctx, ln, h)
}
