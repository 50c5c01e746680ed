package cli

// The command-line convention every command follows (issue 21), in one
// place:
//
//   - output: -o/--output table|json|csv on every command that prints
//     results (--json is the same as -o json; the older --format is a
//     hidden alias); csv only where there is a table; every JSON document
//     is report.WriteJSON's envelope (schema_version, start: latlab
//     version and host fingerprint);
//   - --db only on the commands that use the database; the ones that
//     only read it never create it (openStoreExisting);
//   - list flags take commas and repetition alike (--modes a,b ==
//     --mode a --mode b);
//   - value flags complete in the shell (completion bash|zsh|fish);
//   - usage errors name the command's own --help.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/sockio"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
)

// annotationOutput marks a command that prints results (it has -o); the
// command-tree test checks every such command.
const annotationOutput = "latlab/output"

// outputFlags is a command's -o/--output with its aliases: --json
// (documented) and --format (hidden, the older name).
type outputFlags struct {
	cmd                    *cobra.Command
	output, format         string
	json                   bool
	formats                []string // accepted; the first is the default
	percentiles            []string
	percentileFlag, hasCSV bool
}

// addOutput registers -o/--output, --json and the hidden --format on cmd,
// accepting formats (the first is the default). Without report.FormatCSV
// among them, -o csv is refused with a clear error.
func addOutput(cmd *cobra.Command, formats ...string) *outputFlags {
	o := &outputFlags{cmd: cmd, formats: formats, hasCSV: slices.Contains(formats, report.FormatCSV)}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", formats[0], "output format: "+strings.Join(formats, ", "))
	f.BoolVar(&o.json, "json", false, "write JSON: the same as -o json")
	f.StringVar(&o.format, "format", "", "the older name of -o/--output")
	f.MarkHidden("format")
	cmd.RegisterFlagCompletionFunc("output", fixedCompletion(formats...))
	cmd.RegisterFlagCompletionFunc("format", fixedCompletion(formats...))
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotationOutput] = strings.Join(formats, ",")
	return o
}

// withPercentiles adds --percentiles: which latency percentiles the tables
// and the JSON print.
func (o *outputFlags) withPercentiles(def string) *outputFlags {
	o.percentileFlag = true
	o.cmd.Flags().StringSliceVar(&o.percentiles, "percentiles", nil,
		"latency percentiles the tables print and JSON adds as percentiles_ns, e.g. 50,90,99,99.9 (default "+def+")")
	o.cmd.RegisterFlagCompletionFunc("percentiles", fixedCompletion("50", "90", "99", "99.9", "99.99"))
	return o
}

// pick returns the chosen format: a usage error when -o, --json and
// --format disagree, or name a format this command cannot write.
func (o *outputFlags) pick() (string, error) {
	f := o.cmd.Flags()
	chosen := map[string]string{}
	if f.Changed("output") {
		chosen["-o "+o.output] = o.output
	}
	if f.Changed("format") {
		chosen["--format "+o.format] = o.format
	}
	if o.json {
		chosen["--json"] = report.FormatJSON
	}
	format := o.formats[0]
	var names []string
	for name, v := range chosen {
		names = append(names, name)
		format = v
	}
	slices.Sort(names)
	for _, v := range chosen {
		if v != format {
			return "", usagef("%s conflict: give one output format", strings.Join(names, " and "))
		}
	}
	if slices.Contains(o.formats, format) {
		return format, nil
	}
	if format == report.FormatCSV && !o.hasCSV {
		return "", usagef("-o csv: %s prints no table, so it has no CSV form (want %s)", o.cmd.CommandPath(), strings.Join(o.formats, " or "))
	}
	return "", usagef("-o %q: unknown output format (want %s)", format, strings.Join(o.formats, ", "))
}

// result is pick with the JSON envelope and --percentiles: what the
// report writers take.
func (o *outputFlags) result() (report.Output, error) {
	format, err := o.pick()
	if err != nil {
		return report.Output{}, err
	}
	out := report.Output{Format: format, Meta: jsonMeta(o.cmd)}
	if o.percentileFlag && o.cmd.Flags().Changed("percentiles") {
		ps, err := report.ParsePercentiles(o.percentiles)
		if err != nil {
			return out, usagef("--percentiles: %v", err)
		}
		out.Percentiles = ps
	}
	return out, nil
}

// jsonMeta is the "start" block of cmd's JSON documents: latlab's
// version, the command and the host fingerprint (kernel, CPU model,
// cores) the stored environments record.
func jsonMeta(cmd *cobra.Command) report.Meta {
	kernel, cpu, cores := experiment.HostFingerprint()
	return report.Meta{Version: Version(), Command: cmd.CommandPath(), Host: report.Host{Kernel: kernel, CPUModel: cpu, Cores: cores}}
}

// addDBFlag registers --db on a command that uses the database.
func addDBFlag(cmd *cobra.Command) *string {
	db := new(string)
	cmd.Flags().StringVar(db, "db", "", "database of recorded runs (default $LATLAB_DB, else /var/lib/latlab/latlab.db as root, else ~/.local/share/latlab/latlab.db)")
	cmd.MarkFlagFilename("db", "db")
	return db
}

// dbPath is --db, or the default path.
func dbPath(db string) string {
	if db == "" {
		return store.DefaultPath()
	}
	return db
}

