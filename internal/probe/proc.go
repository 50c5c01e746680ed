package probe

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Keys of the counters the /proc tier records (every vector of
// /proc/softirqs and every field of snmp/netstat is recorded too, under
// "softirqs.VEC", "snmp.Proto.Field" and "netstat.Proto.Field").
const (
	KeyNetRX         = "softirqs.NET_RX"
	KeyNetTX         = "softirqs.NET_TX"
	KeyIRQUs         = "stat.irq_us"     // hard-irq time, µs (from USER_HZ ticks)
	KeySoftirqUs     = "stat.softirq_us" // softirq time, µs (from USER_HZ ticks)
	KeyInterrupts    = "interrupts.total"
	KeySoftnetProc   = "softnet.processed"
	KeySoftnetDrop   = "softnet.dropped"
	KeyTimeSqueeze   = "softnet.time_squeeze"
	KeyReceivedRPS   = "softnet.received_rps"
	KeyFlowLimit     = "softnet.flow_limit_count"
	KeyRetransSegs   = "snmp.Tcp.RetransSegs"
	KeyInSegs        = "snmp.Tcp.InSegs"
	KeyOutSegs       = "snmp.Tcp.OutSegs"
	KeyUDPInErrors   = "snmp.Udp.InErrors"
	KeyUDPRcvbufErr  = "snmp.Udp.RcvbufErrors"
	KeyUDPNoPorts    = "snmp.Udp.NoPorts"
	KeyListenOverflw = "netstat.TcpExt.ListenOverflows"
	KeyListenDrops   = "netstat.TcpExt.ListenDrops"
	KeyTCPTimeouts   = "netstat.TcpExt.TCPTimeouts"
	KeyPSICPUSome    = "pressure.cpu.some_us"
	KeyPSICPUFull    = "pressure.cpu.full_us"
	KeyCgroupThrotUs = "cgroup.cpu.throttled_usec"
	KeyCgroupThrotN  = "cgroup.cpu.nr_throttled"
	KeyCgroupPeriods = "cgroup.cpu.nr_periods"
	KeyCgroupPSISome = "cgroup.cpu.pressure.some_us"
	KeyCgroupPSIFull = "cgroup.cpu.pressure.full_us"
)

// UserHZ is the unit of /proc/stat times. It is part of the kernel ABI and
// 100 on every architecture Linux supports today (sysconf(_SC_CLK_TCK)).
const UserHZ = 100

// readSource reads a file; a missing one is recorded as unavailable in s
// and reported as (nil, nil).
func readSource(s *Sample, source, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.MarkUnavailable(source, path+": not provided by this kernel")
			return nil, nil
		}
		return nil, err
	}
	return b, nil
}

// maxCPU bounds the CPU numbers a parser accepts: far above any kernel's
// NR_CPUS (8192 at most), and low enough that a per-CPU vector sized by a
// corrupt number stays small.
const maxCPU = 1 << 16

// cpuID parses the number of "CPU3" / "cpu3" (prefix removed).
func cpuID(s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if id < 0 || id >= maxCPU {
		return 0, fmt.Errorf("CPU %d outside 0..%d", id, maxCPU-1)
	}
	return id, nil
}

// cpuColumns parses a header "CPU0 CPU1 CPU3" into CPU numbers.
func cpuColumns(header string) ([]int, error) {
	var ids []int
	for _, f := range strings.Fields(header) {
		n, ok := strings.CutPrefix(f, "CPU")
		if !ok {
			return nil, fmt.Errorf("header field %q is not CPUn", f)
		}
		id, err := cpuID(n)
		if err != nil {
			return nil, fmt.Errorf("header field %q: %w", f, err)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, errors.New("no CPU columns in header")
	}
	return ids, nil
}

// perCPU builds a counter from values in the columns of ids.
func perCPU(ids []int, vals []uint64) Counter {
	n := 0
	for _, id := range ids {
		n = max(n, id+1)
	}
	c := Counter{PerCPU: make([]uint64, n)}
	for i, v := range vals {
		c.PerCPU[ids[i]] = v
		c.Total += v
	}
	return c
}

// Softirqs reads /proc/softirqs: every vector, per CPU ("softirqs.NET_RX").
type Softirqs struct{ Roots Roots }

func (Softirqs) Name() string { return "softirqs" }

func (c Softirqs) Collect(s *Sample) error {
	p := filepath.Join(c.Roots.withDefaults().Proc, "softirqs")
	b, err := readSource(s, c.Name(), p)
	if b == nil {
		return err
	}
	m, err := ParseSoftirqs(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for vec, ctr := range m {
		s.Set("softirqs."+vec, ctr)
	}
	return nil
}

// ParseSoftirqs parses /proc/softirqs into one counter per vector.
func ParseSoftirqs(b []byte) (map[string]Counter, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() {
		return nil, errors.New("empty")
	}
	ids, err := cpuColumns(sc.Text())
	if err != nil {
		return nil, err
	}
	out := map[string]Counter{}
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		vals, err := parseUints(strings.Fields(rest), 10)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.TrimSpace(name), err)
		}
		if len(vals) > len(ids) {
			return nil, fmt.Errorf("%s: %d values for %d CPUs", strings.TrimSpace(name), len(vals), len(ids))
		}
		out[strings.TrimSpace(name)] = perCPU(ids[:len(vals)], vals)
	}
	return out, sc.Err()
}

