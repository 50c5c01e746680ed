package web

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
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

func TestChartLayout(t *testing.T) {
	long := "mode=veth-routed/workload=tcp_rr/size=64/offload=default/placement=auto: p99 per run (median over trials, 95% CI)"
	for _, c := range []struct {
		name                       string
		chart                      Chart
		w, h, bottom, legendH, top int
		titleLines                 int
		pw, ph                     float64
	}{
		{"defaults", Chart{}, 640, 260, padBottom, 0, padTop, 0, 560, 260 - padTop - padBottom},
		{"size", Chart{Width: 300, Height: 200, Title: "t"}, 300, 200, padBottom, 0, padTop, 1, 220, 200 - padTop - padBottom},
		{"rotated x labels", Chart{XRotate: true}, 640, 260, 78, 0, padTop, 0, 560, 260 - padTop - 78},
		{"one series: no legend", Chart{Series: make([]Series, 1)}, 640, 260, padBottom, 0, padTop, 0, 560, 260 - padTop - padBottom},
		{"legend row", Chart{Series: make([]Series, 4)}, 640, 260, padBottom, 16, padTop, 0, 560, 260 - padTop - padBottom - 16},
		{"two legend rows", Chart{Series: make([]Series, 5)}, 640, 260, padBottom, 32, padTop, 0, 560, 260 - padTop - padBottom - 32},
		{"wrapped title", Chart{Title: long}, 640, 260, padBottom, 0, padTop + titleLineH, 2, 560, 260 - padTop - titleLineH - padBottom},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := c.chart.layout()
			if l.w != c.w || l.h != c.h || l.bottom != c.bottom || l.legendH != c.legendH || l.topI != c.top || l.top != float64(c.top) ||
				len(l.titleLines) != c.titleLines || l.pw != c.pw || l.ph != c.ph {
				t.Errorf("layout %+v, want %d×%d bottom %d legend %d top %d, %d title lines, plot %g×%g",
					l, c.w, c.h, c.bottom, c.legendH, c.top, c.titleLines, c.pw, c.ph)
			}
		})
	}
}

func TestChartDataRange(t *testing.T) {
	inf := math.Inf(1)
	pts := func(ps ...Point) []Series { return []Series{{Points: ps}} }
	for _, c := range []struct {
		name                   string
		chart                  Chart
		xmin, xmax, ymin, ymax float64
	}{
		{"empty", Chart{}, inf, -inf, inf, -inf},
		{"points", Chart{Series: pts(Point{X: 1, Y: 5}, Point{X: 3, Y: 2})}, 1, 3, 2, 5},
		{"whiskers", Chart{Series: pts(Point{X: 1, Y: 5, Lo: 4, Hi: 9, HasCI: true})}, 1, 1, 4, 9},
		{"whiskers only with HasCI", Chart{Series: pts(Point{X: 1, Y: 5, Lo: 4, Hi: 9})}, 1, 1, 5, 5},
		{"x ticks", Chart{XTicks: []Tick{{X: -2}, {X: 7}}, Series: pts(Point{X: 1, Y: 5})}, -2, 7, 5, 5},
		{"reference line", Chart{HasYRef: true, YRef: 1, Series: pts(Point{X: 1, Y: 5})}, 1, 1, 1, 5},
		{"zero", Chart{YZero: true, Series: pts(Point{X: 1, Y: 5})}, 1, 1, 0, 5},
		{"zero not on a log axis", Chart{YZero: true, YLog: true, Series: pts(Point{X: 1, Y: 5})}, 1, 1, 5, 5},
		{"log axis drops non-positive", Chart{YLog: true, Series: pts(Point{X: 1, Y: 0}, Point{X: 2, Y: -1}, Point{X: 3, Y: 8})}, 1, 3, 8, 8},
		{"NaN and Inf dropped from y", Chart{Series: pts(Point{X: 1, Y: math.NaN()}, Point{X: 2, Y: inf}, Point{X: 3, Y: 4})}, 1, 3, 4, 4},
		{"x only", Chart{Series: pts(Point{X: 1, Y: math.NaN()})}, 1, 1, inf, -inf},
	} {
		t.Run(c.name, func(t *testing.T) {
			xmin, xmax, ymin, ymax := c.chart.dataRange()
			if xmin != c.xmin || xmax != c.xmax || ymin != c.ymin || ymax != c.ymax {
				t.Errorf("range x [%g, %g] y [%g, %g], want x [%g, %g] y [%g, %g]", xmin, xmax, ymin, ymax, c.xmin, c.xmax, c.ymin, c.ymax)
			}
		})
	}
}

