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
	cmd, err := root.ExecuteContextC(ctx)
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
		fmt.Fprintln(stderr, helpHint(cmd))
		return ExitUsage
	}
	return ExitFailed
}

// helpHint is the line under a usage error: the failing command's own
// --help (the root's also names COMMAND --help).
func helpHint(cmd *cobra.Command) string {
	if cmd == nil || !cmd.HasParent() {
		return "Run 'latlab --help' or 'latlab COMMAND --help' for usage."
	}
	return fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())
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

Output: every command that prints results takes -o/--output table, json or
csv (--json is -o json); csv only where there is a table. Every JSON
document starts with "schema_version" and a "start" block (latlab version,
command, host: kernel, CPU model, cores). List flags take commas or
repetition alike (--modes host,macvlan or --mode host --mode macvlan).
--db is on the commands that use the database; the ones that only read it
(runs, show, compare, export, report, ui) never create it.
Shell completion: latlab completion bash|zsh|fish. Man pages: latlab man --dir DIR.

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
	root.AddCommand(newVersionCmd(e), newServeCmd(e), newBenchCmd(e), newLabCmd(e), newCleanupCmd(e), newOffloadCmd(e),
		newRunCmd(e), newRunsCmd(e), newShowCmd(e), newCompareCmd(e), newExportCmd(e),
		newUICmd(e), newReportCmd(e), newWatchCmd(e), newDockerCmd(e), newManCmd(e))
	// The completion command binds its output when it is made.
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.InitDefaultCompletionCmd()
	usageArgsTree(root)
	root.Args = func(cmd *cobra.Command, a []string) error {
		if len(a) > 0 {
			return usagef("unknown command %q for latlab", a[0])
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, a []string) error { return cmd.Help() }
	return root
}
