package cli

import (
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/web"
)

// The dashboard `latlab ui` serves shows the store's alerts (open ones as
// firing, with their suspects) and detects change points.
func TestDashboardWiring(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	id, err := st.CreateRun(ctx, &store.Run{Kind: "watch", SpecName: "j", JobName: "j"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenAlert(ctx, &store.Alert{Job: "j", ConfigKey: "mode=host/workload=tcp_rr", Metric: "p99", RunID: id,
		LastRunID: id, Summary: "p99 +21% vs baseline", Suspects: []byte(`["kernel 6.1→6.6"]`)}); err != nil {
		t.Fatal(err)
	}
	o := dashboardOptions(st, nil, "", true, nil)
	h, err := web.New(o)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://127.0.0.1/alerts", nil)
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"21% vs baseline", "kernel 6.1→6.6", "firing", `href="/history?key=mode%3dhost%2fworkload%3dtcp_rr"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/alerts lacks %q (status %d)\n%s", want, rec.Code, body)
		}
	}
	series := []float64{10, 10.2, 9.9, 10.1, 10, 9.8, 10.1, 10, 13, 13.1, 12.9, 13.2, 13, 12.8, 13.1, 13}
	if cp := o.ChangePoints(series); len(cp) != 1 || cp[0] != 8 {
		t.Errorf("change points %v, want [8]", cp)
	}
}
