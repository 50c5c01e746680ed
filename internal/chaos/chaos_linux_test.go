package chaos_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/latlab/latlab/internal/docker/dockertest"
	"github.com/latlab/latlab/internal/experiment"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/server"
	"github.com/latlab/latlab/internal/store"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// scenario is one kind of latlab run the test kills.
type scenario struct {
	name string
	// runs is how many times it is started and killed.
	runs int
	args []string
	// maxDelay bounds the random moment of the kill: a little more than a
	// whole run, so some kills land after it finished (nothing to clean).
	maxDelay time.Duration
	// offloads: the run changes mine0's offloads (checked after cleanup).
	offloads bool
}

// TestKill9Chaos kills latlab with SIGKILL at random moments of a lab (with
// and without --attribute's eBPF programs), of an offload matrix on a
// pre-existing interface (sometimes with --keep) and of watch --once runs
// (a target job, and a lab job journalled under --journal-dir), 46 times in
// a random order, and after every kill runs `latlab cleanup` on
// the private journal directory and checks that nothing is left: no
// namespace with the run's prefix, no journal, the host namespace's links
// and nft tables as they were, no eBPF program or link more than before,
// mine0's offloads identical to the snapshot taken before, and the
// database opens with every complete run reading back. The seed is logged.
// TestKill9DockerLab does the same to `latlab docker lab`.
func TestKill9Chaos(t *testing.T) {
	testutil.RequireRoot(t)
	bin := dockertest.Latlab(t) // go build into t.TempDir(), once
	rng, dir, jdir, db := setup(t)
	hostBefore := hostState(t)
	bpfBefore := bpfState(t)

	// The pre-existing interface the offload matrix changes.
	_, ns := testutil.NewNetNS(t)
	testutil.NewVeth(t, ns, "mine0", "mine1")
	snap := features(t, ns, "mine0")

	// The server watch's target job measures, on loopback.
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx); close(served) }()
	t.Cleanup(func() { cancel(); <-served })

	spec := filepath.Join(dir, "offload.yaml")
	write(t, spec, "name: chaos-offload\nmodes: [host, bridge-nat]\nworkloads: [udp_rr]\noffloads: [seg-off, gro-on]\n"+
		"interfaces: [{netns: "+ns+", dev: mine0}]\nplacements: [{name: auto}]\ntrials: 2\nduration: 60ms\nwarmup: 0s\n")
	watchCfg := filepath.Join(dir, "watch.yaml")
	write(t, watchCfg, "jobs:\n  - name: chaos\n    schedule: \"@every 1h\"\n    target:\n      address: "+srv.Addr().String()+
		"\n      workloads: [tcp_rr]\n      trials: 8\n      duration: 60ms\n      warmup: 0s\n")

	// A watch lab job: its namespaces are journalled under --journal-dir.
	labSpec := filepath.Join(dir, "watchlab.yaml")
	write(t, labSpec, "name: chaos-watch-lab\nmodes: [host, veth-routed]\nworkloads: [tcp_rr]\nplacements: [{name: auto}]\ntrials: 2\nduration: 60ms\nwarmup: 0s\n")
	watchLabCfg := filepath.Join(dir, "watch-lab.yaml")
	write(t, watchLabCfg, "jobs:\n  - name: chaos-lab\n    schedule: \"@every 1h\"\n    spec: "+labSpec+"\n")

	common := []string{"--journal-dir", jdir, "--db", db, "-q"}
	scenarios := []scenario{
		{name: "lab", runs: 14, maxDelay: 800 * time.Millisecond,
			args: append([]string{"lab", "--modes", "host,veth-routed,bridge-nat", "--workloads", "tcp_rr", "--trials", "2",
				"-d", "60ms", "--warmup", "0s", "--calibrate=false"}, common...)},
		// --attribute loads and attaches the probe's eBPF programs: a
		// kill must not leave one attached.
		{name: "lab-attribute", runs: 4, maxDelay: 1200 * time.Millisecond,
			args: append([]string{"lab", "--modes", "host,veth-routed", "--workloads", "tcp_rr", "--trials", "2",
				"-d", "60ms", "--warmup", "0s", "--calibrate=false", "--attribute"}, common...)},
		{name: "offload", runs: 8, maxDelay: 1400 * time.Millisecond, offloads: true,
			args: append([]string{"run", spec}, common...)},
		{name: "offload-keep", runs: 4, maxDelay: 1400 * time.Millisecond, offloads: true,
			args: append([]string{"run", spec, "--keep"}, common...)},
		{name: "watch", runs: 10, maxDelay: 600 * time.Millisecond,
			args: []string{"watch", "--config", watchCfg, "--once", "--db", db}},
		{name: "watch-lab", runs: 6, maxDelay: 1200 * time.Millisecond,
			args: []string{"watch", "--config", watchLabCfg, "--once", "--db", db, "--journal-dir", jdir}},
	}
	var order []*scenario
	for i := range scenarios {
		for range scenarios[i].runs {
			order = append(order, &scenarios[i])
		}
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

	var prefixes []string // every run prefix seen, for the final check
	t.Cleanup(func() {
		// Whatever a failed iteration left: this test's own prefixes only.
		run(t, bin, "cleanup", "--journal-dir", jdir, "--docker-host", "none")
		for _, p := range prefixes {
			for _, n := range topo.NetNSNames(p + "-") {
				topo.DeleteNetNS(n)
			}
		}
	})
	start := time.Now()
	kills, completed, labUp, nicChanged, bpfUp := 0, 0, 0, 0, 0
	for i, sc := range order {
		kills++
		delay := time.Duration(rng.Int64N(int64(sc.maxDelay)))
		// What the run had changed at the moment it was killed: proof the
		// kills land where there is something to clean.
		frozen := func(ids []string) {
			for _, p := range ids {
				if len(topo.NetNSNames(p+"-")) > 0 {
					labUp++
					break
				}
			}
			if sc.offloads && !reflect.DeepEqual(features(t, ns, "mine0"), snap) {
				nicChanged++
			}
			if !reflect.DeepEqual(bpfState(t), bpfBefore) {
				bpfUp++
			}
		}
		ids, exited, tail := killAt(t, bin, sc.args, jdir, delay, frozen)
		if exited {
			completed++
		}
		prefixes = append(prefixes, ids...)
		what := fmt.Sprintf("#%d %s killed at %v (prefixes %v, finished first %v)", i, sc.name, delay.Round(time.Millisecond), ids, exited)

		code, out := run(t, bin, "cleanup", "--journal-dir", jdir, "--docker-host", "none")
		if code != 0 || strings.Contains(out, "kept:") {
			t.Fatalf("%s: cleanup exit %d:\n%s\nrun's output:\n%s", what, code, out, tail)
		}
		for _, p := range ids {
			if left := topo.NetNSNames(p + "-"); len(left) > 0 {
				t.Errorf("%s: namespaces left after cleanup: %v", what, left)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(jdir, "*.journal")); len(left) > 0 {
			t.Errorf("%s: journals left after cleanup: %v", what, left)
		}
		if now := hostState(t); !reflect.DeepEqual(now, hostBefore) {
			t.Errorf("%s: host namespace changed:\nbefore %v\nafter  %v", what, hostBefore, now)
		}
		// The kernel frees a dead process's programs and links after an
		// RCU grace period: give it a moment.
		bpfNow := bpfState(t)
		for wait := 0; wait < 30 && !reflect.DeepEqual(bpfNow, bpfBefore); wait++ {
			time.Sleep(100 * time.Millisecond)
			bpfNow = bpfState(t)
		}
		if !reflect.DeepEqual(bpfNow, bpfBefore) {
			t.Errorf("%s: eBPF programs or links left:\nbefore %v\nafter  %v", what, bpfBefore, bpfNow)
		}
		if sc.offloads {
			if now := features(t, ns, "mine0"); !reflect.DeepEqual(now, snap) {
				t.Errorf("%s: mine0's offloads differ from the snapshot: %v", what, diff(snap, now))
			}
		}
		checkStore(t, what, db)
		if t.Failed() {
			t.Logf("%s: run's output:\n%s", what, tail)
			break
		}
	}
	for _, p := range prefixes {
		if left := topo.NetNSNames(p + "-"); len(left) > 0 {
			t.Errorf("at the end: namespaces of %s left: %v", p, left)
		}
	}
	t.Logf("%d kills in %v: %d after the run had finished, %d with lab namespaces up, %d with mine0's offloads changed, %d with eBPF programs loaded",
		kills, time.Since(start).Round(time.Millisecond), completed, labUp, nicChanged, bpfUp)
	if labUp == 0 || nicChanged == 0 {
		t.Errorf("no kill caught a lab up (%d) or mine0 changed (%d): the test proves nothing", labUp, nicChanged)
	}
}

// setup gives a kill test its random source (the seed is logged, so a
// failure can be replayed) and its private directory, journal directory
// and database path.
func setup(t *testing.T) (rng *rand.Rand, dir, jdir, db string) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	dir = t.TempDir()
	return rand.New(rand.NewPCG(seed, seed>>7)), dir, filepath.Join(dir, "journal"), filepath.Join(dir, "latlab.db")
}

