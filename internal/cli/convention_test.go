package cli

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latlab/latlab/internal/store"
)

// noResults are the commands that print no results, so have no -o: the
// root and command groups, servers, and commands that write files.
var noResults = []string{
	"latlab", "latlab serve", "latlab ui", "latlab report", "latlab man", "latlab docker", "latlab offload",
	"latlab completion", "latlab completion bash", "latlab completion zsh", "latlab completion fish", "latlab completion powershell",
}

// valueFlags must complete their values wherever they appear.
var valueFlags = []string{"output", "modes", "workloads", "workload", "offload", "percentiles", "baseline", "cpu", "server-cpu",
	"metric", "nat", "log-level", "netns"}

// mayBeEmpty complete from the machine and may find nothing.
var mayBeEmpty = []string{"netns"}

// commandTree lists every command of latlab but help and cobra's hidden
// ones.
func commandTree(t *testing.T) []*cobra.Command {
	t.Helper()
	root := newRoot(&env{stdout: io.Discard, stderr: io.Discard})
	var out []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		out = append(out, c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return out
}

// path is a command's arguments after "latlab".
func path(c *cobra.Command) []string { return strings.Fields(c.CommandPath())[1:] }

// completions runs `latlab __complete ARGS...` and returns the candidates.
func completions(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, stderr := runCLI(t, append([]string{cobra.ShellCompRequestCmd}, args...)...)
	if code != ExitOK {
		t.Fatalf("__complete %q: exit %d: %s", args, code, stderr)
	}
	var cands []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" && !strings.HasPrefix(l, ":") {
			cands = append(cands, l)
		}
	}
	return cands
}

// Every command: -o where it prints results, --help exits 0, an unknown
// flag exits 2 naming the command's own help, and its value flags
// complete.
func TestCommandTreeConvention(t *testing.T) {
	cmds := commandTree(t)
	if len(cmds) < 20 {
		t.Fatalf("only %d commands in the tree", len(cmds))
	}
	for _, c := range cmds {
		name := c.CommandPath()
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			args := path(c)
			prints := !slices.Contains(noResults, name)
			if o := c.Flags().Lookup("output"); prints != (o != nil) {
				t.Errorf("%s: prints results %v, has -o %v", name, prints, o != nil)
			}
			if o := c.Flags().Lookup("output"); o != nil {
				if o.Shorthand != "o" || c.Flags().Lookup("json") == nil || c.Annotations[annotationOutput] == "" {
					t.Errorf("%s: -o/--output, --json and the annotation come together (addOutput)", name)
				}
			}
			if code, out, stderr := runCLI(t, append(args, "--help")...); code != ExitOK || !strings.Contains(out, "Usage:") {
				t.Errorf("%s --help: exit %d, %q %q", name, code, out, stderr)
			}
			code, _, stderr := runCLI(t, append(args, "--no-such-flag")...)
			hint := "Run '" + name + " --help' for usage."
			if len(args) == 0 {
				hint = "Run 'latlab --help'"
			}
			if code != ExitUsage || !strings.Contains(stderr, hint) {
				t.Errorf("%s --no-such-flag: exit %d, want %d with %q: %q", name, code, ExitUsage, hint, stderr)
			}
			c.Flags().VisitAll(func(f *pflag.Flag) {
				_, has := c.GetFlagCompletionFunc(f.Name)
				if slices.Contains(valueFlags, f.Name) && !has {
					t.Errorf("%s --%s: no completion", name, f.Name)
				}
				if !has || f.Hidden {
					return
				}
				cands := completions(t, append(args, "--"+f.Name, "")...)
				if len(cands) == 0 && !slices.Contains(mayBeEmpty, f.Name) {
					t.Errorf("%s --%s: no completion candidates", name, f.Name)
				}
			})
		})
	}
}

func TestListFlagsRepeatable(t *testing.T) {
	for _, mk := range []func(*env) *cobra.Command{newLabCmd, newDockerLabCmd} {
		for _, args := range [][]string{
			{"--mode", "host", "--mode", "macvlan"},
			{"--modes", "host,macvlan"},
			{"--modes", "host", "--mode", "macvlan"},
		} {
			c := mk(&env{stdout: io.Discard, stderr: io.Discard})
			if err := c.ParseFlags(args); err != nil {
				t.Fatalf("%s %q: %v", c.Name(), args, err)
			}
			if got, _ := c.Flags().GetStringSlice("modes"); !slices.Equal(got, []string{"host", "macvlan"}) {
				t.Errorf("%s %q: modes %q", c.Name(), args, got)
			}
		}
		c := mk(&env{stdout: io.Discard, stderr: io.Discard})
		c.ParseFlags([]string{"--workload", "tcp_rr", "--workloads", "udp_rr,tcp_crr"})
		if got, _ := c.Flags().GetStringSlice("workloads"); !slices.Equal(got, []string{"tcp_rr", "udp_rr", "tcp_crr"}) {
			t.Errorf("%s workloads %q", c.Name(), got)
		}
	}
	c := newLabCmd(&env{stdout: io.Discard, stderr: io.Discard})
	if err := c.ParseFlags([]string{"--offload", "all-on,seg-off", "--offload", "mine:tso=off,gro=off"}); err != nil {
		t.Fatal(err)
	}
	vals, _ := c.Flags().GetStringArray("offload")
	ps, err := parseOffloadFlags(vals)
	if err != nil || len(ps) != 3 || ps[2].Name != "mine" || len(ps[2].Settings) != 2 {
		t.Errorf("repeated --offload: %+v %v", ps, err)
	}
	if _, err := parseOffloadFlags([]string{"all-on", "all-on"}); err == nil {
		t.Error("a preset given twice is accepted")
	}
}

func TestOutputFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"version", "--json", "-o", "table"}, "conflict"},
		{[]string{"runs", "--json", "-o", "csv"}, "conflict"},
		{[]string{"runs", "--format", "json", "-o", "csv"}, "conflict"},
		{[]string{"version", "-o", "csv"}, "no CSV form"},
		{[]string{"cleanup", "-o", "csv"}, "no CSV form"},
		{[]string{"offload", "show", "-o", "csv", "lo"}, "no CSV form"},
		{[]string{"bench", "--target", "127.0.0.1", "-o", "xml"}, "unknown output format"},
		{[]string{"bench", "--target", "127.0.0.1", "--percentiles", "50,200"}, "percentile"},
		{[]string{"watch", "--config", "x.yaml", "-o", "json"}, "--check only"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("latlab %s: exit %d, want %d and %q: %q", strings.Join(tc.args, " "), code, ExitUsage, tc.want, stderr)
		}
	}
	// --json and -o json agree: no conflict.
	for _, args := range [][]string{{"version", "-o", "json"}, {"version", "--json"}, {"version", "--json", "-o", "json"}} {
		code, out, stderr := runCLI(t, args...)
		var doc struct {
			SchemaVersion int `json:"schema_version"`
			Start         struct {
				Version string `json:"latlab_version"`
				Command string `json:"command"`
				Host    struct {
					Kernel string `json:"kernel"`
					Cores  int    `json:"cores"`
				} `json:"host"`
			} `json:"start"`
			Protocol int `json:"protocol"`
		}
		if err := json.Unmarshal([]byte(out), &doc); code != ExitOK || err != nil || doc.SchemaVersion != 1 || doc.Start.Version != Version() ||
			doc.Start.Command != "latlab version" || doc.Start.Host.Cores < 1 || doc.Protocol != 1 {
			t.Errorf("latlab %s: exit %d, %v: %s %s", strings.Join(args, " "), code, err, out, stderr)
		}
	}
}

// Read-only commands never create a database; a missing one names the
// path and how to make one.
func TestReadOnlyCommandsNeverCreate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sub", "none.db")
	for _, args := range [][]string{
		{"runs"}, {"runs", "prune", "--older-than", "1d"}, {"show"}, {"compare", "1", "2"}, {"export"},
		{"report", "--html", "-"}, {"ui", "--listen", "127.0.0.1:0"},
	} {
		code, _, stderr := runCLI(t, append(args, "--db", db)...)
		if code != ExitFailed || !strings.Contains(stderr, "no database at "+db) || !strings.Contains(stderr, "latlab lab") {
			t.Errorf("latlab %s on a missing db: exit %d: %q", strings.Join(args, " "), code, stderr)
		}
		if _, err := os.Stat(filepath.Dir(db)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("latlab %s created %s", strings.Join(args, " "), filepath.Dir(db))
		}
	}
	// Completion of run ids does not create it either.
	if c := completions(t, "show", "--db", db, ""); !slices.ContainsFunc(c, func(s string) bool { return strings.HasPrefix(s, "latest") }) {
		t.Errorf("show completion without a db: %q", c)
	}
	if _, err := os.Stat(filepath.Dir(db)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("completion created the database")
	}
	// --db is only on commands that use the database.
	for _, c := range commandTree(t) {
		uses := slices.Contains([]string{"lab", "run", "runs", "runs prune", "show", "compare", "export", "ui", "report", "watch", "docker lab"},
			strings.Join(path(c), " "))
		if got := c.Flags().Lookup("db") != nil; got != uses {
			t.Errorf("%s: has --db %v, uses the database %v", c.CommandPath(), got, uses)
		}
	}
}

func TestRunIDCompletion(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.CreateRun(t.Context(), &store.Run{Kind: "lab", SpecName: "lab", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, args := range [][]string{{"show", "--db", db, ""}, {"compare", "--db", db, ""}, {"export", "--db", db, ""}, {"report", "--db", db, ""}} {
		c := completions(t, args...)
		if !slices.ContainsFunc(c, func(s string) bool { return strings.HasPrefix(s, strings.TrimSpace(jsonInt(id))+"\t") }) {
			t.Errorf("%s: run %d not offered: %q", args[0], id, c)
		}
	}
}

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }

// latlab completion SHELL writes a script; latlab man one page per command.
func TestCompletionAndMan(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, stderr := runCLI(t, "completion", sh)
		if code != ExitOK || !strings.Contains(out, "latlab") || len(out) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes, %s", sh, code, len(out), stderr)
		}
	}
	dir := filepath.Join(t.TempDir(), "man1")
	if code, _, stderr := runCLI(t, "man", "--dir", dir); code != ExitOK {
		t.Fatalf("man: exit %d: %s", code, stderr)
	}
	var want []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c.HasParent() || c.IsAdditionalHelpTopicCommand() {
			return
		}
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root := newRoot(&env{stdout: io.Discard, stderr: io.Discard})
	walk(root)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) || !slices.Contains(got, "latlab-lab.1") || !slices.Contains(got, "latlab-offload-show.1") {
		t.Errorf("man pages:\n got %q\nwant %q", got, want)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "latlab-lab.1"))
	if !strings.Contains(string(b), `\fB--modes\fP`) || !strings.Contains(string(b), ".TH \"LATLAB\"") {
		t.Errorf("latlab-lab.1 lacks its flags:\n%.400s", b)
	}
	if code, _, _ := runCLI(t, "man"); code != ExitUsage {
		t.Errorf("man without --dir: exit %d", code)
	}
}
