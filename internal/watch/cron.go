package watch

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule says when a job is next due.
type Schedule interface {
	// Next returns the first due time strictly after t.
	Next(t time.Time) time.Time
}

// every is "@every D": due at multiples of D (time.Truncate: for
// divisors of a day, whole UTC minutes and hours), so a restarted watcher
// keeps the same slots.
type every time.Duration

func (e every) Next(t time.Time) time.Time {
	d := time.Duration(e)
	return t.Truncate(d).Add(d)
}

// cronSpec is a 5-field cron expression: minute hour day-of-month month
// day-of-week, each a set of allowed values.
type cronSpec struct {
	min, hour, dom, month, dow uint64 // bit i set: value i allowed
	domStar, dowStar           bool
	loc                        *time.Location
}

// ParseSchedule parses "@every DURATION" (at least 1m), "@hourly",
// "@daily" (or "@midnight"), "@weekly", "@monthly", or a 5-field cron
// expression "MIN HOUR DOM MON DOW" with *, lists (1,5), ranges (1-5) and
// steps (*/15, 0-30/10); day of week 0-7 (0 and 7 are Sunday), month and
// day names are not accepted. As in Vixie cron, when both day of month
// and day of week are restricted, either matching suffices. Cron times
// are in loc (nil: local time). A schedule that can never fire ("0 0 31 2
// *": February has no 31st) is refused, as is "@every" beyond MaxEvery.
func ParseSchedule(s string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	s = strings.TrimSpace(s)
	switch s {
	case "@hourly":
		s = "0 * * * *"
	case "@daily", "@midnight":
		s = "0 0 * * *"
	case "@weekly":
		s = "0 0 * * 0"
	case "@monthly":
		s = "0 0 1 * *"
	}
	if rest, ok := strings.CutPrefix(s, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("@every: %v", err)
		}
		if d < time.Minute || d > MaxEvery {
			return nil, fmt.Errorf("@every %v: outside 1m..%v", d, MaxEvery)
		}
		return every(d), nil
	}
	if strings.HasPrefix(s, "@") {
		return nil, fmt.Errorf("%q: unknown (allowed: @every DURATION, @hourly, @daily, @weekly, @monthly, or MIN HOUR DOM MON DOW)", s)
	}
	f := strings.Fields(s)
	if len(f) != 5 {
		return nil, fmt.Errorf("%q: want 5 fields MIN HOUR DOM MON DOW, got %d", s, len(f))
	}
	c := &cronSpec{loc: loc, domStar: f[2] == "*", dowStar: f[4] == "*"}
	var err error
	for _, p := range []struct {
		name   string
		field  string
		lo, hi int
		out    *uint64
	}{
		{"minute", f[0], 0, 59, &c.min}, {"hour", f[1], 0, 23, &c.hour}, {"day of month", f[2], 1, 31, &c.dom},
		{"month", f[3], 1, 12, &c.month}, {"day of week", f[4], 0, 7, &c.dow},
	} {
		if *p.out, err = cronField(p.field, p.lo, p.hi); err != nil {
			return nil, fmt.Errorf("%q: %s: %v", s, p.name, err)
		}
	}
	if c.dow&(1<<7) != 0 {
		c.dow |= 1 // 7 is Sunday too
	}
	if err := c.possible(); err != nil {
		return nil, fmt.Errorf("%q: never fires: %v", s, err)
	}
	return c, nil
}

// MaxEvery bounds "@every D": a schedule that fires less than yearly is
// a typo.
const MaxEvery = 366 * 24 * time.Hour

// maxDays is the most days month m (1..12) can have; February's 29th
// comes at least every 8 years (2096, then 2104).
func maxDays(m int) int {
	switch m {
	case 2:
		return 29
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// possible reports whether the spec ever fires. The fields themselves are
// never empty, so only the date can be impossible: with day of week "*",
// some allowed month must have an allowed day of month (Feb 30, Apr 31
// never come). When day of week is restricted, every month has every
// weekday, so the spec fires.
func (c *cronSpec) possible() error {
	if !c.dowStar {
		return nil
	}
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= maxDays(m); d++ {
			if c.dom&(1<<d) != 0 {
				return nil
			}
		}
	}
	return fmt.Errorf("no allowed month has any of the allowed days of month (February has at most 29 days; April, June, September and November 30)")
}

func cronField(s string, lo, hi int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(s, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("bad step %q", stepS)
			}
			step = min(n, hi-lo+1) // a larger step is the same; a huge one would overflow v below
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err1, err2 error
			a, err1 = strconv.Atoi(x)
			b, err2 = strconv.Atoi(y)
			if err1 != nil || err2 != nil || a > b {
				return 0, fmt.Errorf("bad range %q", rng)
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				return 0, fmt.Errorf("bad value %q", rng)
			}
			a, b = n, n
			if hasStep {
				b = hi // "5/15" means 5-hi/15
			}
		}
		if a < lo || b > hi || a > b { // a > b: "100/1" starts past hi
			return 0, fmt.Errorf("%q outside %d-%d", part, lo, hi)
		}
		for v := a; v <= b; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func (c *cronSpec) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	if c.domStar || c.dowStar {
		return dom && dow
	}
	return dom || dow
}

// nextHorizon bounds Next's search: the rarest possible schedule (Feb 29)
// fires at least every 8 years.
const nextHorizon = 9

// maxNextSteps bounds Next's loop whatever the time zone does: each step
// skips a month, a day, an hour or a minute, and within nextHorizon years
// that is at most ~108 + 3,300 + 79,000 + a minute per hour stepped.
const maxNextSteps = 1 << 22

// Next finds the next matching minute by skipping whole months, days and
// hours that cannot match. A spec ParseSchedule accepted always fires
// within nextHorizon years; past that (never, for an accepted spec) Next
// returns the zero time. A skip that a time zone change would turn
// backwards (time.Date normalises a wall time in a DST gap to before it)
// steps one minute instead, so the search always moves forward.
func (c *cronSpec) Next(t time.Time) time.Time {
	t = t.In(c.loc).Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(nextHorizon, 0, 0)
	advance := func(next time.Time) {
		if next.After(t) {
			t = next
		} else {
			t = t.Add(time.Minute)
		}
	}
	for range maxNextSteps {
		if !t.Before(limit) {
			break
		}
		switch {
		case c.month&(1<<int(t.Month())) == 0:
			advance(time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, c.loc))
		case !c.dayMatches(t):
			advance(time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, c.loc))
		case c.hour&(1<<t.Hour()) == 0:
			advance(time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, c.loc))
		case c.min&(1<<t.Minute()) == 0:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}