func TestChartScale(t *testing.T) {
	pts := func(ps ...Point) []Series { return []Series{{Points: ps}} }
	for _, c := range []struct {
		name       string
		chart      Chart
		ok         bool
		xmin, xmax float64
		yticks     []float64
	}{
		{"no data", Chart{}, false, 0, 0, nil},
		{"no y data", Chart{Series: pts(Point{X: 1, Y: math.NaN()})}, false, 0, 0, nil},
		{"nice ticks", Chart{Series: pts(Point{X: 0, Y: 3}, Point{X: 100, Y: 27})}, true, -3, 103, []float64{0, 5, 10, 15, 20, 25, 30}},
		{"one x widens by 1", Chart{Series: pts(Point{X: 5, Y: 1}, Point{X: 5, Y: 2})}, true, 4 - 0.06, 6 + 0.06, []float64{1, 1.2, 1.4, 1.6, 1.8, 2}},
		{"flat y widens by 10%", Chart{Series: pts(Point{X: 0, Y: 10}, Point{X: 1, Y: 10})}, true, -0.03, 1.03, []float64{9, 9.5, 10, 10.5, 11}},
		{"flat zero widens by 1", Chart{Series: pts(Point{X: 0, Y: 0}, Point{X: 1, Y: 0})}, true, -0.03, 1.03, []float64{-1, -0.5, 0, 0.5, 1}},
		{"log decades", Chart{YLog: true, Series: pts(Point{X: 0, Y: 30}, Point{X: 1, Y: 2000})}, true, -0.03, 1.03, []float64{10, 100, 1000, 10000}},
		{"log within a decade", Chart{YLog: true, Series: pts(Point{X: 0, Y: 100}, Point{X: 1, Y: 100})}, true, -0.03, 1.03, []float64{100, 1000}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc, ok := c.chart.scale(c.chart.layout())
			if ok != c.ok {
				t.Fatalf("ok %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if math.Abs(sc.xmin-c.xmin) > 1e-9 || math.Abs(sc.xmax-c.xmax) > 1e-9 {
				t.Errorf("x [%g, %g], want [%g, %g]", sc.xmin, sc.xmax, c.xmin, c.xmax)
			}
			if len(sc.yticks) != len(c.yticks) {
				t.Fatalf("y ticks %v, want %v", sc.yticks, c.yticks)
			}
			for i := range c.yticks {
				if math.Abs(sc.yticks[i]-c.yticks[i]) > 1e-9 {
					t.Fatalf("y ticks %v, want %v", sc.yticks, c.yticks)
				}
			}
			if sc.ymin != sc.yticks[0] || math.Abs(sc.ymax-sc.yticks[len(sc.yticks)-1]) > 1e-9 {
				t.Errorf("y range [%g, %g] is not the outer ticks %v", sc.ymin, sc.ymax, sc.yticks)
			}
			// The plot's corners.
			l := c.chart.layout()
			if x := sc.X(sc.xmin); x != padLeft {
				t.Errorf("X(xmin) = %g, want %d", x, padLeft)
			}
			if x := sc.X(sc.xmax); math.Abs(x-(padLeft+l.pw)) > 1e-9 {
				t.Errorf("X(xmax) = %g, want %g", x, padLeft+l.pw)
			}
			if y := sc.Y(sc.ymin); math.Abs(y-(l.top+l.ph)) > 1e-9 {
				t.Errorf("Y(ymin) = %g, want %g", y, l.top+l.ph)
			}
			if y := sc.Y(sc.ymax); math.Abs(y-l.top) > 1e-9 {
				t.Errorf("Y(ymax) = %g, want %g", y, l.top)
			}
			if c.chart.YLog && sc.clampY(-5) != sc.Y(sc.ymin) {
				t.Errorf("clampY(-5) = %g, want the bottom %g", sc.clampY(-5), sc.Y(sc.ymin))
			}
		})
	}
}

func TestChartXTicks(t *testing.T) {
	pts := func(ps ...Point) []Series { return []Series{{Points: ps}} }
	for _, c := range []struct {
		name   string
		chart  Chart
		labels string
	}{
		{"given", Chart{XTicks: []Tick{{1, "a"}, {2, "b"}}, Series: pts(Point{X: 1, Y: 1})}, "a b"},
		{"automatic", Chart{Series: pts(Point{X: 0, Y: 1}, Point{X: 30, Y: 1})}, "0 5 10 15 20 25 30"},
		{"automatic within the padded range", Chart{Series: pts(Point{X: 1, Y: 1}, Point{X: 29, Y: 1})}, "5 10 15 20 25"},
		{"compact labels", Chart{Series: pts(Point{X: 0, Y: 1}, Point{X: 3e6, Y: 1})}, "0 500k 1M 1.5M 2M 2.5M 3M"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc, _ := c.chart.scale(c.chart.layout())
			var got []string
			for _, tk := range c.chart.xTicks(sc) {
				got = append(got, tk.Label)
			}
			if s := strings.Join(got, " "); s != c.labels {
				t.Errorf("x ticks %q, want %q", s, c.labels)
			}
		})
	}
}

