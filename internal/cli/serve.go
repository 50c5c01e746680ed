package cli

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/wire"
)

func newServeCmd(e *env) *cobra.Command {
	var (
		listen      string
		netns       string
		logLevel    string
		lim         server.Config
		maxMemoryMB int64
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

The default listen address is :%d (all addresses, IPv4 and IPv6), so
anyone who reaches the port is a client. Every resource a client can make
the server hold is bounded in total and per client address (an IPv6
client is its /64; one gets at most a quarter of the flows and buffers),
and refused with a clear status, never by running out. A session's flows
end with it (End, its control connection closing, its deadline):
  sessions       --max-sessions (64), --max-peer-sessions (16)
  flows          --max-flows (1024: each is an OS thread), --max-peer-flows (256)
  buffers        --max-buffer per buffer (4 MiB), --max-memory in all (256 MiB)
  session length --max-session-time (1h: warm-up + duration)
  HTTP           --max-http-conns (4096), --max-peer-http-conns (1024),
                 --http-idle-timeout (15s; 1s above 75%% of the cap),
                 --http-head-timeout (10s for a whole request head),
                 --http-request-timeout (30s for head, body, delay and response)
Connections silent for 200ms after connecting take one of 256 header-wait
slots per address (1024 in all) for up to 5s. udp_rr replies to an address
other than the one that opened the session are no larger than the request
(no amplification). Refusals are logged, rate-limited per reason. The
server's resident memory stays under the bound printed at start;
docs/security.md explains each limit. SIGINT or SIGTERM stops it cleanly.`, wire.DefaultPort),
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
			cfg := lim
			cfg.Listen, cfg.NetNS, cfg.Logger = listen, ns, log
			cfg.MaxMemory = maxMemoryMB << 20
			srv, err := server.New(cfg)
			if err != nil {
				return usagef("%v", err)
			}
			fmt.Fprintf(e.stdout, "latlab %s serving on %s (tcp+udp); resident memory bounded by %d MiB\n",
				Version(), srv.Addr(), server.RSSBound(cfg)>>20)
			start := time.Now()
			err = srv.Serve(cmd.Context())
			log.Info("stopped", "uptime", time.Since(start).Round(time.Millisecond))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", fmt.Sprintf(":%d", wire.DefaultPort), "TCP and UDP address to listen on (ADDR:PORT; port 0 picks one)")
	f.StringVar(&netns, "netns", "", "serve inside this network namespace: a name under /var/run/netns, a path (/proc/PID/ns/net), or a running Docker container (name or ID; $DOCKER_HOST)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.IntVar(&lim.MaxSessions, "max-sessions", server.DefaultMaxSessions, "concurrent client runs (sessions) accepted")
	f.IntVar(&lim.MaxPeerSessions, "max-peer-sessions", server.DefaultMaxPeerSessions, "concurrent sessions of one client address")
	f.IntVar(&lim.MaxFlows, "max-flows", server.DefaultMaxFlows, "data flows of all sessions (each an OS thread; at most 7952)")
	f.IntVar(&lim.MaxPeerFlows, "max-peer-flows", server.DefaultMaxPeerFlows, "data flows of one client address")
	f.IntVar(&lim.MaxBuffer, "max-buffer", server.DefaultMaxBuffer, "largest request, response or stream buffer (bytes) a session may ask for")
	f.Int64Var(&maxMemoryMB, "max-memory", server.DefaultMaxMemory>>20, "buffer memory of all sessions (MiB); one client address gets a quarter")
	f.DurationVar(&lim.MaxSessionTime, "max-session-time", server.DefaultMaxSessionTime, "longest warm-up + duration a session may ask for")
	f.IntVar(&lim.MaxHTTPConns, "max-http-conns", server.DefaultMaxHTTPConns, "open HTTP connections (beyond: 503)")
	f.IntVar(&lim.MaxPeerHTTPConns, "max-peer-http-conns", server.DefaultMaxPeerHTTPConns, "open HTTP connections of one client address")
	f.DurationVar(&lim.HTTPIdleTimeout, "http-idle-timeout", server.DefaultHTTPIdleTimeout, "close an idle HTTP keep-alive connection after this")
	f.DurationVar(&lim.HTTPHeadTimeout, "http-head-timeout", server.DefaultHTTPHeadTimeout, "longest time a request head may take to arrive (slowloris)")
	f.DurationVar(&lim.HTTPRequestTimeout, "http-request-timeout", server.DefaultHTTPRequestTimeout, "longest time one HTTP request may take, head to last response byte (delay included)")
	cmd.RegisterFlagCompletionFunc("netns", netnsCompletion)
	cmd.RegisterFlagCompletionFunc("log-level", fixedCompletion("debug", "info", "warn", "error"))
	cmd.RegisterFlagCompletionFunc("listen", fixedCompletion(fmt.Sprintf(":%d", wire.DefaultPort), fmt.Sprintf("127.0.0.1:%d", wire.DefaultPort), "[::1]:0"))
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
