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
// are in loc (nil: local time).
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
		if d < time.Minute {
			return nil, fmt.Errorf("@every %v: at least 1m", d)
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
	return c, nil
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
			step = n
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
		if a < lo || b > hi {
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

// Next finds the next matching minute by skipping whole months, days and
// hours that cannot match. Within five years there always is one for a
// valid spec, except impossible dates (Feb 30): then the zero time.
func (c *cronSpec) Next(t time.Time) time.Time {
	t = t.In(c.loc).Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if c.month&(1<<int(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, c.loc)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, c.loc)
			continue
		}
		if c.hour&(1<<t.Hour()) == 0 {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, c.loc)
			continue
		}
		if c.min&(1<<t.Minute()) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}
