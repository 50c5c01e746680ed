package watch

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/watch/watchtest"
)

func mustSchedule(t *testing.T, s string) Schedule {
	t.Helper()
	sc, err := ParseSchedule(s, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestParseScheduleNext(t *testing.T) {
	from := time.Date(2026, 3, 14, 10, 7, 30, 0, time.UTC) // a Saturday
	for _, c := range []struct {
		spec string
		want []string
	}{
		{"@every 30m", []string{"10:30 Sat 14", "11:00 Sat 14", "11:30 Sat 14"}},
		{"*/15 * * * *", []string{"10:15 Sat 14", "10:30 Sat 14", "10:45 Sat 14"}},
		{"5 3 * * *", []string{"03:05 Sun 15", "03:05 Mon 16"}},
		{"0 9-17/4 * * 1-5", []string{"09:00 Mon 16", "13:00 Mon 16", "17:00 Mon 16", "09:00 Tue 17"}},
		{"0 0 * * 7", []string{"00:00 Sun 15", "00:00 Sun 22"}},
		{"30 12 1,15 * *", []string{"12:30 Sun 15", "12:30 Wed 1"}},
		{"0 0 13 * 5", []string{"00:00 Fri 20", "00:00 Fri 27", "00:00 Fri 3", "00:00 Fri 10", "00:00 Mon 13"}}, // Vixie: DOM or DOW
		{"@hourly", []string{"11:00 Sat 14"}},
		{"@daily", []string{"00:00 Sun 15"}},
	} {
		s := mustSchedule(t, c.spec)
		var got []string
		at := from
		for range c.want {
			at = s.Next(at)
			got = append(got, at.Format("15:04 Mon 2"))
		}
		if strings.Join(got, ", ") != strings.Join(c.want, ", ") {
			t.Errorf("%q: %v, want %v", c.spec, got, c.want)
		}
	}
	// "0 0 30 2 *" (never due) is refused by ParseSchedule: cron_test.go.
	for _, bad := range []string{"", "@every 10s", "@every x", "@yearly", "* * * *", "60 * * * *", "* 24 * * *",
		"* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * JAN *"} {
		if _, err := ParseSchedule(bad, time.UTC); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// schedHarness runs a Scheduler on a FakeClock; each job's run advances
// the fake clock by its duration, so runs take fake time.
type schedHarness struct {
	clock *watchtest.FakeClock
	mu    sync.Mutex
	runs  []string
	logs  []string
	sched *Scheduler
}

func (h *schedHarness) start(t *testing.T, jobs []*Job, took map[string]time.Duration) (context.CancelFunc, chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{Jobs: jobs, Clock: h.clock,
		Run: func(ctx context.Context, j *Job) error {
			h.mu.Lock()
			h.runs = append(h.runs, fmt.Sprintf("%s@%s", j.Name, h.clock.Now().Format("15:04")))
			h.mu.Unlock()
			h.clock.Advance(took[j.Name])
			return nil
		},
		Logf: func(f string, a ...any) { h.mu.Lock(); h.logs = append(h.logs, fmt.Sprintf(f, a...)); h.mu.Unlock() },
	}
	h.sched = s
	done := make(chan error, 1)
	go func() { done <- s.Loop(ctx) }()
	return cancel, done
}

// advanceTo steps the fake clock to t, one waiter at a time, letting the
// scheduler catch up between steps.
func (h *schedHarness) advanceTo(t *testing.T, end time.Time) {
	for {
		if !h.clock.WaitForWaiter(5 * time.Second) {
			t.Fatal("scheduler never waited on the clock")
		}
		w := h.clock.Waiters()[0]
		if w.After(end) {
			h.clock.Set(end)
			return
		}
		h.clock.Set(w)
	}
}

func (h *schedHarness) result() ([]string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.runs...), strings.Join(h.logs, "\n")
}

func TestSchedulerOverlap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		overlap string
		want    string
		log     string
	}{
		// long runs 40 min every hour from 10:00; short every 10 min.
		// While long runs (10:00-10:40, 11:00-11:40) short's ticks fall due.
		{OverlapWait, "long@10:00 short@10:40 short@10:50 long@11:00 short@11:40 short@11:50 long@12:00 short@12:40",
			"job short: due 2026-01-01 10:00:00 UTC while job long ran: runs now (overlap: wait)"},
		{OverlapSkip, "long@10:00 short@10:50 long@11:00 short@11:50 long@12:00",
			"job short: due 2026-01-01 10:00:00 UTC while job long ran: skipped (overlap: skip), next run 2026-01-01 10:50:00 UTC"},
	} {
		t.Run(c.overlap, func(t *testing.T) {
			h := &schedHarness{clock: watchtest.NewFakeClock(t0.Add(-time.Second))}
			jobs := []*Job{
				{Name: "long", ScheduleText: "0 * * * *", Schedule: mustSchedule(t, "0 * * * *"), Overlap: OverlapWait},
				{Name: "short", ScheduleText: "@every 10m", Schedule: mustSchedule(t, "@every 10m"), Overlap: c.overlap},
			}
			cancel, done := h.start(t, jobs, map[string]time.Duration{"long": 40 * time.Minute, "short": time.Second})
			h.advanceTo(t, t0.Add(2*time.Hour+time.Minute))
			h.clock.WaitForWaiter(5 * time.Second)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			runs, log := h.result()
			if got := strings.Join(runs, " "); got != c.want {
				t.Errorf("runs:\n got %s\nwant %s", got, c.want)
			}
			if !strings.Contains(log, c.log) {
				t.Errorf("log lacks %q:\n%s", c.log, log)
			}
		})
	}
}

func TestSchedulerOwnOverrun(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	h := &schedHarness{clock: watchtest.NewFakeClock(t0.Add(-time.Second))}
	jobs := []*Job{{Name: "slow", ScheduleText: "@every 10m", Schedule: mustSchedule(t, "@every 10m"), Overlap: OverlapWait}}
	cancel, done := h.start(t, jobs, map[string]time.Duration{"slow": 25 * time.Minute})
	h.advanceTo(t, t0.Add(time.Hour))
	h.clock.WaitForWaiter(5 * time.Second)
	cancel()
	<-done
	runs, log := h.result()
	if _, st := h.sched.Status(); len(st) != 1 || st[0].Runs != 3 || st[0].Failures != 0 || !st[0].NextRun.After(st[0].LastRun) {
		t.Errorf("status: %+v", st)
	}
	if got := strings.Join(runs, " "); got != "slow@10:00 slow@10:30 slow@11:00" {
		t.Errorf("runs %s", got)
	}
	if !strings.Contains(log, "ran past its next tick") {
		t.Errorf("log:\n%s", log)
	}
}

// Cancelling while a job runs lets that run finish (its ctx is
// cancelled) and ends the loop.
func TestSchedulerCancelDuringRun(t *testing.T) {
	clock := watchtest.NewFakeClock(time.Date(2026, 1, 1, 9, 59, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	sawCancel := make(chan bool, 1)
	s := &Scheduler{Jobs: []*Job{{Name: "j", Schedule: mustSchedule(t, "@every 10m")}}, Clock: clock,
		Run: func(ctx context.Context, j *Job) error {
			cancel()
			<-ctx.Done()
			sawCancel <- true
			return ctx.Err()
		}}
	done := make(chan error, 1)
	go func() { done <- s.Loop(ctx) }()
	clock.WaitForWaiter(5 * time.Second)
	clock.Advance(time.Minute)
	select {
	case err := <-done:
		if err != nil || !<-sawCancel {
			t.Errorf("loop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not end")
	}
}
