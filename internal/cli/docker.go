package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/docker/dockerlab"
	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
)

func newDockerCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docker",
		Short: "Measure real Docker networks through the Docker Engine API",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDockerLabCmd(e))
	return cmd
}

func newDockerLabCmd(e *env) *cobra.Command {
	var (
		spec             dockerlab.Spec
		modes, workloads []string
		cpu, serverCPU   string
		out              *outputFlags
		db               *string
		quiet, noDB      bool
	)
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Compare Docker network modes with real containers",
		Long: `Docker lab runs latlab lab's comparison on real Docker networks, through the
Docker Engine API (--host, else $DOCKER_HOST, else the default socket):

  host         --network host: client and server share the daemon's namespace
  bridge       the default bridge (docker0): two containers
  user-bridge  a user-defined bridge network: two containers
  published    docker run -p: a host-network client dials the published port
               on the bridge gateway (DNAT)
  macvlan      a macvlan network (bridge mode) on --macvlan-parent: two
               containers (skipped without --macvlan-parent)

No registry is needed: latlab imports an image of its own binary (tagged
latlab:bin-<sha256 prefix>, reused while the binary is the same); a
dynamically linked latlab (a cgo build) brings its program interpreter and
shared libraries along, at the paths they have on this machine.
The server runs as 'latlab serve' in a container; the client is this
process's measuring engine entering a client container's network namespace,
so the timed path is exactly lab's. Same workloads, interleaved rounds,
statistics and tables as 'latlab lab'; the run is recorded.

Every container and network carries the label io.latlab.run=<run id> and is
removed at the end, on SIGINT/SIGTERM, and by 'latlab cleanup' after a
crash. Needs root (entering namespaces) and a daemon on this machine.

Output as lab's: -o table, json or csv (--json is -o json), --percentiles;
--modes and --workloads take commas or repetition (--mode, --workload).`,
		Example: `  latlab docker lab
  latlab docker lab --modes host,bridge --workloads tcp_rr --trials 20
  latlab docker lab --macvlan-parent eth1 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			output, err := out.result()
			if err != nil {
				return err
			}
			if f.Changed("modes") {
				spec.Modes = cleanList(modes)
			}
			wls, err := parseWorkloads(workloads)
			if err != nil {
				return err
			}
			spec.Workloads = append(spec.Workloads, wls...)
			if f.Changed("cpu") || f.Changed("server-cpu") {
				client, server, err := parsePlacement(cpu, serverCPU)
				if err != nil {
					return err
				}
				spec.Placement = experiment.Placement{Name: "cpu=" + cpu + "/server-cpu=" + serverCPU, ClientCPUs: client, ServerCPU: server}
			}
			if f.Changed("trials") && spec.Trials < 1 {
				return usagef("--trials %d: want at least 1 (6 or more reach a 95%% CI); leave it out for adaptive rounds", spec.Trials)
			}
			if f.Changed("trials") && (f.Changed("target-ci") || f.Changed("budget")) {
				return usagef("--trials fixes the number of rounds; --target-ci and --budget are for adaptive runs (leave --trials out)")
			}
			if f.Changed("trials") {
				spec.TargetCI, spec.Budget = 0, 0
			} else {
				spec.Trials = 0
			}
			spec.Defaults()
			if err := spec.Validate(); err != nil {
				return usageError{err}
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("latlab docker lab needs root to enter the containers' network namespaces")
			}
			var rec *experiment.StoreRecorder
			if !noDB {
				st, err := openStore(cmd.Context(), *db)
				if err != nil {
					return fmt.Errorf("%w (--no-store runs without a database)", err)
				}
				defer st.Close()
				var changed []string
				f.Visit(func(fl *pflag.Flag) { changed = append(changed, flagText(fl)) })
				rec = &experiment.StoreRecorder{Store: st, Kind: "docker", SpecName: "docker lab",
					SpecText: "# latlab docker lab " + strings.Join(changed, " ") + "\n", Version: Version()}
				spec.Recorder = rec
			}
			prog := newLabProgress(e, quiet)
			spec.OnBuilt = func(ms []experiment.ModeInfo, d time.Duration) {
				if quiet {
					return
				}
				var ok, not []string
				for _, m := range ms {
					if m.Status == string(topo.StatusOK) {
						ok = append(ok, m.Name)
					} else {
						not = append(not, fmt.Sprintf("%s (%s: %s)", m.Name, m.Status, m.Reason))
					}
				}
				fmt.Fprintf(e.stderr, "docker modes set up in %v: %s", d.Round(time.Millisecond), strings.Join(ok, ", "))
				if len(not) > 0 {
					fmt.Fprintf(e.stderr, "; not run: %s", strings.Join(not, "; "))
				}
				fmt.Fprintln(e.stderr)
			}
			spec.Undoers = undoersFor(spec.Host)
			res, runErr := dockerlab.RunLab(cmd.Context(), spec, prog.event)
			prog.finish()
			if res == nil {
				return runErr
			}
			if err := report.WriteLab(e.stdout, output, experiment.Summarize(res)); err != nil {
				return err
			}
			if rec != nil && rec.RunID != 0 && !quiet {
				fmt.Fprintf(e.stderr, "recorded as run %d in %s ('latlab show %d')\n", rec.RunID, rec.Store.Path(), rec.RunID)
			}
			if runErr != nil {
				return runErr
			}
			if res.Incomplete {
				return fmt.Errorf("interrupted: the results above are incomplete (%d trials finished)", len(res.Trials))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Host, "host", "", "Docker daemon address, e.g. unix:///var/run/docker.sock (default $DOCKER_HOST, else the default socket)")
	f.StringSliceVar(&modes, "modes", nil, "modes, comma-separated or repeated (--mode): host, bridge, user-bridge, published, macvlan (default: all; macvlan only with --macvlan-parent; host is always added)")
	f.StringSliceVar(&workloads, "workloads", []string{"tcp_rr", "udp_rr", "tcp_crr", "tcp_stream"}, "workloads, comma-separated or repeated (--workload)")
	f.StringVar(&spec.MacvlanParent, "macvlan-parent", "", "parent device of the macvlan network (in the daemon's network namespace)")
	f.StringVar(&spec.MacvlanSubnet, "macvlan-subnet", "", "subnet of the macvlan network (default: the daemon picks one)")
	f.StringVar(&spec.Binary, "binary", "", "latlab binary to put in the image (default: this executable; a dynamically linked one is bundled with its shared libraries)")
	f.IntVarP(&spec.Trials, "trials", "n", 0, "fixed number of rounds (every configuration runs once per round); default: adaptive, see --target-ci")
	f.Float64Var(&spec.TargetCI, "target-ci", experiment.DefaultTargetCI, "adaptive rounds: stop when every ratio's CI half-width is within this (0.02: ±2 points)")
	f.DurationVar(&spec.Budget, "budget", experiment.DefaultBudget, "adaptive rounds: time limit of the rounds (the minimum rounds always run)")
	f.DurationVarP(&spec.Duration, "duration", "d", experiment.DefaultDuration, "measured duration of each trial")
	f.DurationVar(&spec.Warmup, "warmup", experiment.DefaultWarmup, "warm-up before each trial (discarded)")
	f.IntVarP(&spec.Size, "size", "s", 64, "request/response size in bytes (tcp_stream keeps its 128 KiB writes)")
	f.Uint64Var(&spec.Seed, "seed", 0, "seed of the round orders and the bootstrap (0: random; printed)")
	f.IntVar(&spec.Port, "port", wire.DefaultPort, "port the servers listen on (on the host network too, for the host mode)")
	f.IntVar(&spec.PublishedPort, "published-port", 17707, "host port of the published mode (TCP and UDP)")
	f.StringVar(&cpu, "cpu", "auto", "pin the client: a CPU list like 1 or 0,1 (default: placement calibrated per workload, as lab's)")
	f.StringVar(&serverCPU, "server-cpu", "auto", "server CPU: auto, none or a CPU number")
	f.StringVar(&spec.JournalDir, "journal-dir", journal.DefaultDir, "where journals of created objects live")
	f.BoolVar(&noDB, "no-store", false, "do not record the run in the database")
	out = addOutput(cmd, report.FormatTable, report.FormatJSON, report.FormatCSV).withPercentiles("50,99")
	db = addDBFlag(cmd)
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress on stderr")
	listAliases(cmd, map[string]string{"mode": "modes", "workload": "workloads"})
	cmd.RegisterFlagCompletionFunc("modes", listCompletion(dockerlab.AllModes))
	cmd.RegisterFlagCompletionFunc("workloads", listCompletion(workloadNames))
	cmd.RegisterFlagCompletionFunc("cpu", cpuCompletion)
	cmd.RegisterFlagCompletionFunc("server-cpu", cpuCompletion)
	cmd.MarkFlagDirname("journal-dir")
	return cmd
}

// resolveNetNS turns --netns into a namespace path: a path as given; a
// name under /var/run/netns; otherwise a Docker container (name or ID, on
// $DOCKER_HOST or the default socket), resolved to /proc/PID/ns/net of its
// init process without touching the container.
func resolveNetNS(ctx context.Context, s string) (string, error) {
	p, err := netnsPath(s)
	if err != nil || p == "" || strings.ContainsRune(s, '/') {
		return p, err
	}
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	eng, err := docker.Open(cctx, "")
	if err != nil {
		return "", usagef("--netns %q: no namespace %s, and no Docker daemon to look for a container: %v", s, p, err)
	}
	defer eng.Close()
	cp, err := eng.ContainerNetNS(cctx, s)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return "", err
		}
		return "", usagef("--netns %q: neither a namespace under %s nor a running container: %v", s, topo.NetNSDir, err)
	}
	return cp, nil
}
