package probe

import (
	"time"
)

// Scheduled is a Sampler run over a future window of wall-clock time: a
// trial's measured part, after its warm-up.
type Scheduled struct {
	done chan struct{}
	w    *Window
	err  error
}

// Schedule starts s at start and stops it at end, in the background.
func Schedule(s *Sampler, start, end time.Time) *Scheduled {
	sc := &Scheduled{done: make(chan struct{})}
	go func() {
		defer close(sc.done)
		time.Sleep(time.Until(start))
		if err := s.Start(); err != nil && s.stop == nil {
			sc.err = err
			return
		}
		time.Sleep(time.Until(end))
		sc.w, sc.err = s.Stop()
	}()
	return sc
}

// Wait returns the window once end has passed. A nil Scheduled (nothing
// was scheduled: the run failed before it started) returns nil.
func (sc *Scheduled) Wait() (*Window, error) {
	if sc == nil {
		return nil, nil
	}
	<-sc.done
	return sc.w, sc.err
}
