// Package benchproc holds what the side-by-side benchmark harnesses
// (bench/peers, bench/httpcmp) share: pinned command lines, the servers
// they start and stop, and the median.
package benchproc

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
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
