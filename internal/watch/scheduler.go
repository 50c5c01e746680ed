package watch

import (
	"context"
	"sync"
	"time"
)

// Scheduler runs jobs when they fall due, one at a time. A job that falls
// due while another runs waits for it (Job.Overlap "wait": missed ticks
// coalesce into one run) or skips that tick ("skip"); the log says which.
// A job whose own run outlasts its interval skips the ticks it missed.
type Scheduler struct {
	Jobs  []*Job
	Clock Clock
	// Run runs one job; its error is logged and the schedule goes on.
	Run func(ctx context.Context, j *Job) error
	// Logf logs scheduling decisions.
	Logf func(format string, args ...any)

	mu      sync.Mutex
	running bool
	status  map[string]*JobStatus
}

// JobStatus is a job's scheduling health (for the dashboard). Zero times
// mean never.
type JobStatus struct {
	Name        string
	LastRun     time.Time // start of the last run
	LastSuccess time.Time // end of the last successful run
	LastError   string
	NextRun     time.Time
	Runs        int64
	Failures    int64
}

// Status reports whether Loop runs and each job's health, in
// configuration order.
func (s *Scheduler) Status() (running bool, jobs []JobStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.Jobs {
		if st := s.status[j.Name]; st != nil {
			jobs = append(jobs, *st)
		} else {
			jobs = append(jobs, JobStatus{Name: j.Name})
		}
	}
	return s.running, jobs
}

func (s *Scheduler) update(name string, f func(st *JobStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == nil {
		s.status = map[string]*JobStatus{}
	}
	st := s.status[name]
	if st == nil {
		st = &JobStatus{Name: name}
		s.status[name] = st
	}
	f(st)
}

// Loop runs jobs until ctx is cancelled. A cancelled ctx reaches the job
// that is running (it finishes or marks its current trial) and Loop
// returns nil after it.
func (s *Scheduler) Loop(ctx context.Context) error {
	logf := s.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.running = false; s.mu.Unlock() }()
	now := s.Clock.Now()
	next := make([]time.Time, len(s.Jobs))
	for i, j := range s.Jobs {
		next[i] = j.Schedule.Next(now)
		s.update(j.Name, func(st *JobStatus) { st.NextRun = next[i] })
		logf("job %s: schedule %q, first run %s", j.Name, j.ScheduleText, fmtT(next[i]))
	}
	for {
		i := -1
		for k := range s.Jobs {
			if next[k].IsZero() {
				continue
			}
			if i < 0 || next[k].Before(next[i]) {
				i = k
			}
		}
		if i < 0 {
			logf("no job will ever be due again")
			<-ctx.Done()
			return nil
		}
		if d := next[i].Sub(s.Clock.Now()); d > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-s.Clock.After(d):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		j, due := s.Jobs[i], next[i]
		start := s.Clock.Now()
		if late := start.Sub(due); late >= time.Second {
			logf("job %s: due %s, starting %v late", j.Name, fmtT(due), late.Round(time.Second))
		} else {
			logf("job %s: starting", j.Name)
		}
		err := s.Run(ctx, j)
		if err != nil {
			logf("job %s: %v", j.Name, err)
		}
		end := s.Clock.Now()
		s.update(j.Name, func(st *JobStatus) {
			st.LastRun, st.Runs = start, st.Runs+1
			if err != nil {
				st.LastError, st.Failures = err.Error(), st.Failures+1
			} else {
				st.LastError, st.LastSuccess = "", end
			}
		})
		logf("job %s: done in %v", j.Name, end.Sub(start).Round(time.Millisecond))
		if ctx.Err() != nil {
			return nil
		}
		own := j.Schedule.Next(start)
		next[i] = j.Schedule.Next(end)
		if own.Before(end) {
			logf("job %s: ran past its next tick %s: skipped, next run %s", j.Name, fmtT(own), fmtT(next[i]))
		}
		for k, o := range s.Jobs {
			if k == i || next[k].IsZero() || next[k].After(end) {
				continue
			}
			if o.Overlap == OverlapSkip {
				was := next[k]
				next[k] = o.Schedule.Next(end)
				logf("job %s: due %s while job %s ran: skipped (overlap: skip), next run %s", o.Name, fmtT(was), j.Name, fmtT(next[k]))
			} else {
				logf("job %s: due %s while job %s ran: runs now (overlap: wait)", o.Name, fmtT(next[k]), j.Name)
			}
		}
		for k, o := range s.Jobs {
			s.update(o.Name, func(st *JobStatus) { st.NextRun = next[k] })
		}
	}
}

func fmtT(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}