// openStoreExisting opens the database of a command that only reads it:
// it is never created, and a missing one says where it was looked for and
// how to make one.
func openStoreExisting(ctx context.Context, db string) (*store.Store, error) {
	path := dbPath(db)
	st, err := store.OpenExisting(path)
	if errors.Is(err, store.ErrNoDatabase) {
		abs, _ := filepath.Abs(path)
		return nil, fmt.Errorf("no database at %s: 'latlab lab' (or 'latlab run SPEC') records runs and creates it; --db or $LATLAB_DB names another", abs)
	}
	if err != nil {
		return nil, err
	}
	return markStale(ctx, st)
}

// listAliases lets a plural list flag be given in the singular too:
// --mode host --mode macvlan is --modes host,macvlan.
func listAliases(cmd *cobra.Command, singularToPlural map[string]string) {
	prev := cmd.Flags().GetNormalizeFunc()
	cmd.Flags().SetNormalizeFunc(func(f *pflag.FlagSet, name string) pflag.NormalizedName {
		if p, ok := singularToPlural[name]; ok {
			return pflag.NormalizedName(p)
		}
		return prev(f, name)
	})
}

// cleanList trims the items of a list flag and drops empty ones.
func cleanList(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// parseWorkloads parses --workloads.
func parseWorkloads(list []string) ([]wire.Workload, error) {
	var out []wire.Workload
	for _, w := range cleanList(list) {
		wl, err := wire.ParseWorkload(w)
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, wl)
	}
	return out, nil
}

// parseOffloadFlags parses repeated --offload values, each a
// comma-separated list of built-in presets or NAME:feature=on|off,...
// presets (';' still separates several in one value).
func parseOffloadFlags(vals []string) ([]offload.Preset, error) {
	var out []offload.Preset
	seen := map[string]bool{}
	for _, v := range vals {
		ps, err := offload.ParsePresets(v)
		if err != nil {
			return nil, usageError{err}
		}
		for _, p := range ps {
			if seen[p.Name] {
				return nil, usagef("offload preset %q given twice", p.Name)
			}
			seen[p.Name] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// flagText renders a set flag for a recorded command line: lists as
// comma-joined values (repeated --offload flags one by one).
func flagText(fl *pflag.Flag) string {
	sv, ok := fl.Value.(pflag.SliceValue)
	if !ok {
		return "--" + fl.Name + "=" + fl.Value.String()
	}
	if fl.Value.Type() == "stringArray" {
		var parts []string
		for _, v := range sv.GetSlice() {
			parts = append(parts, "--"+fl.Name+"="+v)
		}
		return strings.Join(parts, " ")
	}
	return "--" + fl.Name + "=" + strings.Join(sv.GetSlice(), ",")
}

// fixedCompletion completes a flag from a fixed list.
func fixedCompletion(vals ...string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return vals, cobra.ShellCompDirectiveNoFileComp
	}
}

// listCompletion completes one item of a comma-separated list flag: the
// items already typed stay as the prefix.
func listCompletion(vals func() []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		prefix := ""
		if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
			prefix = toComplete[:i+1]
		}
		var out []string
		for _, v := range vals() {
			out = append(out, prefix+v)
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// workloadNames are the workloads lab and bench take.
func workloadNames() []string {
	var out []string
	for _, w := range wire.Workloads {
		out = append(out, string(w))
	}
	return append(out, string(wire.HTTP))
}

// labModeNames are the default topology's modes.
func labModeNames() []string { return topo.Default().ModeNames() }

// cpuCompletion offers auto, none and the CPUs this process may run on.
func cpuCompletion(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	out := []string{"auto", "none"}
	if cpus, err := sockio.AllowedCPUs(); err == nil {
		for _, c := range cpus {
			out = append(out, strconv.Itoa(c))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// netnsCompletion offers the named network namespaces.
func netnsCompletion(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	ents, _ := os.ReadDir(topo.NetNSDir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// runIDCompletion completes RUN arguments with "latest" and the recorded
// runs' ids, newest first, from the database when it exists (it is never
// created here). At most max arguments are completed (0: any number).
func runIDCompletion(db *string, max int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if max > 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out := []string{"latest\tthe newest run"}
		st, err := store.OpenExisting(dbPath(*db))
		if err != nil {
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		defer st.Close()
		runs, err := st.Runs(cmd.Context(), store.RunFilter{Limit: 50})
		if err != nil {
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		for _, r := range runs {
			out = append(out, fmt.Sprintf("%d\t%s %s, %s", r.ID, r.Kind, r.SpecName, r.Started.Local().Format("2006-01-02 15:04")))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// usageArgsTree makes every argument problem in the tree a usage error
// (cobra reports bad arguments as plain errors); flag errors are usage
// errors through root's SetFlagErrorFunc, which subcommands inherit.
func usageArgsTree(root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Args != nil {
			args := c.Args
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					var ue usageError
					if errors.As(err, &ue) {
						return err
					}
					return usageError{err}
				}
				return nil
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// congestionCompletion offers the kernel's available TCP congestion
// controls.
func congestionCompletion(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	b, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	out := strings.Fields(string(b))
	if len(out) == 0 {
		out = []string{"cubic", "reno", "bbr"}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
