package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/web"
	"github.com/latlab/latlab/internal/web/webtest"
)

var (
	bigOnce sync.Once
	bigDB   string
	bigErr  error
)

// bigStore is a database of 10,000 runs (the newest 100 with trials and
// histograms), made once per test binary.
func bigStore(b *testing.B) *store.Store {
	bigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "latlab-web-bench-")
		if err != nil {
			bigErr = err
			return
		}
		bigDB = filepath.Join(dir, "big.db")
		st, err := store.Open(bigDB)
		if err != nil {
			bigErr = err
			return
		}
		defer st.Close()
		ctx := context.Background()
		t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		const n, withTrials = 10_000, 100
		for i := 0; i < n-withTrials; i++ {
			r := &store.Run{Kind: "watch", JobName: "nightly", SpecName: "lab", Started: t0.Add(time.Duration(i) * time.Minute),
				Finished: t0.Add(time.Duration(i)*time.Minute + 30*time.Second), Status: store.StatusComplete}
			if _, err := st.CreateRun(ctx, r); err != nil {
				bigErr = err
				return
			}
		}
		for i := 0; i < withTrials; i++ {
			webtest.Record(b, st, webtest.Run{Started: t0.Add(time.Duration(n+i) * time.Minute), Kind: "watch", Job: "nightly",
				Seed: uint64(i), Samples: 200, Trials: 3})
		}
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	st, err := store.Open(bigDB)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigDB != "" {
		os.RemoveAll(filepath.Dir(bigDB))
	}
	os.Exit(code)
}

func benchPage(b *testing.B, path string) {
	st := bigStore(b)
	s, err := web.New(web.Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, path, nil)
	// Warm: the first view of a run summarises it.
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
	}
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
	if per := b.Elapsed() / time.Duration(b.N); per > 200*time.Millisecond {
		b.Errorf("%s takes %v per page, budget 200ms", path, per)
	}
}

// BenchmarkRunsPage renders the first and a deep page of the runs list
// over 10,000 runs.
func BenchmarkRunsPage(b *testing.B) {
	b.Run("first", func(b *testing.B) { benchPage(b, "/") })
	b.Run("page20", func(b *testing.B) { benchPage(b, "/?page=20") })
}

func BenchmarkRunPage(b *testing.B) { benchPage(b, "/runs/10000") }

func BenchmarkMetrics(b *testing.B) { benchPage(b, "/metrics") }

func BenchmarkHistoryPage(b *testing.B) {
	benchPage(b, "/history?key=mode%3Dveth-routed%2Fworkload%3Dtcp_rr%2Fsize%3D64%2Foffload%3Ddefault%2Fplacement%3Dauto")
}
