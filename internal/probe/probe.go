package probe

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Roots are the mount points of procfs and sysfs. Tests point them at a
// testdata tree; the zero value means the real /proc and /sys.
type Roots struct {
	Proc string
	Sys  string
}

// DefaultRoots are the host's own /proc and /sys.
var DefaultRoots = Roots{Proc: "/proc", Sys: "/sys"}

func (r Roots) withDefaults() Roots {
	if r.Proc == "" {
		r.Proc = DefaultRoots.Proc
	}
	if r.Sys == "" {
		r.Sys = DefaultRoots.Sys
	}
	return r
}

// Collector reads one kernel source into a Sample. A source the kernel does
// not provide (a missing file) is recorded with Sample.MarkUnavailable and is
// not an error; an unreadable or malformed one is.
type Collector interface {
	Name() string
	Collect(into *Sample) error
}

// Counter is one monotonically increasing kernel counter. PerCPU, when not
// nil, is indexed by CPU number (a CPU the source does not list reads 0) and
// Total is the kernel's own total or the sum over CPUs.
type Counter struct {
	Total  uint64   `json:"total"`
	PerCPU []uint64 `json:"per_cpu,omitempty"`
	// Width is 32 for counters the kernel keeps in 32 bits (softnet_stat),
	// which Delta unwraps once; 0 means 64 bits.
	Width int `json:"width,omitempty"`
}

// Sample holds the counters of one Snapshot, or the differences between two
// snapshots after Delta.
type Sample struct {
	// Time is when the snapshot was taken; for a delta, its end.
	Time time.Time `json:"time"`
	// Elapsed is zero for a snapshot and the interval covered by a delta.
	Elapsed time.Duration `json:"elapsed,omitempty"`
	// Counters are keyed "source.name", e.g. "softirqs.NET_RX",
	// "stat.softirq_us", "snmp.Tcp.RetransSegs" (see the Key constants).
	Counters map[string]Counter `json:"counters"`
	// Gauges are instantaneous values (PSI averages, queue lengths, current
	// connections). Delta keeps the later value.
	Gauges map[string]float64 `json:"gauges,omitempty"`
	// Unavailable maps a source the kernel does not provide to the reason.
	Unavailable map[string]string `json:"unavailable,omitempty"`
}

// NewSample returns an empty sample stamped now.
func NewSample() *Sample {
	return &Sample{Time: time.Now(), Counters: map[string]Counter{}, Gauges: map[string]float64{}}
}

// Set stores a counter.
func (s *Sample) Set(key string, c Counter) {
	if s.Counters == nil {
		s.Counters = map[string]Counter{}
	}
	s.Counters[key] = c
}

// SetGauge stores a gauge.
func (s *Sample) SetGauge(key string, v float64) {
	if s.Gauges == nil {
		s.Gauges = map[string]float64{}
	}
	s.Gauges[key] = v
}

// MarkUnavailable records that source could not be read, and why.
func (s *Sample) MarkUnavailable(source, reason string) {
	if s.Unavailable == nil {
		s.Unavailable = map[string]string{}
	}
	s.Unavailable[source] = reason
}

// Total returns the total of a counter and whether it is present.
func (s *Sample) Total(key string) (uint64, bool) {
	c, ok := s.Counters[key]
	return c.Total, ok
}

// Keys lists the counter keys in order.
func (s *Sample) Keys() []string {
	return slices.Sorted(maps.Keys(s.Counters))
}

// Delta returns b - a for every counter present in both (per CPU and total),
// the gauges of b, and the union of unavailable sources. A counter that went
// backwards (a 64-bit counter reset, e.g. a namespace recreated) reads 0; a
// 32-bit counter is unwrapped once.
func Delta(a, b *Sample) *Sample {
	d := &Sample{
		Time:     b.Time,
		Elapsed:  b.Time.Sub(a.Time),
		Counters: make(map[string]Counter, len(b.Counters)),
		Gauges:   maps.Clone(b.Gauges),
	}
	for k, cb := range b.Counters {
		ca, ok := a.Counters[k]
		if !ok {
			continue
		}
		w := max(ca.Width, cb.Width)
		dc := Counter{Width: w}
		if cb.PerCPU != nil || ca.PerCPU != nil {
			n := max(len(ca.PerCPU), len(cb.PerCPU))
			dc.PerCPU = make([]uint64, n)
			for i := range n {
				dc.PerCPU[i] = sub(at(cb.PerCPU, i), at(ca.PerCPU, i), w)
			}
		}
		if w == 32 && dc.PerCPU != nil {
			// A 32-bit counter's total is a sum of wrapping per-CPU values;
			// the per-CPU deltas are the trustworthy ones.
			for _, v := range dc.PerCPU {
				dc.Total += v
			}
		} else {
			dc.Total = sub(cb.Total, ca.Total, w)
		}
		d.Counters[k] = dc
	}
	for k, v := range a.Unavailable {
		d.MarkUnavailable(k, v)
	}
	for k, v := range b.Unavailable {
		d.MarkUnavailable(k, v)
	}
	return d
}

func at(s []uint64, i int) uint64 {
	if i < len(s) {
		return s[i]
	}
	return 0
}

func sub(b, a uint64, width int) uint64 {
	if b >= a {
		return b - a
	}
	if width == 32 && a <= 1<<32-1 && b <= 1<<32-1 {
		return b + (1 << 32) - a
	}
	return 0
}

// Registry is an ordered set of collectors.
type Registry struct {
	collectors []Collector
}

// NewRegistry returns a registry holding cs.
func NewRegistry(cs ...Collector) *Registry {
	r := &Registry{}
	for _, c := range cs {
		r.Register(c)
	}
	return r
}

// Register adds c; a collector of the same name is replaced.
func (r *Registry) Register(c Collector) {
	for i, old := range r.collectors {
		if old.Name() == c.Name() {
			r.collectors[i] = c
			return
		}
	}
	r.collectors = append(r.collectors, c)
}

// Names lists the registered collectors in order.
func (r *Registry) Names() []string {
	var out []string
	for _, c := range r.collectors {
		out = append(out, c.Name())
	}
	return out
}

// Snapshot runs every collector. A collector that fails does not stop the
// others: its error is recorded in Unavailable and returned, joined, along
// with the sample holding everything that was read.
func (r *Registry) Snapshot() (*Sample, error) {
	s := NewSample()
	var errs []error
	for _, c := range r.collectors {
		if err := c.Collect(s); err != nil {
			s.MarkUnavailable(c.Name(), "error: "+err.Error())
			errs = append(errs, fmt.Errorf("collector %s: %w", c.Name(), err))
		}
	}
	return s, errors.Join(errs...)
}

// Options choose what DefaultRegistry collects.
type Options struct {
	Roots Roots
	// NetNS is the path of the network namespace whose snmp/netstat
	// counters are read (e.g. /var/run/netns/NAME); empty means the
	// caller's.
	NetNS string
	// Cgroup is a cgroup v2 path relative to the cgroup2 mount (e.g.
	// "system.slice/foo.scope") whose cpu.stat and cpu.pressure are read;
	// empty means this process's own cgroup.
	Cgroup string
}

// DefaultRegistry returns a registry with every /proc-tier collector.
func DefaultRegistry(o Options) *Registry {
	return NewRegistry(
		Softirqs{Roots: o.Roots},
		Stat{Roots: o.Roots},
		Interrupts{Roots: o.Roots},
		Softnet{Roots: o.Roots},
		NetStat{Roots: o.Roots, NetNS: o.NetNS},
		Pressure{Roots: o.Roots},
		Cgroup{Roots: o.Roots, Path: o.Cgroup},
	)
}
