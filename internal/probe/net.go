package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/latlab/latlab/internal/netns"
)

// snmpGauges are snmp fields that are not counters.
var snmpGauges = map[string]bool{
	"Ip.Forwarding": true, "Ip.DefaultTTL": true,
	"Tcp.RtoAlgorithm": true, "Tcp.RtoMin": true, "Tcp.RtoMax": true,
	"Tcp.MaxConn": true, "Tcp.CurrEstab": true,
}

// NetStat reads /proc/net/snmp and /proc/net/netstat of one network
// namespace ("snmp.Tcp.RetransSegs", "netstat.TcpExt.ListenDrops"...).
//
// These files are per namespace, and /proc/self/net follows the namespace
// of the thread-group leader, not of the reading thread; so the collector
// reads /proc/thread-self/net from a throwaway OS thread that entered
// NetNS. With an empty NetNS it reads the caller's namespace. Under a
// testdata root without thread-self it falls back to <proc>/net.
type NetStat struct {
	Roots Roots
	NetNS string // path of the namespace, e.g. /var/run/netns/NAME
}

func (NetStat) Name() string { return "netstat" }

func (c NetStat) Collect(s *Sample) error {
	proc := c.Roots.withDefaults().Proc
	type file struct {
		name string
		b    []byte
	}
	files := []file{{name: "snmp"}, {name: "netstat"}}
	read := func() error {
		dir := filepath.Join(proc, "thread-self", "net")
		if _, err := os.Stat(dir); err != nil {
			if c.NetNS != "" || !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("per-thread net directory: %w", err)
			}
			dir = filepath.Join(proc, "net")
		}
		for i := range files {
			b, err := os.ReadFile(filepath.Join(dir, files[i].name))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			files[i].b = b
		}
		return nil
	}
	if err := netns.Do(c.NetNS, read); err != nil {
		return err
	}
	for _, f := range files {
		if f.b == nil {
			s.MarkUnavailable("netstat."+f.name, "/proc/net/"+f.name+": not provided by this kernel")
			continue
		}
		m, err := ParseNetStat(f.b)
		if err != nil {
			return fmt.Errorf("/proc/net/%s: %w", f.name, err)
		}
		for k, v := range m {
			if v < 0 || snmpGauges[k] {
				s.SetGauge(f.name+"."+k, float64(v))
				continue
			}
			s.Set(f.name+"."+k, Counter{Total: uint64(v)})
		}
	}
	return nil
}

// ParseNetStat parses the header/value line pairs of /proc/net/snmp and
// /proc/net/netstat ("Tcp: RetransSegs ..." then "Tcp: 12 ...") into
// "Proto.Field" keys. Values are signed: Tcp MaxConn is -1.
func ParseNetStat(b []byte) (map[string]int64, error) {
	out := map[string]int64{}
	var hdr []string
	var proto string
	for line := range strings.Lines(string(b)) {
		p, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if hdr == nil || p != proto {
			hdr, proto = f, p
			continue
		}
		if len(f) != len(hdr) {
			return nil, fmt.Errorf("%s: %d values for %d names", p, len(f), len(hdr))
		}
		for i, v := range f {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(v, 10, 64)
				if uerr != nil {
					return nil, fmt.Errorf("%s.%s: %w", p, hdr[i], err)
				}
				n = int64(u >> 1) // beyond int64: keep it monotonic
			}
			out[p+"."+hdr[i]] = n
		}
		hdr = nil
	}
	return out, nil
}

// Pressure reads /proc/pressure/cpu (PSI): the stall totals as counters in
// µs and the averages as gauges. Kernels without CONFIG_PSI, or booted with
// psi=0, report it unavailable.
type Pressure struct{ Roots Roots }

func (Pressure) Name() string { return "pressure" }

func (c Pressure) Collect(s *Sample) error {
	p := filepath.Join(c.Roots.withDefaults().Proc, "pressure", "cpu")
	return collectPSI(s, c.Name(), p, "pressure.cpu.")
}

func collectPSI(s *Sample, source, path, prefix string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		// EOPNOTSUPP when PSI is compiled in but disabled at boot.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotSupported) {
			s.MarkUnavailable(source, path+": "+err.Error())
			return nil
		}
		return err
	}
	m, err := ParsePSI(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range m {
		if strings.HasSuffix(k, "_us") {
			s.Set(prefix+k, Counter{Total: uint64(v)})
		} else {
			s.SetGauge(prefix+k, v)
		}
	}
	return nil
}

// ParsePSI parses "some avg10=0.00 avg60=0.00 avg300=0.00 total=123" lines
// into some_avg10... (percent) and some_us, full_us (total stall, µs).
func ParsePSI(b []byte) (map[string]float64, error) {
	out := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		kind := f[0]
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("%s: field %q", kind, kv)
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", kind, k, err)
			}
			if k == "total" {
				out[kind+"_us"] = x
			} else {
				out[kind+"_"+k] = x
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty")
	}
	return out, nil
}

// Cgroup reads a cgroup v2 cpu.stat (usage, and throttling when the cpu
// controller is enabled for the group) and cpu.pressure. On a host without
// cgroup v2 (or a v1-only hybrid), or for counters the group lacks, the
// sources are reported unavailable.
type Cgroup struct {
	Roots Roots
	// Path is relative to the cgroup2 mount; empty means the cgroup of
	// this process (the "0::" line of /proc/self/cgroup).
	Path string
}

func (Cgroup) Name() string { return "cgroup" }

// cgroup2Root finds the cgroup2 mount under sys: /sys/fs/cgroup (unified)
// or /sys/fs/cgroup/unified (hybrid).
func cgroup2Root(sys string) (string, bool) {
	for _, d := range []string{"fs/cgroup", "fs/cgroup/unified"} {
		p := filepath.Join(sys, d)
		if _, err := os.Stat(filepath.Join(p, "cgroup.controllers")); err == nil {
			return p, true
		}
	}
	return "", false
}

func (c Cgroup) Collect(s *Sample) error {
	r := c.Roots.withDefaults()
	root, ok := cgroup2Root(r.Sys)
	if !ok {
		s.MarkUnavailable(c.Name(), "no cgroup2 mount under "+r.Sys+"/fs/cgroup")
		return nil
	}
	rel := c.Path
	if rel == "" {
		b, err := os.ReadFile(filepath.Join(r.Proc, "self", "cgroup"))
		if err != nil {
			s.MarkUnavailable(c.Name(), "own cgroup: "+err.Error())
			return nil
		}
		for line := range strings.Lines(string(b)) {
			if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
				rel = p
			}
		}
	}
	dir := filepath.Join(root, filepath.Clean("/"+rel))
	b, err := readSource(s, "cgroup.cpu.stat", filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return err
	}
	if b != nil {
		m, err := ParseFlatKeyed(b)
		if err != nil {
			return fmt.Errorf("%s/cpu.stat: %w", dir, err)
		}
		for k, v := range m {
			s.Set("cgroup.cpu."+k, Counter{Total: v})
		}
		if _, ok := m["nr_throttled"]; !ok {
			s.MarkUnavailable("cgroup.cpu.throttling", dir+": cpu controller not enabled for this cgroup")
		}
	}
	return collectPSI(s, "cgroup.cpu.pressure", filepath.Join(dir, "cpu.pressure"), "cgroup.cpu.pressure.")
}

// ParseFlatKeyed parses cgroup "key value" lines.
func ParseFlatKeyed(b []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %q", strings.TrimSpace(line))
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f[0], err)
		}
		out[f[0]] = v
	}
	return out, nil
}
