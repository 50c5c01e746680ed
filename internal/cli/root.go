package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1 // the run failed
	ExitUsage  = 2 // bad flags or arguments
	// ExitRegressed: the command ran, and a --fail-on condition held (a
	// configuration regressed), so a CI pipeline can gate on it.
	ExitRegressed = 3
	// ExitInterrupted: SIGINT or SIGTERM stopped the command (128 + 2, as
	// a shell reports a process killed by SIGINT).
	ExitInterrupted = 130
)

// regressedError is a --fail-on condition that held; Run exits with
// ExitRegressed.
type regressedError struct{ msg string }

func (e regressedError) Error() string { return e.msg }

// usageError marks errors that are the caller's to fix.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// env is what commands need from the outside world.
type env struct {
	stdout, stderr io.Writer
	// stderrIsTTY enables progress lines (rewritten with \r) and colour
	// on stderr: see isTerminal.
	stderrIsTTY bool
}

// isTerminal reports whether w takes progress lines and colour: it is a
// file on a terminal (isatty: /dev/null and other character devices are
// not) and termEnv, the value of $TERM, is not "dumb" (Emacs shells,
// editors' consoles and CI logs say dumb to mean "no cursor movement").
func isTerminal(w io.Writer, termEnv string) bool {
	f, ok := w.(*os.File)
	if !ok || termEnv == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// Run executes latlab with args (without the program name) and returns the
// process exit code. SIGINT and SIGTERM cancel the command's context.
func Run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: stdout, stderr: stderr, stderrIsTTY: isTerminal(stderr, os.Getenv("TERM"))}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "latlab: %v\n", err)
	var re regressedError
	if errors.As(err, &re) {
		return ExitRegressed
	}
	if ctx.Err() != nil {
		return ExitInterrupted
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "Run 'latlab --help' or 'latlab COMMAND --help' for usage.")
		return ExitUsage
	}
	return ExitFailed
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "latlab",
		Short: "Reproduce, measure and explain container network latency",
		Long: `latlab measures what container networking costs in latency and throughput.

  latlab lab                        compare container attachment modes (host,
                                    docker0 bridge+NAT, -p DNAT, Calico-like
                                    routed veth, macvlan, ipvlan, vxlan), built
                                    in network namespaces, with CIs
  latlab serve                      run the server (all workloads, one port)
  latlab bench --target HOST:PORT   run one workload against a server
  latlab run SPEC                   run an experiment spec (YAML) and record it
  latlab runs | show | compare | export   recorded runs: list, tables, A/B, benchstat
  latlab docker lab                 the same comparison on real Docker networks (Engine API)
  latlab watch --config FILE        scheduled runs, regression alerts with suspects
  latlab ui                         dashboard of recorded runs (127.0.0.1), /metrics for Prometheus
  latlab report RUN --html FILE     one self-contained HTML page for a run
  latlab offload show|set DEV       read and toggle NIC offloads (ethtool netlink)
  latlab cleanup                    remove what a crashed or --keep lab left

Workloads: tcp_rr (request/response on one connection), tcp_crr (connect,
request, response, close per transaction), udp_rr (datagram ping-pong,
losses counted and skipped), tcp_stream (bulk throughput).

Exit codes: 0 ok, 1 the run failed, 2 bad usage, 3 a --fail-on condition
held (compare --fail-on worse), 130 interrupted (Ctrl-C, SIGTERM).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version(),
	}
	root.SetVersionTemplate("latlab {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err}
	})
	db := root.PersistentFlags().String("db", "", "database of recorded runs (default $LATLAB_DB, else /var/lib/latlab/latlab.db as root, else ~/.local/share/latlab/latlab.db)")
	root.AddCommand(newVersionCmd(e), newServeCmd(e), newBenchCmd(e), newLabCmd(e, db), newCleanupCmd(e), newOffloadCmd(e),
		newRunCmd(e, db), newRunsCmd(e, db), newShowCmd(e, db), newCompareCmd(e, db), newExportCmd(e, db),
		newUICmd(e, db), newReportCmd(e, db), newWatchCmd(e, db), newDockerCmd(e, db))
	// Cobra reports unknown commands and bad arguments as plain errors;
	// make every argument problem a usage error.
	for _, c := range root.Commands() {
		if c.Args != nil {
			args := c.Args
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageError{err}
				}
				return nil
			}
		}
	}
	root.Args = func(cmd *cobra.Command, a []string) error {
		if len(a) > 0 {
			return usagef("unknown command %q for latlab", a[0])
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, a []string) error { return cmd.Help() }
	return root
}
