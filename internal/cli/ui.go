package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/web"
)

// DefaultUIListen is where `latlab ui` listens unless told otherwise:
// loopback only.
const DefaultUIListen = "127.0.0.1:7708"

func newUICmd(e *env) *cobra.Command {
	var (
		listen string
		token  string
		db     *string
	)
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the dashboard: runs, charts, history, alerts and /metrics",
		Long: `UI serves a read-only web dashboard over the database (--db): the runs, each
run's tables with confidence-interval whiskers and latency percentile plots
from the merged histograms, each configuration's history with change points
and their suspects, alerts, the environment diff of two runs, and /metrics
for Prometheus (docs/dashboard.md; Grafana: docs/grafana-latlab.json).

Everything is served from the binary (no CDN, no JavaScript). It listens on
127.0.0.1 only unless --listen says otherwise; with --token (or
LATLAB_UI_TOKEN) every request needs "Authorization: Bearer TOKEN" (a browser
can open any page once with ?token=TOKEN). Only GET and HEAD are accepted.
The database must exist: ui never creates one.`,
		Example: `  latlab ui
  latlab ui --db /var/lib/latlab/latlab.db --listen 0.0.0.0:7708 --token "$(openssl rand -hex 16)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if token == "" {
				token = os.Getenv("LATLAB_UI_TOKEN")
			}
			ctx := cmd.Context()
			st, err := openStoreExisting(ctx, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			return serveDashboard(ctx, e, st, nil, listen, token)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", DefaultUIListen, "address to listen on (host:port; port 0 picks one)")
	cmd.Flags().StringVar(&token, "token", "", "require this bearer token (default $LATLAB_UI_TOKEN)")
	db = addDBFlag(cmd)
	cmd.RegisterFlagCompletionFunc("listen", fixedCompletion(DefaultUIListen, "127.0.0.1:0"))
	return cmd
}

func isLoopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// serveUntilDone serves h on ln until ctx ends, then shuts down.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newReportCmd(e *env) *cobra.Command {
	var (
		htmlOut string
		db      *string
	)
	cmd := &cobra.Command{
		Use:   "report [RUN] --html FILE",
		Short: "Write a run's dashboard page as one self-contained HTML file",
		Long: `Report writes run RUN (default: the latest) as a single HTML file with the
dashboard's tables and charts: inline CSS and SVG, nothing loaded from
anywhere, so it can be mailed or attached to a ticket. FILE "-" is stdout.
It only reads the database (--db).`,
		Example: `  latlab report --html lab.html
  latlab report 42 --html run42.html`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if htmlOut == "" {
				return usagef("report needs --html FILE (the only output so far)")
			}
			ctx := cmd.Context()
			st, err := openStoreExisting(ctx, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			run, err := resolveRun(ctx, st, argOr(args, 0))
			if err != nil {
				return err
			}
			if htmlOut == "-" {
				return web.WriteRunReport(ctx, e.stdout, st, run.ID)
			}
			f, err := os.CreateTemp(filepath.Dir(htmlOut), ".latlab-report-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			if err := web.WriteRunReport(ctx, f, st, run.ID); err != nil {
				f.Close()
				return err
			}
			if err := f.Chmod(0o644); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Rename(f.Name(), htmlOut); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "latlab report: run %d written to %s\n", run.ID, htmlOut)
			return nil
		},
	}
	cmd.Flags().StringVar(&htmlOut, "html", "", "write the run as a self-contained HTML page to FILE (- for stdout)")
	cmd.MarkFlagFilename("html", "html")
	db = addDBFlag(cmd)
	cmd.ValidArgsFunction = runIDCompletion(db, 1)
	return cmd
}