// render runs one writer of a chart on its own layout and scale.
func render(c Chart, write func(*Chart, *strings.Builder, chartLayout, chartScale)) string {
	l := c.layout()
	sc, _ := c.scale(l)
	var b strings.Builder
	write(&c, &b, l, sc)
	return b.String()
}

func TestChartWriteAxes(t *testing.T) {
	charts := goldenCharts()
	for _, c := range []struct {
		name  string
		chart Chart
		count map[string]int // substring → occurrences
		has   []string
	}{
		{"rate: rotated category labels", charts["rate"],
			map[string]int{`class="grid"`: 6, `class="yt"`: 6, `class="tick"`: 5, `class="xt r"`: 5, `class="axis"`: 2, `class="yl"`: 1, `class="xl"`: 0, `class="ref"`: 0},
			[]string{`>veth-routed</text>`, `>trans/s</text>`}},
		{"ratio: reference line", charts["ratio"], map[string]int{`class="ref"`: 1}, nil},
		{"latency: log decades, ns format", charts["latency"], map[string]int{`class="grid"`: 3, `class="xt"`: 5, `class="xl"`: 1},
			[]string{`>10µs</text>`, `>1ms</text>`, `>p99.9</text>`}},
		{"dense ticks: every tick, every 3rd label", charts["many-ticks"], map[string]int{`class="tick"`: 120, `class="xt"`: 40}, nil},
		{"escaped labels", charts["auto-xticks"], nil, []string{`>&lt;y&gt;</text>`, `>&lt;x&gt;</text>`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := render(c.chart, func(ch *Chart, b *strings.Builder, l chartLayout, sc chartScale) { ch.writeAxes(b, l, sc) })
			for s, n := range c.count {
				if k := strings.Count(got, s); k != n {
					t.Errorf("%d × %s, want %d", k, s, n)
				}
			}
			for _, s := range c.has {
				if !strings.Contains(got, s) {
					t.Errorf("no %s in %s", s, got)
				}
			}
		})
	}
}

func TestChartWriteSeries(t *testing.T) {
	charts := goldenCharts()
	for _, c := range []struct {
		name                            string
		chart                           Chart
		groups, lines, whiskers, points int
		flags                           int
	}{
		{"dots with whiskers", charts["rate"], 1, 0, 5, 5, 0},
		{"lines without dots", charts["latency"], 5, 5, 0, 0, 0},
		{"line, dots, a flag", charts["history"], 1, 1, 30, 30, 1},
		// As today: a line needs two points, and a plain line draws no dots.
		{"a line of one point draws nothing", Chart{Series: []Series{{Line: true, Points: []Point{{X: 1, Y: 1}}}}}, 1, 0, 0, 0, 0},
		{"a dotted line of one point is a dot", Chart{Series: []Series{{Line: true, Dots: true, Points: []Point{{X: 1, Y: 1}}}}}, 1, 0, 0, 1, 0},
		{"log axis clamps a whisker", charts["log-flat"], 1, 1, 1, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := render(c.chart, func(ch *Chart, b *strings.Builder, _ chartLayout, sc chartScale) { ch.writeSeries(b, sc) })
			for _, w := range []struct {
				s string
				n int
			}{{`<g class="series"`, c.groups}, {`<polyline`, c.lines}, {`class="whisker"`, c.whiskers}, {`<circle`, c.points}, {`class="pt flag"`, c.flags}} {
				if k := strings.Count(got, w.s); k != w.n {
					t.Errorf("%d × %s, want %d", k, w.s, w.n)
				}
			}
			if !strings.Contains(got, `stroke="`+SeriesColor(0)+`"`) {
				t.Errorf("first series not in %s", SeriesColor(0))
			}
		})
	}
}

func TestChartWriteTitleMarkersLegend(t *testing.T) {
	charts := goldenCharts()
	for _, c := range []struct {
		name                    string
		chart                   Chart
		tspans, markers, legend int
	}{
		{"untitled", charts["untitled"], 0, 0, 0},
		{"wrapped title and a marker", charts["history"], 2, 1, 0},
		{"legend of five", charts["latency"], 1, 0, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := render(c.chart, func(ch *Chart, b *strings.Builder, l chartLayout, sc chartScale) {
				ch.writeTitle(b, l)
				ch.writeMarkers(b, l, sc)
				ch.writeLegend(b, l)
			})
			for _, w := range []struct {
				s string
				n int
			}{{`<tspan`, c.tspans}, {`class="marker"`, c.markers}, {`class="legend"`, c.legend}} {
				if k := strings.Count(got, w.s); k != w.n {
					t.Errorf("%d × %s, want %d in %s", k, w.s, w.n, got)
				}
			}
		})
	}
}
