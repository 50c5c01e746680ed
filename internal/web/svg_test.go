package web

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenCharts are charts of every kind the dashboard draws (run view
// rate, ratio and latency charts; history charts with markers and flagged
// points) and the edge cases of the layout and scales.
func goldenCharts() map[string]Chart {
	ci := func(x, y, d float64) Point {
		return Point{X: x, Y: y, Lo: y - d, Hi: y + d, HasCI: true, Title: "point <" + compact(y) + ">"}
	}
	modes := []string{"host", "veth-routed", "bridge-nat", "macvlan", "ipvlan-l2"}
	var ticks []Tick
	var rate, ratio Series
	for i, m := range modes {
		ticks = append(ticks, Tick{float64(i), m})
		rate.Points = append(rate.Points, ci(float64(i), 40_000-float64(i)*3_000, 900))
		ratio.Points = append(ratio.Points, ci(float64(i), 1-float64(i)*0.07, 0.02))
	}
	rate.Name, ratio.Name = "tcp_rr", "tcp_rr"
	var lat []Series
	for i, m := range modes {
		s := Series{Name: m, Line: true}
		for _, q := range []float64{0, 50, 90, 99, 99.9} {
			s.Points = append(s.Points, Point{X: nines(q), Y: 20_000 * (1 + float64(i)/5) * (1 + nines(q)), Title: m})
		}
		lat = append(lat, s)
	}
	var hist Series
	hist.Name, hist.Dots, hist.Line = "p99", true, true
	for i := 1; i <= 30; i++ {
		y := 120_000.0
		if i > 20 {
			y = 150_000
		}
		p := ci(float64(i), y+float64(i%3)*1_000, 4_000)
		p.Flag = i == 21
		hist.Points = append(hist.Points, p)
	}
	var many []Tick
	for i := 0; i < 120; i++ {
		many = append(many, Tick{float64(i), compact(float64(i * 1000))})
	}
	return map[string]Chart{
		"rate": {Title: "tcp_rr size=64: rate (median, 95% CI)", YLabel: "trans/s", XRotate: true, YZero: true,
			XTicks: ticks, Series: []Series{rate}},
		"ratio": {Title: "tcp_rr size=64: ratio vs host (median, 95% CI)", YLabel: "ratio", XRotate: true,
			XTicks: ticks, HasYRef: true, YRef: 1, Series: []Series{ratio}},
		"latency": {Title: "tcp_rr: latency percentiles (merged histograms)", YLabel: "latency", XLabel: "percentile",
			YLog: true, XTicks: ninesTicks(3), YFormat: fmtNs, Series: lat},
		"history": {Title: "mode=veth-routed/workload=tcp_rr/size=64/offload=default/placement=auto: p99 per run (median over trials, 95% CI)",
			YLabel: "ns", XLabel: "run", YFormat: fmtNs, Series: []Series{hist},
			Markers: []Marker{{X: 20.5, Label: "shift", Title: "change point <run 21>"}}},
		"nodata":      {Title: "empty"},
		"untitled":    {Series: []Series{{Points: []Point{{X: 1, Y: 2}, {X: 2, Y: 3}}}}},
		"one-point":   {Title: "one", Width: 300, Height: 200, Series: []Series{{Name: "a", Points: []Point{{X: 5, Y: 7}}}}},
		"flat-zero":   {Title: "flat", Series: []Series{{Name: "z", Line: true, Points: []Point{{X: 1, Y: 0}, {X: 2, Y: 0}}}}},
		"log-flat":    {Title: "log", YLog: true, Series: []Series{{Name: "l", Line: true, Points: []Point{{X: 1, Y: 50}, {X: 2, Y: 0}, {X: 3, Y: 60, Lo: -1, Hi: 70, HasCI: true}}}}},
		"bad-values":  {Title: "nan", XLabel: "x", Series: []Series{{Name: "n", Points: []Point{{X: 1, Y: math.NaN()}, {X: 2, Y: math.Inf(1)}, {X: 3, Y: 4}, {X: 4, Y: -2}}}}},
		"many-ticks":  {Title: "dense", XTicks: many, XLabel: "thousands", Series: []Series{{Name: "d", Points: []Point{{X: 0, Y: 1}, {X: 119, Y: 2}}}}},
		"auto-xticks": {Title: "<escaped & \"quoted\">", YLabel: "<y>", XLabel: "<x>", Series: []Series{{Name: "<s>", Line: true, Points: []Point{{X: 0.5, Y: 1e6}, {X: 17, Y: 2.5e6}}}}},
	}
}

// The SVG of every golden chart is byte-identical to testdata/svg/NAME.golden
// (go test -run TestChartSVGGoldens -update rewrites them).
func TestChartSVGGoldens(t *testing.T) {
	for name, c := range goldenCharts() {
		t.Run(name, func(t *testing.T) {
			got := string(c.SVG())
			golden := filepath.Join("testdata", "svg", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n got: %s\nwant: %s", name, golden, got, want)
			}
		})
	}
}
