package cli

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/workload"
)

func newServeCmd(e *env) *cobra.Command {
	var (
		listen      string
		netns       string
		logLevel    string
		maxSessions int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve every workload on one TCP+UDP port",
		Long: fmt.Sprintf(`Serve answers latlab clients: tcp_rr, tcp_crr, udp_rr and tcp_stream all on
one port (TCP and UDP), IPv4 and IPv6. Each client run is a session; the
server pins its threads where the client asks (--server-cpu on the client),
and reports its own CPU time back at the end.
It also answers HTTP/1.1 on the same TCP port for the http workload: any
path gets a 200 with a 64-byte body; ?size=N sets the body size, ?delay=D
(a duration, at most 10s) delays the answer.

The default listen address is :%d (all addresses, IPv4 and IPv6).
Bad or slow clients are disconnected with a logged reason; the server keeps
serving the others. SIGINT or SIGTERM stops it cleanly.`, workload.DefaultPort),
		Example: `  latlab serve
  latlab serve --listen 127.0.0.1:7707
  latlab serve --listen [::1]:0 --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level %q: want debug, info, warn or error", logLevel)
			}
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return usagef("--listen %q: want ADDR:PORT, e.g. :7707 or 127.0.0.1:7707", listen)
			}
			ns, err := resolveNetNS(cmd.Context(), netns)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
			srv, err := workload.NewServer(workload.ServerConfig{
				Listen: listen, NetNS: ns, Logger: log, MaxSessions: maxSessions,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "latlab %s serving on %s (tcp+udp)\n", Version(), srv.Addr())
			start := time.Now()
			err = srv.Serve(cmd.Context())
			log.Info("stopped", "uptime", time.Since(start).Round(time.Millisecond))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", fmt.Sprintf(":%d", workload.DefaultPort), "TCP and UDP address to listen on (ADDR:PORT; port 0 picks one)")
	f.StringVar(&netns, "netns", "", "serve inside this network namespace: a name under /var/run/netns, a path (/proc/PID/ns/net), or a running Docker container (name or ID; $DOCKER_HOST)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.IntVar(&maxSessions, "max-sessions", 64, "concurrent client runs accepted")
	return cmd
}

// netnsPath turns a namespace name or path into a path.
func netnsPath(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if strings.ContainsRune(s, '/') {
		return s, nil
	}
	return "/var/run/netns/" + s, nil
}