func parseUints(fs []string, base int) ([]uint64, error) {
	out := make([]uint64, len(fs))
	for i, f := range fs {
		v, err := strconv.ParseUint(f, base, 64)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// Stat reads the hard-irq and softirq time of /proc/stat, per CPU and in
// total, converted from USER_HZ ticks to µs. The resolution is one tick
// (10 ms), and without CONFIG_IRQ_TIME_ACCOUNTING the kernel samples it at
// the timer tick: a coarse figure, only meaningful over many transactions.
type Stat struct{ Roots Roots }

func (Stat) Name() string { return "stat" }

func (c Stat) Collect(s *Sample) error {
	p := filepath.Join(c.Roots.withDefaults().Proc, "stat")
	b, err := readSource(s, c.Name(), p)
	if b == nil {
		return err
	}
	irq, soft, err := ParseStat(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	s.Set(KeyIRQUs, irq)
	s.Set(KeySoftirqUs, soft)
	return nil
}

// ParseStat returns the irq and softirq times (µs) of /proc/stat.
func ParseStat(b []byte) (irq, softirq Counter, err error) {
	const usPerTick = 1_000_000 / UserHZ
	var ids []int
	var irqs, softs []uint64
	seenTotal := false
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if len(f) < 8 {
			return irq, softirq, fmt.Errorf("%s: %d fields, want at least 8", f[0], len(f))
		}
		vals, err := parseUints(f[6:8], 10) // irq, softirq
		if err != nil {
			return irq, softirq, fmt.Errorf("%s: %w", f[0], err)
		}
		if f[0] == "cpu" {
			irq.Total, softirq.Total = vals[0]*usPerTick, vals[1]*usPerTick
			seenTotal = true
			continue
		}
		id, err := cpuID(f[0][3:])
		if err != nil {
			return irq, softirq, fmt.Errorf("%s: %w", f[0], err)
		}
		ids = append(ids, id)
		irqs = append(irqs, vals[0]*usPerTick)
		softs = append(softs, vals[1]*usPerTick)
	}
	if !seenTotal {
		return irq, softirq, errors.New("no cpu line")
	}
	ti, ts := irq.Total, softirq.Total
	irq, softirq = perCPU(ids, irqs), perCPU(ids, softs)
	irq.Total, softirq.Total = ti, ts // the kernel's total includes offline CPUs
	return irq, softirq, nil
}

// Interrupts reads /proc/interrupts and records the number of interrupts
// (device and architectural) per CPU.
type Interrupts struct{ Roots Roots }

func (Interrupts) Name() string { return "interrupts" }

func (c Interrupts) Collect(s *Sample) error {
	p := filepath.Join(c.Roots.withDefaults().Proc, "interrupts")
	b, err := readSource(s, c.Name(), p)
	if b == nil {
		return err
	}
	ctr, err := ParseInterrupts(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	s.Set(KeyInterrupts, ctr)
	return nil
}

// ParseInterrupts sums /proc/interrupts per CPU column. Rows with a single
// global value (ERR, MIS) are counted in no CPU's column.
func ParseInterrupts(b []byte) (Counter, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		return Counter{}, errors.New("empty")
	}
	ids, err := cpuColumns(sc.Text())
	if err != nil {
		return Counter{}, err
	}
	sums := make([]uint64, len(ids))
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < len(ids) {
			continue // ERR:, MIS: and the like
		}
		for i := range ids {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				break // a short row followed by a description
			}
			sums[i] += v
		}
	}
	if err := sc.Err(); err != nil {
		return Counter{}, err
	}
	return perCPU(ids, sums), nil
}

