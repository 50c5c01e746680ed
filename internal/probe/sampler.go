package probe

import (
	"errors"
	"sync"
	"time"
)

// Sampler takes a snapshot at a trial's start and end, and optionally one
// every Interval in between, and returns the deltas.
type Sampler struct {
	Registry *Registry
	// Interval, if > 0, adds a per-interval series (of /proc counters).
	Interval time.Duration
	// EBPF, if set, is read at Start and Stop too.
	EBPF *EBPF

	mu        sync.Mutex
	start     *Sample
	ebpfStart *EBPFCounters
	last      *Sample
	intervals []*Sample
	errs      []error
	stop      chan struct{}
	done      chan struct{}
}

// Window is what a Sampler saw between Start and Stop.
type Window struct {
	// Delta covers the whole window.
	Delta *Sample `json:"delta"`
	// Intervals are consecutive deltas (Interval > 0 only); the last one
	// ends at Stop.
	Intervals []*Sample `json:"intervals,omitempty"`
	// EBPF is the eBPF delta over the window (Sampler.EBPF set).
	EBPF *EBPFCounters `json:"ebpf,omitempty"`
}

// Attribute computes the window's attribution over txns transactions.
func (w *Window) Attribute(txns int64) Attribution {
	a := Attribute(w.Delta, txns)
	a.AddEBPF(w.EBPF)
	return a
}

// Start takes the first snapshot and starts the ticker.
func (s *Sampler) Start() error {
	if s.stop != nil {
		return errors.New("sampler already started")
	}
	var eerr error
	s.ebpfStart = nil
	if s.EBPF != nil {
		s.ebpfStart, eerr = s.EBPF.Read()
	}
	first, err := s.Registry.Snapshot()
	err = errors.Join(err, eerr)
	s.start, s.last = first, first
	s.intervals, s.errs = nil, nil
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.loop()
	return err
}

func (s *Sampler) loop() {
	defer close(s.done)
	if s.Interval <= 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.tick()
		}
	}
}

func (s *Sampler) tick() *Sample {
	cur, err := s.Registry.Snapshot()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
	}
	if s.Interval > 0 {
		s.intervals = append(s.intervals, Delta(s.last, cur))
	}
	s.last = cur
	return cur
}

// Stop takes the last snapshot and returns the window. Errors of
// individual snapshots are returned joined, with whatever was read.
func (s *Sampler) Stop() (*Window, error) {
	if s.stop == nil {
		return nil, errors.New("sampler not started")
	}
	close(s.stop)
	<-s.done
	s.stop = nil
	end := s.tick()
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &Window{Delta: Delta(s.start, end), Intervals: s.intervals}
	if s.EBPF != nil && s.ebpfStart != nil {
		b, err := s.EBPF.Read()
		if err != nil {
			s.errs = append(s.errs, err)
		} else {
			w.EBPF = DeltaEBPF(s.ebpfStart, b)
		}
	}
	return w, errors.Join(s.errs...)
}
