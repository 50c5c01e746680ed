package probe

import (
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets for the /proc and cgroup parsers. The files are the
// kernel's, but a container runtime, a FUSE /proc (lxcfs) or a testdata
// root can hand over anything: a parser returns an error or counters
// whose per-CPU vectors are bounded, never panics, never sizes an
// allocation by a number it read.

// maxFuzzCPUs is the largest per-CPU vector a parser may build.
const maxFuzzCPUs = 1 << 16

func fixture(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func checkCounter(t *testing.T, what string, c Counter) {
	t.Helper()
	if len(c.PerCPU) > maxFuzzCPUs {
		t.Fatalf("%s: per-CPU vector of %d", what, len(c.PerCPU))
	}
}

func FuzzParseSoftirqs(f *testing.F) {
	fixture(f, "proc-6.18/softirqs")
	f.Add([]byte("                    CPU0       CPU2\n          HI:          1          2\n      NET_RX:        10\n"))
	f.Add([]byte("CPU0 CPU1\nNET_RX: 1 2 3\n"))
	// Found by review: CPU numbers that index or size a vector.
	f.Add([]byte("CPU-1\nNET_RX: 7\n"))
	f.Add([]byte("CPU0 CPU4294967296\nNET_RX: 1 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseSoftirqs(b)
		if err != nil {
			return
		}
		for k, c := range m {
			checkCounter(t, k, c)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	fixture(f, "proc-6.18/stat", "noise/a/stat", "noise/b/stat")
	f.Add([]byte("cpu  1 2 3 4 5 6 7 8 9 10\ncpu3 1 2 3 4 5 6 7 8 9 10\n"))
	f.Add([]byte("cpu0 1 2 3\n"))
	f.Add([]byte("cpu  1 2 3 4 5 6 7 8\ncpu-1 1 2 3 4 5 6 7\n"))
	f.Add([]byte("cpu  1 2 3 4 5 6 7 8\ncpu4294967296 1 2 3 4 5 6 7\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		irq, soft, err := ParseStat(b)
		if err != nil {
			return
		}
		checkCounter(t, "irq", irq)
		checkCounter(t, "softirq", soft)
	})
}

func FuzzParseInterrupts(f *testing.F) {
	fixture(f, "proc-6.18/interrupts")
	f.Add([]byte("           CPU0       CPU1\n  0:         10          0   IO-APIC    2-edge      timer\nERR:          0\n"))
	f.Add([]byte("CPU-2\n  0: 1\n"))
	f.Add([]byte("CPU4294967296\n  0: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseInterrupts(b)
		if err != nil {
			return
		}
		checkCounter(t, "interrupts", c)
	})
}

func FuzzParseSoftnet(f *testing.F) {
	fixture(f, "proc-6.18/net/softnet_stat", "proc-5.4/net/softnet_stat")
	f.Add([]byte("0000000a 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000004 00000005 00000007\n"))
	f.Add([]byte("1 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseSoftnet(b)
		if err != nil {
			return
		}
		for _, c := range []Counter{st.Processed, st.Dropped, st.TimeSqueeze, st.ReceivedRPS, st.FlowLimit} {
			checkCounter(t, "softnet", c)
		}
	})
}

func FuzzParseNetStat(f *testing.F) {
	fixture(f, "proc-6.18/net/snmp", "proc-6.18/net/netstat")
	f.Add([]byte("Tcp: RtoAlgorithm MaxConn\nTcp: 1 -1\nUdp: InErrors\nUdp: 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseNetStat(b)
	})
}

func FuzzParsePSI(f *testing.F) {
	fixture(f, "proc-6.18/pressure/cpu", "noise/a/pressure/cpu", "sys-6.18/fs/cgroup/unified/cpu.pressure")
	f.Add([]byte("some avg10=1.00 avg60=NaN avg300=+Inf total=1e300\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParsePSI(b)
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	fixture(f, "sys-6.18/fs/cgroup/unified/cpu.stat", "sys-throttled/fs/cgroup/kubepods/pod1/cpu.stat")
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseFlatKeyed(b)
	})
}

// writeTree writes files (path → content) under a fresh directory.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for p, b := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func read(f *testing.F, p string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", p))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzSampleCPUs: SampleCPUs reads stat, schedstat and pressure/cpu under
// a proc root; the fuzzer writes all three.
func FuzzSampleCPUs(f *testing.F) {
	for _, d := range []string{"noise/a", "noise/b"} {
		f.Add(read(f, d+"/stat"), read(f, d+"/schedstat"), read(f, d+"/pressure/cpu"))
	}
	f.Add(read(f, "proc-6.18/stat"), []byte("cpu0 1 2\ncpu-1 0 0 0 0 0 0 0 5 0\n"), []byte("some total=-5\n"))
	f.Fuzz(func(t *testing.T, stat, schedstat, pressure []byte) {
		root := writeTree(t, map[string][]byte{"stat": stat, "schedstat": schedstat, "pressure/cpu": pressure})
		a, err := SampleCPUs(root)
		if err != nil {
			return
		}
		// A sample is compared with a later one; the same one must do.
		n := a.Noise(a, nil)
		if len(n.CPUs) != len(a.Total) {
			t.Fatalf("%d CPUs in the noise of %d", len(n.CPUs), len(a.Total))
		}
	})
}

// FuzzCgroup: the cgroup collector follows /proc/self/cgroup to a
// directory under the cgroup2 mount and parses cpu.stat and cpu.pressure
// there; the fuzzer writes all three files.
func FuzzCgroup(f *testing.F) {
	f.Add(read(f, "proc-6.18/self/cgroup"), read(f, "sys-6.18/fs/cgroup/unified/cpu.stat"), read(f, "sys-6.18/fs/cgroup/unified/cpu.pressure"))
	f.Add([]byte("0::/../../../etc\n"), []byte("usage_usec 1\n"), []byte("some total=1\n"))
	f.Fuzz(func(t *testing.T, cgroup, stat, pressure []byte) {
		// The collector reads cpu.stat under the cgroup the "0::" line
		// names; put the fuzzed files where a plain "0::/" line points.
		root := writeTree(t, map[string][]byte{
			"proc/self/cgroup":                 cgroup,
			"sys/fs/cgroup/cgroup.controllers": []byte("cpu\n"),
			"sys/fs/cgroup/cpu.stat":           stat,
			"sys/fs/cgroup/cpu.pressure":       pressure,
		})
		s := NewSample()
		c := Cgroup{Roots: Roots{Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys")}}
		if err := c.Collect(s); err != nil {
			return
		}
		for k, ctr := range s.Counters {
			checkCounter(t, k, ctr)
		}
	})
}
