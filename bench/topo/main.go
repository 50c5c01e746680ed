// Command topo times building and tearing down the default `latlab lab`
// topology with latlab's netlink builder against the same topology built
// by an iproute2/nft script (ip-default.sh), in interleaved rounds.
//
//	go run ./bench/topo -rounds 15
//
// It prints the median time of each and their ratio. Needs root.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/topo"
)

func main() {
	rounds := flag.Int("rounds", 15, "interleaved rounds")
	script := flag.String("script", "bench/topo/ip-default.sh", "the iproute2 script")
	flag.Parse()
	var lat, ipt []time.Duration
	for r := 0; r < *rounds; r++ {
		order := []int{0, 1}
		rand.Shuffle(2, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, o := range order {
			var d time.Duration
			var err error
			if o == 0 {
				d, _, err = latlabOnce(nil)
				lat = append(lat, d)
			} else {
				d, err = scriptOnce(*script, nil)
				ipt = append(ipt, d)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
	ml, mi := median(lat), median(ipt)
	fmt.Printf("default topology (8 modes, 10 namespaces), build + teardown, %d interleaved rounds\n", *rounds)
	fmt.Printf("  latlab (netlink):      median %v\n", ml.Round(10*time.Microsecond))
	fmt.Printf("  ip/nft script:         median %v\n", mi.Round(10*time.Microsecond))
	fmt.Printf("  ratio latlab/script:   %.3f (%.1fx faster)\n", float64(ml)/float64(mi), float64(mi)/float64(ml))
}

// latlabOnce builds and tears down the default topology; inspect, if set,
// runs between the two.
func latlabOnce(inspect func(*topo.Lab)) (time.Duration, *topo.Lab, error) {
	dir, err := os.MkdirTemp("", "latlab-bench-journal")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(dir)
	prefix := topo.NewPrefix()
	start := time.Now()
	j, err := journal.Create(dir, prefix, "bench")
	if err != nil {
		return 0, nil, err
	}
	lab, err := topo.Build(context.Background(), topo.Default(), topo.BuildOptions{Prefix: prefix, Journal: j})
	if err != nil {
		return 0, nil, err
	}
	if inspect != nil {
		t0 := time.Now()
		inspect(lab)
		start = start.Add(time.Since(t0))
	}
	err = lab.Teardown()
	return time.Since(start), lab, err
}

func scriptOnce(script string, inspect func(prefix string)) (time.Duration, error) {
	prefix := topo.NewPrefix()
	start := time.Now()
	out, err := exec.Command("bash", script, "up", prefix).CombinedOutput()
	if err != nil {
		exec.Command("bash", script, "down", prefix).Run()
		return 0, fmt.Errorf("%s up: %v\n%s", filepath.Base(script), err, out)
	}
	if inspect != nil {
		t0 := time.Now()
		inspect(prefix)
		start = start.Add(time.Since(t0))
	}
	if out, err := exec.Command("bash", script, "down", prefix).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s down: %v\n%s", filepath.Base(script), err, out)
	}
	return time.Since(start), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
