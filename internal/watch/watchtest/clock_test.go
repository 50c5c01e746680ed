package watchtest_test

import (
	"testing"
	"time"

	"github.com/latlab/latlab/internal/watch"
	"github.com/latlab/latlab/internal/watch/watchtest"
)

var _ watch.Clock = (*watchtest.FakeClock)(nil)

func TestFakeClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		after []time.Duration
		move  func(*watchtest.FakeClock)
		now   time.Time
		fired []bool // per After call
		left  []time.Time
	}{
		{"nothing due", []time.Duration{time.Minute}, func(c *watchtest.FakeClock) { c.Advance(time.Second) },
			t0.Add(time.Second), []bool{false}, []time.Time{t0.Add(time.Minute)}},
		{"zero fires at once", []time.Duration{0, -time.Second}, func(*watchtest.FakeClock) {}, t0, []bool{true, true}, nil},
		{"advance fires the due ones", []time.Duration{2 * time.Minute, time.Minute, 3 * time.Minute}, func(c *watchtest.FakeClock) { c.Advance(2 * time.Minute) },
			t0.Add(2 * time.Minute), []bool{true, true, false}, []time.Time{t0.Add(3 * time.Minute)}},
		{"set never goes back", []time.Duration{time.Minute}, func(c *watchtest.FakeClock) { c.Set(t0.Add(-time.Hour)) },
			t0, []bool{false}, []time.Time{t0.Add(time.Minute)}},
		{"set forward", []time.Duration{time.Minute, time.Hour}, func(c *watchtest.FakeClock) { c.Set(t0.Add(time.Minute)) },
			t0.Add(time.Minute), []bool{true, false}, []time.Time{t0.Add(time.Hour)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := watchtest.NewFakeClock(t0)
			var chs []<-chan time.Time
			for _, d := range c.after {
				chs = append(chs, clk.After(d))
			}
			c.move(clk)
			if got := clk.Now(); !got.Equal(c.now) {
				t.Errorf("now %v, want %v", got, c.now)
			}
			for i, ch := range chs {
				select {
				case <-ch:
					if !c.fired[i] {
						t.Errorf("After(%v) fired", c.after[i])
					}
				default:
					if c.fired[i] {
						t.Errorf("After(%v) did not fire", c.after[i])
					}
				}
			}
			got := clk.Waiters()
			if len(got) != len(c.left) {
				t.Fatalf("waiters %v, want %v", got, c.left)
			}
			for i := range got {
				if !got[i].Equal(c.left[i]) {
					t.Errorf("waiters %v, want %v", got, c.left)
				}
			}
		})
	}
}

func TestFakeClockWaitForWaiter(t *testing.T) {
	clk := watchtest.NewFakeClock(time.Now())
	if clk.WaitForWaiter(10 * time.Millisecond) {
		t.Fatal("a waiter without After")
	}
	go clk.After(time.Hour)
	if !clk.WaitForWaiter(5 * time.Second) {
		t.Fatal("no waiter after After")
	}
}