// Softnet reads /proc/net/softnet_stat: packets processed, dropped at the
// backlog and time squeezes (net_rx_action out of budget or time), per CPU.
type Softnet struct{ Roots Roots }

func (Softnet) Name() string { return "softnet" }

func (c Softnet) Collect(s *Sample) error {
	p := filepath.Join(c.Roots.withDefaults().Proc, "net", "softnet_stat")
	b, err := readSource(s, c.Name(), p)
	if b == nil {
		return err
	}
	st, err := ParseSoftnet(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	s.Set(KeySoftnetProc, st.Processed)
	s.Set(KeySoftnetDrop, st.Dropped)
	s.Set(KeyTimeSqueeze, st.TimeSqueeze)
	if st.ReceivedRPS.PerCPU != nil {
		s.Set(KeyReceivedRPS, st.ReceivedRPS)
		s.Set(KeyFlowLimit, st.FlowLimit)
	}
	if st.HasBacklog {
		s.SetGauge("softnet.backlog_len", float64(st.BacklogLen))
	}
	return nil
}

// SoftnetStat is the parsed /proc/net/softnet_stat.
type SoftnetStat struct {
	Processed, Dropped, TimeSqueeze Counter
	// ReceivedRPS and FlowLimit exist from Linux 2.6.36 / 3.2 on (11+
	// columns); nil PerCPU otherwise.
	ReceivedRPS, FlowLimit Counter
	// BacklogLen is the summed backlog queue length (Linux 5.10+).
	BacklogLen uint64
	HasBacklog bool
	// CPUColumn reports whether lines carried their CPU number (Linux
	// 5.10+). Before that, lines exist only for online CPUs and line i is
	// taken to be CPU i, which is wrong with CPUs offline.
	CPUColumn bool
}

// ParseSoftnet parses softnet_stat in every layout: the hex columns are
// processed, dropped, time_squeeze, five zeros, cpu_collision, received_rps,
// flow_limit_count (11 columns up to Linux 5.9), then backlog length and the
// CPU number (13, Linux 5.10+), then input and process queue lengths (15,
// Linux 6.x). Very old kernels print only the first 9 or 10.
func ParseSoftnet(b []byte) (SoftnetStat, error) {
	var st SoftnetStat
	type row struct {
		cpu  int
		vals []uint64
	}
	var rows []row
	line := 0
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return st, fmt.Errorf("line %d: %d columns, want at least 3", line+1, len(f))
		}
		vals, err := parseUints(f, 16)
		if err != nil {
			return st, fmt.Errorf("line %d: %w", line+1, err)
		}
		r := row{cpu: line, vals: vals}
		if len(vals) >= 13 {
			if vals[12] >= maxCPU {
				return st, fmt.Errorf("line %d: CPU %d outside 0..%d", line+1, vals[12], maxCPU-1)
			}
			r.cpu = int(vals[12])
			st.CPUColumn = true
		}
		rows = append(rows, r)
		line++
	}
	if len(rows) == 0 {
		return st, errors.New("empty")
	}
	n := 0
	for _, r := range rows {
		n = max(n, r.cpu+1)
	}
	mk := func() Counter { return Counter{PerCPU: make([]uint64, n), Width: 32} }
	st.Processed, st.Dropped, st.TimeSqueeze = mk(), mk(), mk()
	hasRPS := len(rows[0].vals) >= 11
	if hasRPS {
		st.ReceivedRPS, st.FlowLimit = mk(), mk()
	}
	for _, r := range rows {
		set := func(c *Counter, col int) {
			if col < len(r.vals) {
				c.PerCPU[r.cpu] = r.vals[col]
				c.Total += r.vals[col]
			}
		}
		set(&st.Processed, 0)
		set(&st.Dropped, 1)
		set(&st.TimeSqueeze, 2)
		if hasRPS {
			set(&st.ReceivedRPS, 9)
			set(&st.FlowLimit, 10)
		}
		if len(r.vals) >= 12 {
			st.BacklogLen += r.vals[11]
			st.HasBacklog = true
		}
	}
	return st, nil
}
