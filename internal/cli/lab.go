package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/topo"
)

func newLabCmd(e *env) *cobra.Command {
	var (
		spec                       experiment.LabSpec
		modes, workloads, offloads []string
		size                       int
		cpu, serverCPU             string
		topoFile, family           string
		print, printSpec, calib    bool
		o                          labOpts
	)
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Compare container attachment modes, built in network namespaces",
		Long: `Lab builds, on this host, the ways containers attach to the network — each in
network namespaces of its own, never touching the host's — runs the same
workloads through every one, and prints how each compares with the host
network, with confidence intervals.

Topology (latlab lab --print-topology shows it as YAML): two "nodes" (network
namespaces a and b) joined by a veth "wire"; the server runs on node b; the
client runs on node a in one namespace per mode:

  host             node a's own namespace (no container)
  bridge-nat       veth into a docker0-like bridge, masqueraded out of the wire
  bridge-nat-dnat  docker run -p: server in a container behind a bridge on
                   node b, reached through a published port (DNAT)
  veth-routed      Calico-like: /32 address, proxy ARP for 169.254.1.1, host route
  veth-bpf*        veth-routed plus Cilium-like eBPF host routing (TCX or tc:
                   bpf_redirect_peer into the pod, bpf_fib_lookup out of it),
                   on a wire of its own; skipped, with the reason, without
                   the helpers
  sidecar*         a service-mesh sidecar: client -> TCP proxy (and UDP relay) on
                   loopback -> server, from node a's namespace
  sidecar-sockmap* the same with sockops + sk_msg (bpf_msg_redirect_hash)
                   short-circuiting the loopback hop: bypasses TCP and
                   netfilter, not a network path
  macvlan          macvlan, bridge mode, on node a's end of the wire
  ipvlan-l2/l3     ipvlan, each mode on a node-a NIC of its own (a second
                   wire); skipped, with the reason, without CONFIG_IPVLAN
  netkit           Cilium-like netkit pair, L3 mode, routed /32; skipped,
                   with the reason, without CONFIG_NETKIT (Linux 6.7+)
  vxlan            flannel-like: pods on both nodes behind cni0 bridges and a
                   VXLAN tunnel (VNI 1, UDP 8472) over the wire
  * opt-in: runs only when named (--modes host,veth-routed,veth-bpf,...):
    an acceleration or a proxy hop answers another question than the
    default comparison, which it would make longer and wider

How it measures:
  Placement  before the trials, lab calibrates where to pin the client and
             server threads: a few short probes per workload, same core vs
             cross core, interleaved, in the baseline mode (~5 s). The
             steadier placement wins (on VMs an idle vCPU's wake-up makes
             every cross-core round trip slow and noisy); tcp_stream always
             gets two cores. The header says what ran and why. --cpu and
             --server-cpu pin instead; --calibrate=false uses cross core.
  Rounds     every configuration (mode × workload) runs once per round, each
             round in a fresh random order, so drift on a busy machine
             spreads over all modes instead of landing on one. Warm-up is
             discarded. By default rounds continue until every ratio's CI is
             within ±--target-ci (2 points) or --budget (3m) is spent; a
             workload that cannot get there in the budget stops early and the
             header says what it reached and needed. --trials N runs exactly
             N rounds.
  Statistics each table shows the median over trials with an order-statistic
             95% CI, p50/p99 from the merged histograms, the ratio to host
             paired by round — the Hodges-Lehmann estimate with its CI — and
             the verdict of the Wilcoxon signed-rank test on the per-round
             ratios. Both are Bonferroni-adjusted across the table, and they
             are duals: a difference is significant exactly when the CI
             excludes 1. Too few rounds for the adjusted level say so.
  Noise      per mode the trial CV and outlier rounds; CPU steal and
             run-queue wait on the pinned CPUs; a run too noisy to answer
             says so in one line at the top, with what to do.

Nothing is left behind: every namespace is journalled (under --journal-dir)
before it is created; SIGINT/SIGTERM stop after the current trial, print what
finished and tear down; after a crash or kill -9, 'latlab cleanup' (and the
next 'latlab lab') removes the leftovers. Needs root.

Output: -o table (default), json (docs/lab-json.md) or csv; --json is -o
json; --percentiles 50,90,99,99.9 chooses the tables' latency columns.
Lists take commas or repetition: --modes host,macvlan is --mode host
--mode macvlan, and --offload all-on --offload mine:tso=off,gro=off gives
two presets without quoting ';'.`,
		Example: `  latlab lab                                     # every mode × tcp_rr, udp_rr, tcp_crr, tcp_stream
  latlab lab --modes host,veth-routed --workloads tcp_rr --trials 10
  latlab lab --target-ci 0.01 --budget 10m      # tighter answer, more time
  latlab lab --cpu 1 --server-cpu 0             # pin cross core (no calibration)
  latlab lab --json > lab.json
  latlab lab --offload all-on,seg-off,gro-off --workloads tcp_rr,udp_rr,tcp_stream
  latlab lab --print-topology > my.yaml && latlab lab --topology my.yaml
  latlab lab --family 6                          # the same modes over IPv6 (dual: both families configured)
  latlab lab --against latest --fail-on 'worse>5%'   # CI gate: exit 3 when a configuration got slower than the last run
  latlab lab --keep --modes host,bridge-nat      # leave it up to explore; 'latlab cleanup' removes it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if topoFile != "" && f.Changed("family") {
				return usagef("--family picks the default topology's addresses; --topology %s has its own", topoFile)
			}
			if topoFile != "" {
				t, err := topo.LoadTopology(topoFile)
				if err != nil {
					return usageError{err}
				}
				spec.Topology = t
			} else {
				fam, err := topo.ParseFamily(family)
				if err != nil {
					return usagef("--family: %v", err)
				}
				spec.Topology = topo.DefaultFamily(fam)
			}
			if printSpec {
				_, err := e.stdout.Write(experiment.DefaultSpecYAML())
				return err
			}
			if print {
				b, err := spec.Topology.YAML()
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(b)
				return err
			}
			if f.Changed("trials") && spec.Trials < 1 {
				return usagef("--trials %d: want at least 1 (6 or more reach a 95%% CI); leave it out for adaptive rounds", spec.Trials)
			}
			if f.Changed("trials") && (f.Changed("target-ci") || f.Changed("budget") || f.Changed("min-trials")) {
				return usagef("--trials fixes the number of rounds; --target-ci, --budget and --min-trials are for adaptive runs (leave --trials out)")
			}
			if !f.Changed("trials") {
				spec.Trials = 0
				if spec.TargetCI <= 0 || spec.TargetCI >= 1 {
					return usagef("--target-ci %v: want a ratio half-width in (0, 1), e.g. 0.02 for 2 points", spec.TargetCI)
				}
				if spec.Budget <= 0 {
					return usagef("--budget %v: want a positive duration, e.g. 3m", spec.Budget)
				}
			} else {
				spec.TargetCI, spec.Budget, spec.MinTrials = 0, 0, 0
			}
			spec.NoCalibrate = !calib
			if spec.Duration <= 0 {
				return usagef("--duration %v: want a positive duration", spec.Duration)
			}
			if f.Changed("modes") {
				spec.Modes = cleanList(modes)
			}
			if f.Changed("workloads") {
				wls, err := parseWorkloads(workloads)
				if err != nil {
					return err
				}
				spec.Workloads = wls
			}
			if f.Changed("offload") {
				ps, err := parseOffloadFlags(offloads)
				if err != nil {
					return err
				}
				spec.Offloads = ps
			}
			if f.Changed("cpu") || f.Changed("server-cpu") {
				client, server, err := parsePlacement(cpu, serverCPU)
				if err != nil {
					return err
				}
				spec.Placements = []experiment.Placement{{Name: "cpu=" + cpu + "/server-cpu=" + serverCPU, ClientCPUs: client, ServerCPU: server}}
			}
			if f.Changed("size") {
				if size < 1 {
					return usagef("--size %d: want at least 1 byte", size)
				}
				spec.Sizes = []int{size}
			}
			if spec.Baseline != "" {
				if _, ok := spec.Topology.Mode(spec.Baseline); !ok {
					return usagef("--baseline %q is not a mode of the topology", spec.Baseline)
				}
			}
			if f.Changed("modes") && !containsStr(spec.Modes, spec.Baseline) && spec.Baseline != "" {
				// Ratios need the baseline in every round.
				spec.Modes = append([]string{spec.Baseline}, spec.Modes...)
			}
			var changed []string
			f.Visit(func(fl *pflag.Flag) { changed = append(changed, flagText(fl)) })
			header := strings.TrimSpace("# latlab lab "+strings.Join(changed, " ")) + "\n# what ran, flags and calibrated placements folded in: 'latlab run' of this file repeats it\n"
			return o.run(cmd, e, &spec, "lab", header, "lab")
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&modes, "modes", nil, "modes to compare, comma-separated or repeated (--mode is the same; default: all of the topology but the opt-in ones, marked * above; the baseline is always added)")
	f.StringSliceVar(&workloads, "workloads", []string{"tcp_rr", "udp_rr", "tcp_crr", "tcp_stream"}, "workloads, comma-separated or repeated (--workload is the same; http also works: the server answers HTTP on the same port)")
	f.StringArrayVar(&offloads, "offload", []string{"default"}, "offload presets to compare on every lab interface, comma-separated or repeated: default, all-on, all-off, seg-off (tso+gso off), gro-off, gro-on, csum-off, or NAME:feature=on|off,... (one per --offload, or separated with ';')")
	f.IntVarP(&spec.Trials, "trials", "n", 0, "fixed number of rounds (every configuration runs once per round); default: adaptive, see --target-ci")
	f.Float64Var(&spec.TargetCI, "target-ci", experiment.DefaultTargetCI, "adaptive rounds: stop when every ratio's CI half-width is within this (0.02: ±2 points)")
	f.DurationVar(&spec.Budget, "budget", experiment.DefaultBudget, "adaptive rounds: time limit of the rounds (the minimum rounds always run)")
	f.IntVar(&spec.MinTrials, "min-trials", 0, "adaptive rounds: the least number of rounds (default: enough for the test to reach its adjusted level, at least 6)")
	f.BoolVar(&calib, "calibrate", true, "calibrate the CPU placement per workload before the trials (ignored with --cpu/--server-cpu); false: cross core")
	f.DurationVarP(&spec.Duration, "duration", "d", experiment.DefaultDuration, "measured duration of each trial")
	f.DurationVar(&spec.Warmup, "warmup", experiment.DefaultWarmup, "warm-up before each trial (discarded)")
	f.IntVarP(&size, "size", "s", 64, "request/response size in bytes (tcp_stream keeps its 128 KiB writes)")
	f.Uint64Var(&spec.Seed, "seed", 0, "seed of the round orders and the bootstrap (0: random; printed)")
	f.StringVar(&spec.Baseline, "baseline", experiment.DefaultBaseline, "mode the others are compared with")
	f.StringVar(&cpu, "cpu", "auto", "pin the client: a CPU list like 1 or 0,1 (no calibration; always pinned: unpinned trials swing by tens of percent)")
	f.StringVar(&serverCPU, "server-cpu", "auto", "server CPU: auto, none or a CPU number")
	f.StringVar(&topoFile, "topology", "", "YAML topology to build instead of the default (see --print-topology)")
	f.StringVar(&family, "family", "4", "IP family of the default topology: 4, 6 or dual (both on every link, clients dial IPv6)")
	f.BoolVar(&print, "print-topology", false, "print the topology as YAML and exit")
	f.BoolVar(&printSpec, "print-spec", false, "print the experiment spec lab runs (for 'latlab run') and exit")
	o.flags(cmd)
	listAliases(cmd, map[string]string{"mode": "modes", "workload": "workloads", "offloads": "offload"})
	cmd.RegisterFlagCompletionFunc("modes", listCompletion(func() []string { return modeNames(topoFile) }))
	cmd.RegisterFlagCompletionFunc("baseline", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return modeNames(topoFile), cobra.ShellCompDirectiveNoFileComp
	})
	cmd.RegisterFlagCompletionFunc("workloads", listCompletion(workloadNames))
	cmd.RegisterFlagCompletionFunc("offload", listCompletion(func() []string { return append([]string{"default"}, offload.PresetNames()...) }))
	cmd.RegisterFlagCompletionFunc("cpu", cpuCompletion)
	cmd.RegisterFlagCompletionFunc("server-cpu", cpuCompletion)
	cmd.MarkFlagFilename("topology", "yaml", "yml")
	return cmd
}

// modeNames are the modes of the topology file (the default topology's
// when there is none, or it does not load).
func modeNames(topoFile string) []string {
	if topoFile != "" {
		if t, err := topo.LoadTopology(topoFile); err == nil {
			return t.ModeNames()
		}
	}
	return labModeNames()
}

// labOpts are the flags lab and run share: output, journal, NAT, keep,
// recording.
type labOpts struct {
	out          *outputFlags
	db           *string
	quiet        bool
	keep         bool
	noStore      bool
	allowHostNIC bool
	attribute    bool
	journalDir   string
	nat          string
	// against is a stored run to compare this one with after it ends;
	// failOn gates on that comparison (CI).
	against string
	failOn  failOnFlag
	// jsonStream writes the run as JSON lines while it runs.
	jsonStream bool
}

func (o *labOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.keep, "keep", false, "leave the namespaces up afterwards and print how to enter them")
	f.StringVar(&o.journalDir, "journal-dir", journal.DefaultDir, "where journals of created objects live")
	f.StringVar(&o.nat, "nat", topo.NATAuto, "NAT backend: auto (nftables over netlink, else iptables), nftables or iptables")
	f.BoolVar(&o.noStore, "no-store", false, "do not record the run in the database")
	f.BoolVar(&o.attribute, "attribute", false, "attach kernel evidence to every trial: NET_RX/NET_TX softirqs and softirq time per transaction, drops by reason, retransmits, run-queue delay (eBPF tracepoints where they load, /proc counters otherwise)")
	f.BoolVar(&o.allowHostNIC, "allow-host-nic", false, "let a spec's interfaces include devices in the caller's own namespace (journalled and restored)")
	f.StringVar(&o.against, "against", "", "after the run, compare its rates with this stored run (an id, or latest: the newest before this one), as 'latlab compare RUN this' does")
	f.BoolVar(&o.jsonStream, "json-stream", false, "write the run as JSON lines while it runs on stdout (start, built, calibrated, one per trial, precision, teardown, summary last; docs/lab-json.md); not with -o")
	f.Var(&o.failOn, "fail-on", "with --against: exit 3 (after printing) when a configuration is significantly worse than in that run: 'worse', or 'worse>5%'")
	o.out = addOutput(cmd, report.FormatTable, report.FormatJSON, report.FormatCSV).withPercentiles("50,99")
	o.db = addDBFlag(cmd)
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress on stderr")
	cmd.RegisterFlagCompletionFunc("nat", fixedCompletion(topo.NATAuto, topo.NATNftables, topo.NATIptables))
	cmd.MarkFlagDirname("journal-dir")
}

// run executes a spec, records it (the spec rendered from what ran, after
// the header's comment lines) and prints the summary.
func (o *labOpts) run(cmd *cobra.Command, e *env, spec *experiment.LabSpec, name, text, kind string) error {
	output, err := o.out.result()
	if err != nil {
		return err
	}
	spec.Keep, spec.JournalDir, spec.NAT, spec.AllowHostNIC = o.keep, o.journalDir, o.nat, o.allowHostNIC
	spec.Attribute = spec.Attribute || o.attribute
	spec.Defaults()
	if err := spec.Validate(); err != nil {
		return usageError{err}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("latlab %s needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces", kind)
	}
	var rec *experiment.StoreRecorder
	if !o.noStore {
		st, err := openStore(cmd.Context(), *o.db)
		if err != nil {
			return fmt.Errorf("%w (--no-store runs without a database)", err)
		}
		defer st.Close()
		rec = &experiment.StoreRecorder{Store: st, Kind: kind, SpecName: name, SpecHeader: text + "# latlab " + Version() + "\n", Version: Version()}
		spec.Recorder = rec
	}
	base, err := o.baseline(cmd)
	if err != nil {
		return err
	}
	var stream *report.JSONStream
	if o.jsonStream {
		if output.Format != report.FormatTable {
			return usagef("--json-stream writes JSON lines itself; drop -o %s", output.Format)
		}
		if stream, err = report.NewJSONStream(e.stdout, output.Meta); err != nil {
			return err
		}
	}
	spec.Undoers = undoers()
	prog := newLabProgress(e, o.quiet)
	onEvent := prog.event
	if stream != nil {
		onEvent = func(ev experiment.Event) {
			prog.event(ev)
			if err := stream.Event(ev); err != nil {
				fmt.Fprintf(e.stderr, "latlab: %v\n", err)
			}
		}
	}
	out, runErr := experiment.RunLab(cmd.Context(), *spec, onEvent)
	prog.finish()
	if out == nil {
		return runErr
	}
	sum := experiment.Summarize(out)
	if stream != nil {
		if err := stream.Summary(sum); err != nil {
			return err
		}
		// The comparison below is for people: beside JSON lines it goes
		// to stderr.
		output.Format = report.FormatJSON
	} else if err := report.WriteLab(e.stdout, output, sum); err != nil {
		return err
	}
	if rec != nil && rec.RunID != 0 && !o.quiet {
		fmt.Fprintf(e.stderr, "recorded as run %d in %s ('latlab show %d', 'latlab export %d')\n", rec.RunID, rec.Store.Path(), rec.RunID, rec.RunID)
	}
	if out.Kept {
		printKept(e.stderr, out)
	}
	if runErr != nil {
		return runErr
	}
	if out.Incomplete {
		return fmt.Errorf("interrupted: the results above are incomplete (%d trials finished)", len(out.Trials))
	}
	if base == nil {
		return nil
	}
	return o.compareAgainst(e, output, base, out)
}

// storedRun is a run loaded from the database.
type storedRun struct {
	run store.Run
	out *experiment.Outcome
}

// baseline loads --against's run before the lab starts, so a wrong id
// fails at once and "latest" means the run before this one.
func (o *labOpts) baseline(cmd *cobra.Command) (*storedRun, error) {
	if o.against == "" {
		if o.failOn.set {
			return nil, usagef("--fail-on needs --against RUN: the stored run to judge this one against")
		}
		return nil, nil
	}
	var b *storedRun
	err := withRun(cmd.Context(), *o.db, o.against, func(_ *store.Store, r store.Run, out *experiment.Outcome) error {
		b = &storedRun{r, out}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--against %s: %w", o.against, err)
	}
	return b, nil
}

// compareAgainst prints how this run's rates compare with the stored
// run's (on stdout after a table, on stderr beside JSON or CSV, which
// stay one document) and applies --fail-on.
func (o *labOpts) compareAgainst(e *env, output report.Output, base *storedRun, out *experiment.Outcome) error {
	rows, err := experiment.CompareOutcomes(base.out, out, experiment.MetricRate)
	if err != nil {
		return fmt.Errorf("compare with run %d: %w", base.run.ID, err)
	}
	w := e.stdout
	if output.Format != report.FormatTable {
		w = e.stderr
	}
	fmt.Fprintf(w, "\nagainst run %d (%s):\n", base.run.ID, base.run.Started.Local().Format("2006-01-02 15:04"))
	if err := report.WriteComparison(w, report.Output{Format: report.FormatTable}, fmt.Sprintf("run %d", base.run.ID), "this run", rows); err != nil {
		return err
	}
	return o.failOn.check(rows)
}

// parsePlacement reads lab's --cpu and --server-cpu (case-insensitive);
// lab always pins the client, so --cpu none is refused.
func parsePlacement(cpu, serverCPU string) ([]int, int, error) {
	client, none, err := experiment.ParseClientCPUs(strings.ToLower(cpu))
	if err != nil {
		return nil, 0, usagef("--cpu: %v", err)
	}
	if none {
		return nil, 0, usagef("--cpu none is not offered by lab: unpinned trials swing by tens of percent")
	}
	server, err := experiment.ParseServerCPU(strings.ToLower(serverCPU))
	if err != nil {
		return nil, 0, usagef("--server-cpu: %v", err)
	}
	return client, server, nil
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func countOK(ms []experiment.ModeInfo) int {
	n := 0
	for _, m := range ms {
		if m.Status == string(topo.StatusOK) {
			n++
		}
	}
	return n
}

// labProgress shows progress on stderr: a rewritten line on a terminal,
// one plain line per round otherwise.
type labProgress struct {
	w        io.Writer
	tty, off bool
	drawn    bool
}

func newLabProgress(e *env, quiet bool) *labProgress {
	return &labProgress{w: e.stderr, tty: e.stderrIsTTY, off: quiet}
}

func (p *labProgress) event(ev experiment.Event) {
	if p.off {
		return
	}
	switch ev.Kind {
	case "built":
		var ok, skipped []string
		for _, m := range ev.Lab.Modes {
			if m.Status == topo.StatusOK {
				ok = append(ok, m.Mode.Name)
			} else {
				skipped = append(skipped, fmt.Sprintf("%s (%s)", m.Mode.Name, m.Status))
			}
		}
		fmt.Fprintf(p.w, "lab %s built in %v: %s", ev.Lab.Prefix, ev.Lab.BuildTime.Round(time.Millisecond/10), strings.Join(ok, ", "))
		if len(skipped) > 0 {
			fmt.Fprintf(p.w, "; not run: %s", strings.Join(skipped, ", "))
		}
		fmt.Fprintln(p.w)
	case "trial":
		t := ev.Trial
		if p.tty {
			fmt.Fprintf(p.w, "\r\033[Kround %d  trial %d/%d  %s %s  elapsed %v  ETA %v", ev.Round, ev.Done, ev.Total,
				t.Mode, t.Workload, ev.Elapsed.Round(time.Second), ev.ETA.Round(time.Second))
			p.drawn = true
		} else if ev.EndOfRound {
			fmt.Fprintf(p.w, "round %d done: %d/%d trials, elapsed %v, ETA %v\n", ev.Round, ev.Done, ev.Total,
				ev.Elapsed.Round(time.Second), ev.ETA.Round(time.Second))
		}
		if t.Error != "" {
			p.clear()
			fmt.Fprintf(p.w, "trial failed: %s %s round %d: %s\n", t.Mode, t.Workload, ev.Round, t.Error)
		}
	case "calibrating":
		fmt.Fprintf(p.w, "calibrating CPU placement (same core vs cross core, a few short probes per workload)...\n")
	case "calibrated":
		for _, c := range ev.Calibration {
			fmt.Fprintf(p.w, "  %s\n", c)
		}
	case "precision":
		if !p.tty {
			var open []string
			for _, pr := range ev.Precision {
				if pr.Stopped == "" {
					hw := "no CI yet"
					if pr.HalfWidth >= 0 {
						hw = fmt.Sprintf("±%.1f", pr.HalfWidth*100)
					}
					open = append(open, fmt.Sprintf("%s %s", pr.Workload, hw))
				}
			}
			if len(open) > 0 {
				fmt.Fprintf(p.w, "after round %d, still short of ±%.1f points: %s\n", ev.Round, ev.Precision[0].Target*100, strings.Join(open, ", "))
			}
		}
	case "server-error":
		p.clear()
		fmt.Fprintf(p.w, "latlab: %v\n", ev.Err)
	case "teardown":
		p.clear()
	}
}

func (p *labProgress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *labProgress) finish() { p.clear() }

func printKept(w io.Writer, o *experiment.Outcome) {
	fmt.Fprintf(w, "\nThe lab is still up (--keep). Enter a namespace with nsenter (or ip netns exec):\n")
	for _, m := range o.Modes {
		if m.Status != string(topo.StatusOK) {
			continue
		}
		fmt.Fprintf(w, "  %-16s client: nsenter --net=%s bash   server: latlab serve --netns %s   target %s\n",
			m.Name, topo.NetNSPath(m.ClientNS), m.ServerNS, m.Target)
	}
	fmt.Fprintf(w, "Remove it with: latlab cleanup\n")
}
