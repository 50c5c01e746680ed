package watch

import (
	"strings"
	"testing"
	"time"
)

// A cron expression that can never fire is refused when parsed; one that
// fires rarely is accepted and Next finds it.
func TestParseScheduleImpossible(t *testing.T) {
	for _, c := range []struct {
		spec string
		ok   bool
	}{
		{"0 0 31 2 *", false},            // Feb 31
		{"0 0 30 2 *", false},            // Feb 30
		{"0 0 30,31 2 *", false},         //
		{"0 0 31 4,6,9,11 *", false},     // 30-day months
		{"0 0 31 2,4 *", false},          //
		{"0 0 31 2 1", true},             // day of week restricted too: either matches (Mondays in February)
		{"0 0 29 2 *", true},             // leap days
		{"0 0 31 1-2 *", true},           // January has a 31st
		{"0 0 30-31 2,4,6,9,11 *", true}, // the 30th of a 30-day month
		{"@every 8784h", true},           // 366 days
		{"@every 8785h", false},
		{"@every 100000000h", false},
	} {
		_, err := ParseSchedule(c.spec, time.UTC)
		if c.ok && err != nil {
			t.Errorf("%q refused: %v", c.spec, err)
		}
		if !c.ok && err == nil {
			t.Errorf("%q accepted", c.spec)
		}
		if !c.ok && err != nil && strings.HasPrefix(c.spec, "0") && !strings.Contains(err.Error(), "never fires") {
			t.Errorf("%q: %v does not say it never fires", c.spec, err)
		}
	}
}

// Next always finds the rarest possible date, even across a century's
// skipped leap year (2100), and moves forward through DST changes.
func TestCronNextRareAndDST(t *testing.T) {
	s := mustSchedule(t, "0 0 29 2 *")
	if got := s.Next(time.Date(2096, 3, 1, 0, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2104, 2, 29, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Feb 29 after 2096: %v, want 2104-02-29", got)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	for _, c := range []struct {
		spec       string
		from, want time.Time
	}{
		// 2026-03-08 02:00 EST does not exist (clocks jump to 03:00 EDT).
		{"0 3 * * *", time.Date(2026, 3, 8, 1, 30, 0, 0, ny), time.Date(2026, 3, 8, 3, 0, 0, 0, ny)},
		{"30 2 * * *", time.Date(2026, 3, 8, 1, 30, 0, 0, ny), time.Date(2026, 3, 9, 2, 30, 0, 0, ny)},
		{"0 4 * * *", time.Date(2026, 3, 8, 0, 30, 0, 0, ny), time.Date(2026, 3, 8, 4, 0, 0, 0, ny)},
		// 2026-11-01 01:00-02:00 happens twice.
		{"0 3 * * *", time.Date(2026, 11, 1, 1, 30, 0, 0, ny).Add(time.Hour), time.Date(2026, 11, 1, 3, 0, 0, 0, ny)},
	} {
		sc, err := ParseSchedule(c.spec, ny)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan time.Time, 1)
		go func() { done <- sc.Next(c.from) }()
		select {
		case got := <-done:
			if !got.Equal(c.want) {
				t.Errorf("%q from %v: %v, want %v", c.spec, c.from, got, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q from %v: Next did not return", c.spec, c.from)
		}
	}
}
