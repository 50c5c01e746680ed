package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Chart is a small server-rendered SVG chart: axes, ticks, lines, points
// with confidence whiskers, vertical markers and a horizontal reference
// line. No JavaScript; hovering a point shows its <title>.
type Chart struct {
	Title          string
	Width, Height  int    // default 640×260
	XLabel, YLabel string // axis titles
	// XTicks, when set, replace automatic x ticks (category names, run
	// ids, percentiles).
	XTicks []Tick
	// XRotate tilts the x tick labels (long category names).
	XRotate bool
	YLog    bool    // log10 y axis (values must be > 0)
	YZero   bool    // include 0 in the y range
	YRef    float64 // horizontal reference line (e.g. ratio 1) when HasYRef
	HasYRef bool
	Series  []Series
	Markers []Marker
	// YFormat formats y tick values (default: compact number).
	YFormat func(float64) string
}

// Tick is an axis tick at X with a label.
type Tick struct {
	X     float64
	Label string
}

// Series is one set of points, drawn as a line when Line is set, as dots
// otherwise; points with HasCI get a whisker from Lo to Hi.
type Series struct {
	Name   string
	Line   bool
	Dots   bool
	Points []Point
}

// Point is one value. Title is the hover text.
type Point struct {
	X, Y   float64
	Lo, Hi float64
	HasCI  bool
	Title  string
	// Flag highlights the point (a change point, a suspect run).
	Flag bool
}

// Marker is a vertical line at X with a short label (a change point).
type Marker struct {
	X     float64
	Label string
	Title string
}

// titleCharPx is a generous width of one character of a chart title
// (12px, semibold), and titleLineH the height of one title line.
const (
	titleCharPx = 7
	titleLineH  = 15
)