// killAt starts latlab with args and, after delay, stops it (SIGSTOP),
// reads which runs it journalled (their prefixes, the journal ids), calls
// frozen with them and kills it with SIGKILL. exited says the run had
// finished by itself first. tail is the end of its output, for failure
// messages.
func killAt(t *testing.T, bin string, args []string, jdir string, delay time.Duration, frozen func(ids []string)) (ids []string, exited bool, tail string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		exited = true
	case <-time.After(delay):
		// Frozen, it cannot create anything the listing below misses.
		cmd.Process.Signal(syscall.SIGSTOP)
		ids = journalIDs(jdir)
		frozen(ids)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	if exited {
		ids = journalIDs(jdir) // a --keep run leaves its journal
	}
	b := out.Bytes()
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return ids, exited, string(b)
}

// journalIDs lists the ids of the journals in dir, those being created
// included.
func journalIDs(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var ids []string
	for _, de := range ents {
		n := de.Name()
		if id, ok := strings.CutSuffix(n, ".journal"); ok {
			ids = append(ids, id)
		} else if rest, ok := strings.CutPrefix(n, ".creating-"); ok {
			// .creating-ID-RANDOM
			if k := strings.LastIndexByte(rest, '-'); k > 0 {
				ids = append(ids, rest[:k])
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// hostState is what the test namespace's caller (the host's namespace)
// has that a lab must never touch: its links and its nft tables.
func hostState(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list host links: %v", err)
	}
	var s []string
	for _, l := range links {
		a := l.Attrs()
		s = append(s, fmt.Sprintf("link %d %s %s", a.Index, a.Name, l.Type()))
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		s = append(s, "nft: "+err.Error())
	}
	for _, tb := range tables {
		s = append(s, fmt.Sprintf("nft table %d %s", tb.Family, tb.Name))
	}
	slices.Sort(s)
	return s
}

// bpfState lists the machine's loaded eBPF programs and links by type and
// program name (IDs change from run to run; names and counts do not).
// Other programs on the machine are in both lists and cancel out.
func bpfState(t *testing.T) []string {
	t.Helper()
	var s []string
	names := map[ebpf.ProgramID]string{}
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break // ErrNotExist: no more
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		if info, err := p.Info(); err == nil {
			names[id] = info.Name
			s = append(s, fmt.Sprintf("prog %v %s", info.Type, info.Name))
		}
		p.Close()
	}
	var it link.Iterator
	for it.Next() {
		if info, err := it.Link.Info(); err == nil {
			s = append(s, fmt.Sprintf("link %v %s", info.Type, names[info.Program]))
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("list eBPF links: %v", err)
	}
	slices.Sort(s)
	return s
}

func features(t *testing.T, ns, dev string) map[string]offload.State {
	t.Helper()
	s, err := offload.TakeSnapshot(ns, dev)
	if err != nil {
		t.Fatal(err)
	}
	return s.Features
}

func diff(a, b map[string]offload.State) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, fmt.Sprintf("%s %+v -> %+v", k, v, b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k+" appeared")
		}
	}
	slices.Sort(d)
	return d
}

// checkStore opens the database as a new latlab would and reads back
// every complete run with its trials.
func checkStore(t *testing.T, what, path string) {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return // killed before anything was recorded
	}
	st, err := store.Open(path)
	if err != nil {
		t.Fatalf("%s: open the database: %v", what, err)
	}
	defer st.Close()
	ctx := context.Background()
	runs, err := st.Runs(ctx, store.RunFilter{})
	if err != nil {
		t.Fatalf("%s: list runs: %v", what, err)
	}
	for _, r := range runs {
		if r.Status != store.StatusComplete {
			continue
		}
		o, _, err := experiment.LoadOutcome(ctx, st, r.ID)
		if err != nil {
			t.Errorf("%s: complete run %d (%s) does not read back: %v", what, r.ID, r.Kind, err)
			continue
		}
		if len(o.Trials) == 0 {
			t.Errorf("%s: complete run %d (%s) has no trials", what, r.ID, r.Kind)
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs latlab to completion and returns its exit code and output.
func run(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("latlab %v: %v", args, err)
	}
	return 0, string(out)
}
