// Package benchproc holds what the side-by-side benchmark harnesses
// (bench/peers, bench/httpcmp, bench/labpeers) share: pinned command
// lines, the servers they start and stop, the median, a comparison table's
// row, and the machine's description (kernel, CPU model).
package benchproc

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/stats"
)

// Pin returns argv run under `taskset -c cpu`, inside network namespace ns
// (`ip netns exec ns`) when ns is not empty.
func Pin(ns string, cpu int, argv ...string) []string {
	out := append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	if ns != "" {
		out = append([]string{"ip", "netns", "exec", ns}, out...)
	}
	return out
}

// Procs are background processes (servers) a harness started.
type Procs struct{ cmds []*exec.Cmd }

// Start starts argv in the background, its output discarded.
func (p *Procs) Start(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %v: %w", argv, err)
	}
	p.cmds = append(p.cmds, cmd)
	return nil
}

// StopAll kills and reaps every process started.
func (p *Procs) StopAll() {
	for _, c := range p.cmds {
		c.Process.Kill()
		c.Wait()
	}
	p.cmds = nil
}

// Median of v (0 for none); v is not modified.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Row formats one line of a comparison table: name, the medians of latlab's
// and the peer's figures over the rounds, the ratio of those medians, the
// paired ratio (median of the per-round ratios) with its 95% CI, and each
// round's ratio.
func Row(nameWidth int, name string, latlab, peer []float64) string {
	ratios := make([]string, len(latlab))
	for i := range latlab {
		ratios[i] = fmt.Sprintf("%.3f", latlab[i]/peer[i])
	}
	pr, _ := stats.PairedRatio(latlab, peer, 0.95)
	ci := fmt.Sprintf("[%.3f, %.3f]", pr.Lo, pr.Hi)
	if pr.TooFew {
		ci = "(too few rounds)"
	}
	return fmt.Sprintf("  %-*s %12.2f %12.2f %8.3f %8.3f %17s   %s", nameWidth, name, Median(latlab), Median(peer),
		Median(latlab)/Median(peer), pr.Center, ci, strings.Join(ratios, " "))
}

// Host is the machine's kernel release and CPU model, as every stored run
// and JSON document records them (experiment.HostFingerprint).
func Host() (kernel, cpu string) {
	k, c, _ := experiment.HostFingerprint()
	return k, c
}

// StartPID starts argv in the background, its output discarded, and
// returns its PID (`ip netns exec` and `taskset` exec the command, so it
// is the command's own).
func (p *Procs) StartPID(argv ...string) (int, error) {
	if err := p.Start(argv...); err != nil {
		return 0, err
	}
	return p.cmds[len(p.cmds)-1].Process.Pid, nil
}

// ProcCPU is the CPU time (user + system, every thread) process pid has
// used so far, from /proc/PID/stat (0 if it cannot be read).
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: fields count from ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(ut+st) * (time.Second / 100)
}