// wrapTitle breaks a title into lines of at most width characters: at
// spaces, and inside a longer word (a configuration key) after a '/' or,
// failing that, anywhere.
func wrapTitle(title string, width int) []string {
	if title == "" {
		return nil
	}
	width = max(width, 8)
	var lines []string
	line := ""
	add := func(word string) {
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	for _, word := range strings.Fields(title) {
		for len([]rune(word)) > width {
			r := []rune(word)
			cut := width
			for i := width - 1; i > 0; i-- {
				if r[i] == '/' {
					cut = i + 1
					break
				}
			}
			if line != "" {
				lines = append(lines, line)
				line = ""
			}
			lines = append(lines, string(r[:cut]))
			word = string(r[cut:])
		}
		if word != "" {
			add(word)
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// palette is colour-blind friendly (Okabe–Ito).
var palette = []string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"}

// SeriesColor is the colour of series i.
func SeriesColor(i int) string { return palette[i%len(palette)] }

const (
	padLeft   = 64
	padRight  = 16
	padTop    = 28
	padBottom = 40
)

// SVG renders the chart. Every piece of text is escaped.
func (c *Chart) SVG() template.HTML {
	l := c.layout()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, l.w, l.h, l.w, l.h)
	c.writeTitle(&b, l)
	sc, ok := c.scale(l)
	if !ok {
		fmt.Fprintf(&b, `<text class="nodata" x="%d" y="%d">no data</text></svg>`, l.w/2-25, l.h/2)
		return template.HTML(b.String())
	}
	c.writeAxes(&b, l, sc)
	c.writeMarkers(&b, l, sc)
	c.writeSeries(&b, sc)
	c.writeLegend(&b, l)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// chartLayout is where the parts of a chart go, in pixels: its size, the
// title's lines and the plot area (left edge padLeft).
type chartLayout struct {
	w, h       int
	bottom     int // room below the plot: x ticks and x label
	legendH    int
	titleLines []string
	topI       int     // top of the plot
	top        float64 // topI as a float
	pw, ph     float64 // plot width and height
}

// layout sizes the chart (default 640×260) and places the plot below the
// title (a title wider than the chart wraps onto more lines, which move
// the plot down) and above the x ticks and the legend.
func (c *Chart) layout() chartLayout {
	l := chartLayout{w: c.Width, h: c.Height, bottom: padBottom}
	if l.w <= 0 {
		l.w = 640
	}
	if l.h <= 0 {
		l.h = 260
	}
	if c.XRotate {
		l.bottom = 78
	}
	if len(c.Series) > 1 {
		l.legendH = 16 * ((len(c.Series) + 3) / 4)
	}
	l.titleLines = wrapTitle(c.Title, (l.w-padLeft-padRight)/titleCharPx)
	l.topI = padTop + titleLineH*max(0, len(l.titleLines)-1)
	l.top = float64(l.topI)
	l.pw, l.ph = float64(l.w-padLeft-padRight), float64(l.h-l.topI-l.bottom-l.legendH)
	return l
}

// writeTitle writes the chart's title: a <title> and its wrapped lines.
func (c *Chart) writeTitle(b *strings.Builder, l chartLayout) {
	if c.Title == "" {
		return
	}
	fmt.Fprintf(b, `<title>%s</title><text class="ct" x="%d" y="16">`, esc(c.Title), padLeft)
	for i, line := range l.titleLines {
		dy := 0
		if i > 0 {
			dy = titleLineH
		}
		fmt.Fprintf(b, `<tspan x="%d" dy="%d">%s</tspan>`, padLeft, dy, esc(line))
	}
	b.WriteString(`</text>`)
}

// dataRange is the extent of the chart's points (their whiskers too),
// x ticks, reference line and, with YZero, 0. Values a log axis cannot
// show, NaNs and infinities are left out of the y range; with nothing to
// show, xmin or ymin stays +Inf.
func (c *Chart) dataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	ymin, ymax = math.Inf(1), math.Inf(-1)
	addY := func(v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || (c.YLog && v <= 0) {
			return
		}
		ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
	}
	for _, s := range c.Series {
		for _, p := range s.Points {
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			addY(p.Y)
			if p.HasCI {
				addY(p.Lo)
				addY(p.Hi)
			}
		}
	}
	for _, t := range c.XTicks {
		xmin, xmax = math.Min(xmin, t.X), math.Max(xmax, t.X)
	}
	if c.HasYRef {
		addY(c.YRef)
	}
	if c.YZero && !c.YLog {
		addY(0)
	}
	return xmin, xmax, ymin, ymax
}

// chartScale maps data values to the plot area of a layout.
type chartScale struct {
	xmin, xmax float64 // widened by xpad on either side
	xpad       float64
	ymin, ymax float64 // rounded out to the first and last y tick
	yticks     []float64
	ylog       bool
	top        float64
	pw, ph     float64
}

// scale fits the axes to the data: y rounded out to nice ticks (decades
// on a log axis), x widened by 3% on either side. ok is false when there
// is nothing to draw.
func (c *Chart) scale(l chartLayout) (sc chartScale, ok bool) {
	xmin, xmax, ymin, ymax := c.dataRange()
	if math.IsInf(xmin, 1) || math.IsInf(ymin, 1) {
		return chartScale{}, false
	}
	if xmin == xmax {
		xmin, xmax = xmin-1, xmax+1
	}
	sc = chartScale{ylog: c.YLog, top: l.top, pw: l.pw, ph: l.ph}
	if c.YLog {
		lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
		if lo == hi {
			hi++
		}
		ymin, ymax = math.Pow(10, lo), math.Pow(10, hi)
		for e := lo; e <= hi; e++ {
			sc.yticks = append(sc.yticks, math.Pow(10, e))
		}
	} else {
		if ymin == ymax {
			d := math.Abs(ymin) * 0.1
			if d == 0 {
				d = 1
			}
			ymin, ymax = ymin-d, ymax+d
		}
		var step float64
		ymin, ymax, step = niceRange(ymin, ymax, 5)
		for v := ymin; v <= ymax+step/2; v += step {
			sc.yticks = append(sc.yticks, v)
		}
	}
	// Keep a little room left and right of the outermost points.
	sc.xpad = (xmax - xmin) * 0.03
	sc.xmin, sc.xmax = xmin-sc.xpad, xmax+sc.xpad
	sc.ymin, sc.ymax = ymin, ymax
	return sc, true
}

// X is the horizontal pixel of x value v.
func (sc chartScale) X(v float64) float64 { return padLeft + (v-sc.xmin)/(sc.xmax-sc.xmin)*sc.pw }

// Y is the vertical pixel of y value v.
func (sc chartScale) Y(v float64) float64 {
	fy := func(v float64) float64 { return v }
	if sc.ylog {
		fy = math.Log10
	}
	return sc.top + sc.ph - (fy(v)-fy(sc.ymin))/(fy(sc.ymax)-fy(sc.ymin))*sc.ph
}

// clampY is Y, with values a log axis cannot show put at its bottom.
func (sc chartScale) clampY(v float64) float64 {
	if sc.ylog && v <= 0 {
		v = sc.ymin
	}
	return sc.Y(v)
}

// xTicks are the chart's x ticks, or round ones within the data's range.
func (c *Chart) xTicks(sc chartScale) []Tick {
	if len(c.XTicks) > 0 {
		return c.XTicks
	}
	var xticks []Tick
	lo, hi, step := niceRange(sc.xmin+sc.xpad, sc.xmax-sc.xpad, 6)
	for v := lo; v <= hi+step/2; v += step {
		if v >= sc.xmin && v <= sc.xmax {
			xticks = append(xticks, Tick{v, compact(v)})
		}
	}
	return xticks
}

// writeAxes writes the grid and y ticks, the x ticks (labelling only every
// so many where they would crowd), both axes, their titles and the
// reference line.
func (c *Chart) writeAxes(b *strings.Builder, l chartLayout, sc chartScale) {
	yf := c.YFormat
	if yf == nil {
		yf = compact
	}
	for _, v := range sc.yticks {
		y := sc.Y(v)
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%.1f" y1="%.1f" y2="%.1f"/>`, padLeft, padLeft+l.pw, y, y)
		fmt.Fprintf(b, `<text class="yt" x="%d" y="%.1f">%s</text>`, padLeft-6, y+4, esc(yf(v)))
	}
	xticks := c.xTicks(sc)
	base := l.top + l.ph
	every := 1
	if n := len(xticks); n > 0 && l.pw/float64(n) < 14 {
		every = int(math.Ceil(14 * float64(n) / l.pw))
	}
	for i, t := range xticks {
		x := sc.X(t.X)
		fmt.Fprintf(b, `<line class="tick" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, x, x, base, base+4)
		if i%every != 0 {
			continue
		}
		if c.XRotate {
			fmt.Fprintf(b, `<text class="xt r" transform="translate(%.1f,%.1f) rotate(-35)">%s</text>`, x+3, base+12, esc(t.Label))
		} else {
			fmt.Fprintf(b, `<text class="xt" x="%.1f" y="%.1f">%s</text>`, x, base+16, esc(t.Label))
		}
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%.1f"/>`, padLeft, padLeft, l.topI, base)
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%.1f" y1="%.1f" y2="%.1f"/>`, padLeft, padLeft+l.pw, base, base)
	if c.YLabel != "" {
		fmt.Fprintf(b, `<text class="yl" transform="translate(12,%.1f) rotate(-90)">%s</text>`, l.top+l.ph/2, esc(c.YLabel))
	}
	if c.XLabel != "" {
		y := base + 32
		if c.XRotate {
			y = base + float64(l.bottom) - 4
		}
		fmt.Fprintf(b, `<text class="xl" x="%.1f" y="%.1f">%s</text>`, padLeft+l.pw/2, y, esc(c.XLabel))
	}
	if c.HasYRef {
		y := sc.Y(c.YRef)
		fmt.Fprintf(b, `<line class="ref" x1="%d" x2="%.1f" y1="%.1f" y2="%.1f"/>`, padLeft, padLeft+l.pw, y, y)
	}
}

// writeMarkers writes the vertical markers across the plot.
func (c *Chart) writeMarkers(b *strings.Builder, l chartLayout, sc chartScale) {
	base := l.top + l.ph
	for _, m := range c.Markers {
		x := sc.X(m.X)
		fmt.Fprintf(b, `<g class="marker"><title>%s</title><line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f"/><text x="%.1f" y="%d">%s</text></g>`,
			esc(m.Title), x, x, l.topI, base, x+3, l.topI+10, esc(m.Label))
	}
}

// writeSeries writes each series in its colour: its line, whiskers and
// points (flagged ones larger).
func (c *Chart) writeSeries(b *strings.Builder, sc chartScale) {
	for si, s := range c.Series {
		col := SeriesColor(si)
		fmt.Fprintf(b, `<g class="series" data-name="%s" stroke="%s" fill="%s">`, esc(s.Name), col, col)
		if s.Line && len(s.Points) > 1 {
			b.WriteString(`<polyline fill="none" points="`)
			for i, p := range s.Points {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(b, "%.1f,%.1f", sc.X(p.X), sc.clampY(p.Y))
			}
			b.WriteString(`"/>`)
		}
		for _, p := range s.Points {
			x, y := sc.X(p.X), sc.clampY(p.Y)
			if p.HasCI {
				lo, hi := sc.clampY(p.Lo), sc.clampY(p.Hi)
				fmt.Fprintf(b, `<path class="whisker" d="M%.1f %.1fV%.1fM%.1f %.1fh8M%.1f %.1fh8"/>`, x, lo, hi, x-4, lo, x-4, hi)
			}
			if s.Dots || p.HasCI || p.Flag || !s.Line {
				cls := "pt"
				r := 3.0
				if p.Flag {
					cls, r = "pt flag", 5
				}
				fmt.Fprintf(b, `<circle class="%s" cx="%.1f" cy="%.1f" r="%.0f">`, cls, x, y, r)
				if p.Title != "" {
					fmt.Fprintf(b, `<title>%s</title>`, esc(p.Title))
				}
				b.WriteString(`</circle>`)
			}
		}
		b.WriteString(`</g>`)
	}
}

// writeLegend writes the legend below the plot, four series a row, when
// there is more than one series.
func (c *Chart) writeLegend(b *strings.Builder, l chartLayout) {
	if len(c.Series) <= 1 {
		return
	}
	ly := float64(l.h - l.legendH + 4)
	for i, s := range c.Series {
		lx := float64(padLeft + (i%4)*int(l.pw/4))
		yy := ly + float64(i/4*16)
		fmt.Fprintf(b, `<g class="legend"><rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s</text></g>`,
			lx, yy, SeriesColor(i), lx+14, yy+9, esc(s.Name))
	}
}

func esc(s string) string { return html.EscapeString(s) }

// niceRange widens [lo, hi] to round numbers and returns a round step
// giving about n intervals.
func niceRange(lo, hi float64, n int) (float64, float64, float64) {
	span := hi - lo
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return lo, hi, 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Floor(lo/step) * step, math.Ceil(hi/step) * step, step
}

// compact formats a number shortly: 1.25k, 3.4M, 0.97.
func compact(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1e9:
		return trimFloat(v/1e9) + "G"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e4:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// fmtNs formats nanoseconds as a short duration.
func fmtNs(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1e9:
		return trimFloat(v/1e9) + "s"
	case a >= 1e6:
		return trimFloat(v/1e6) + "ms"
	case a >= 1e3:
		return trimFloat(v/1e3) + "µs"
	}
	return trimFloat(v) + "ns"
}

// nines maps a percentile (0 ≤ q < 100) to the "number of nines" scale
// latency percentile plots use: 50 → 0.30, 90 → 1, 99 → 2, 99.9 → 3.
func nines(q float64) float64 { return -math.Log10(1 - q/100) }

// ninesTicks are the percentile ticks of a nines axis up to max nines.
func ninesTicks(maxN float64) []Tick {
	var t []Tick
	for _, q := range []struct {
		q float64
		l string
	}{{0, "p0"}, {50, "p50"}, {90, "p90"}, {99, "p99"}, {99.9, "p99.9"}, {99.99, "p99.99"}, {99.999, "p99.999"}, {99.9999, "p99.9999"}} {
		if n := nines(q.q); n <= maxN+1e-9 {
			t = append(t, Tick{n, q.l})
		}
	}
	return t
}
