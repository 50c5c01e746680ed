// Command overhead measures what attribution costs: tcp_rr through the
// lab's host path (two namespaces joined by a veth wire), with probes on
// (/proc sampling + eBPF tracepoints) and off, in interleaved rounds of
// random order, same pinning. It prints the median rate of each and the
// ratio (target: probes on ≥ 0.95× probes off).
//
//	go run ./bench/overhead -rounds 10 -duration 3s
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/probe"
	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/stats"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
	"github.com/latlab/latlab/internal/workload"
)

func main() {
	rounds := flag.Int("rounds", 10, "interleaved rounds")
	dur := flag.Duration("duration", 3*time.Second, "measured time per run")
	flag.Parse()
	res, err := measure(*rounds, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("tcp_rr over the lab's host path (veth wire), %d interleaved rounds of %v, eBPF tier %s\n", *rounds, *dur, res.tier)
	fmt.Printf("  probes off: median %.0f txn/s\n", stats.Median(res.off))
	fmt.Printf("  probes on:  median %.0f txn/s\n", stats.Median(res.on))
	var ratios []float64
	for i := range res.on {
		ratios = append(ratios, res.on[i]/res.off[i])
	}
	fmt.Printf("  ratio on/off: %.3f (median of per-round ratios %.3f; target >= 0.95)\n", stats.Median(res.on)/stats.Median(res.off), stats.Median(ratios))
}

type result struct {
	on, off []float64
	tier    string
}

func measure(rounds int, dur time.Duration) (*result, error) {
	dir, err := os.MkdirTemp("", "latlab-overhead")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	prefix := topo.NewPrefix()
	j, err := journal.Create(dir, prefix, "bench overhead")
	if err != nil {
		return nil, err
	}
	lab, err := topo.Build(context.Background(), topo.Default(), topo.BuildOptions{Prefix: prefix, Modes: []string{"host"}, Journal: j})
	if err != nil {
		return nil, err
	}
	defer lab.Teardown()
	m := lab.Mode("host")
	srv, err := server.New(server.Config{Listen: ":7707", NetNS: topo.NetNSPath(m.ServerNS)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	eb, err := probe.LoadEBPF()
	res := &result{tier: "proc"}
	if err == nil {
		defer eb.Close()
		res.tier = eb.Tier()
	}
	run := func(probes bool) (float64, error) {
		cfg := workload.Config{Target: m.Mode.Target, Workload: wire.TCPRR, Duration: dur, Warmup: 300 * time.Millisecond,
			NetNS: topo.NetNSPath(m.ClientNS)}
		cfg.Defaults()
		var sched *probe.Scheduled
		if probes {
			s := &probe.Sampler{Registry: probe.DefaultRegistry(probe.Options{NetNS: cfg.NetNS}), EBPF: eb}
			cfg.Window = func(a, b time.Time) { sched = probe.Schedule(s, a, b) }
		}
		r, err := workload.Run(context.Background(), cfg)
		sched.Wait() // the sampling is the cost being measured; its figures are not needed
		if err != nil {
			return 0, err
		}
		return r.RatePerSec, nil
	}
	for i := 0; i < rounds; i++ {
		order := []bool{false, true}
		rand.Shuffle(2, func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, on := range order {
			v, err := run(on)
			if err != nil {
				return nil, err
			}
			if on {
				res.on = append(res.on, v)
			} else {
				res.off = append(res.off, v)
			}
		}
	}
	return res, nil
}
