package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a set of undo handlers that remember what they undid.
type recorder struct {
	mu   sync.Mutex
	done []string
	fail map[string]error
}

func (r *recorder) handlers(kinds ...string) map[string]Undo {
	h := map[string]Undo{}
	for _, k := range kinds {
		h[k] = func(e Entry) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			if err := r.fail[e.Name]; err != nil {
				return err
			}
			r.done = append(r.done, e.Kind+":"+e.Name)
			return nil
		}
	}
	return h
}

func (r *recorder) undone() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.done)
}

func create(t *testing.T, dir, id string) *Journal {
	t.Helper()
	j, err := Create(dir, id, "test")
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// A live journal is left alone; a kept one only with IncludeKept; entries
// are undone newest first, entries marked undone are not, and the journal
// is removed.
func TestSweepKeptAndUndone(t *testing.T) {
	dir := t.TempDir()
	j := create(t, dir, "latlab-aaaaaa")
	for _, e := range []Entry{
		{Kind: "netns", Name: "latlab-aaaaaa-a"},
		{Kind: "offload", Name: "mine0", NS: "/run/netns/latlab-t-1"},
		{Kind: "netns", Name: "latlab-aaaaaa-b"},
	} {
		if err := j.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	r := &recorder{}
	h := r.handlers("netns", "offload")
	res, err := Sweep(dir, SweepOptions{IncludeKept: true, Handlers: h})
	if err != nil || len(res.Busy) != 1 || len(r.undone()) != 0 {
		t.Fatalf("live journal: %+v %v, undone %v", res, err, r.undone())
	}
	// The offload was put back by its owner before it kept the rest.
	if err := j.Undone(Entry{Kind: "offload", Name: "mine0", NS: "/run/netns/latlab-t-1"}); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkKept(); err != nil {
		t.Fatal(err)
	}
	if err := j.Record(Entry{Kind: "netns", Name: "latlab-aaaaaa-c"}); err == nil {
		t.Errorf("Record after MarkKept succeeded")
	}
	res, err = Sweep(dir, SweepOptions{Handlers: h})
	if err != nil || len(res.Kept) != 1 || len(r.undone()) != 0 {
		t.Fatalf("kept journal without IncludeKept: %+v %v, undone %v", res, err, r.undone())
	}
	res, err = Sweep(dir, SweepOptions{IncludeKept: true, Handlers: h})
	if err != nil || len(res.Journals) != 1 {
		t.Fatalf("cleanup: %+v %v", res, err)
	}
	if got, want := r.undone(), []string{"netns:latlab-aaaaaa-b", "netns:latlab-aaaaaa-a"}; !slices.Equal(got, want) {
		t.Errorf("undone %v, want %v (newest first, the restored offload not again)", got, want)
	}
	if _, err := os.Stat(j.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal still there after the sweep: %v", err)
	}
}

// A failing undo, an entry no handler owns and a damaged journal all keep
// the journal, with an error naming it.
func TestSweepKeepsJournalOnError(t *testing.T) {
	dir := t.TempDir()
	r := &recorder{fail: map[string]error{"latlab-bbbbbb-a": errors.New("engine unreachable")}}
	j := create(t, dir, "latlab-bbbbbb")
	j.Record(Entry{Kind: "netns", Name: "latlab-bbbbbb-a"})
	j.Record(Entry{Kind: "netns", Name: "latlab-bbbbbb-b"})
	j.MarkKept()
	res, err := Sweep(dir, SweepOptions{IncludeKept: true, Handlers: r.handlers("netns")})
	if err == nil || !strings.Contains(err.Error(), "engine unreachable") || !strings.Contains(err.Error(), j.Path()) || len(res.Journals) != 0 {
		t.Fatalf("failing undo: %+v %v", res, err)
	}
	if _, err := os.Stat(j.Path()); err != nil {
		t.Fatalf("journal gone after a failed undo: %v", err)
	}
	// Fixed: the next sweep finishes it.
	r.fail = nil
	if res, err := Sweep(dir, SweepOptions{IncludeKept: true, Handlers: r.handlers("netns")}); err != nil || len(res.Journals) != 1 {
		t.Fatalf("second sweep: %+v %v", res, err)
	}

	j = create(t, dir, "latlab-cccccc")
	j.Record(Entry{Kind: "docker", Name: "latlab-dcccccc"})
	j.MarkKept()
	if _, err := Sweep(dir, SweepOptions{IncludeKept: true, Handlers: r.handlers("netns")}); err == nil || !strings.Contains(err.Error(), `no handler for "docker"`) {
		t.Errorf("unknown kind: %v", err)
	}
	os.Remove(j.Path())

	// A bad line in the middle: nothing is undone.
	j = create(t, dir, "latlab-dddddd")
	j.Record(Entry{Kind: "netns", Name: "latlab-dddddd-a"})
	j.MarkKept()
	f, _ := os.OpenFile(j.Path(), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("garbage\n" + `{"kind":"netns","name":"latlab-dddddd-b"}` + "\n")
	f.Close()
	before := len(r.undone())
	if _, err := Sweep(dir, SweepOptions{IncludeKept: true, Handlers: r.handlers("netns")}); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("damaged journal: %v", err)
	}
	if n := len(r.undone()) - before; n != 0 {
		t.Errorf("a damaged journal was half undone: %d entries", n)
	}
}

// A run killed mid-write leaves a torn last line: the sweep undoes what
// was complete and removes the journal.
func TestSweepAfterTornWrite(t *testing.T) {
	dir := t.TempDir()
	j := create(t, dir, "latlab-eeeeee")
	j.Record(Entry{Kind: "netns", Name: "latlab-eeeeee-a"})
	f, _ := os.OpenFile(j.Path(), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"kind":"netns","name":"latlab-eee`)
	f.Close()
	j.f.Close() // the owner dies: its lock goes with its descriptor
	r := &recorder{}
	res, err := Sweep(dir, SweepOptions{Handlers: r.handlers("netns")})
	if err != nil || len(res.Journals) != 1 || !slices.Equal(r.undone(), []string{"netns:latlab-eeeeee-a"}) {
		t.Fatalf("sweep: %+v %v, undone %v", res, err, r.undone())
	}
}

// Create refuses ids that are not plain names and ids already taken;
// Record refuses the kinds the journal writes itself.
func TestCreateAndRecordRefuse(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"", "../x", "a/b", ".hidden"} {
		if j, err := Create(dir, id, "test"); err == nil {
			j.Remove()
			t.Errorf("Create(%q) succeeded", id)
		}
	}
	j := create(t, dir, "latlab-ffffff")
	defer j.Remove()
	if _, err := Create(dir, "latlab-ffffff", "test"); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create of the same id: %v, want ErrExist", err)
	}
	for _, e := range []Entry{{}, {Kind: "kept"}, {Kind: "undone", Undoes: "netns"}, {Kind: "netns", Undoes: "netns"}} {
		if err := j.Record(e); err == nil {
			t.Errorf("Record(%+v) succeeded", e)
		}
	}
	if err := j.Undone(Entry{Kind: "kept"}); err == nil {
		t.Errorf("Undone of a reserved kind succeeded")
	}
	left, _ := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	if len(left) != 0 {
		t.Errorf("temporary files left by Create: %v", left)
	}
	b, _ := os.ReadFile(j.Path())
	var h Header
	if err := json.Unmarshal(b[:strings.IndexByte(string(b), '\n')], &h); err != nil || h.ID != "latlab-ffffff" || h.PID != os.Getpid() {
		t.Errorf("header %q: %+v %v", b, h, err)
	}
	if st, err := os.Stat(j.Path()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("journal mode: %v %v, want 0600", st.Mode(), err)
	}
}

// A temporary journal its creator abandoned (killed between making it and
// linking it) is removed once old and unlocked; a young or locked one is
// left alone.
func TestSweepAbandonedTemporary(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * tmpGrace)
	mk := func(name string, age time.Time) string {
		p := filepath.Join(dir, tmpPrefix+name)
		if err := os.WriteFile(p, []byte(header), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, age, age)
		return p
	}
	abandoned := mk("latlab-111111-1", old)
	young := mk("latlab-222222-2", time.Now())
	locked := mk("latlab-333333-3", old)
	f, _ := os.Open(locked)
	defer f.Close()
	if err := lock(f); err != nil {
		t.Fatal(err)
	}
	if _, err := Sweep(dir, SweepOptions{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{abandoned: false, young: true, locked: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// Create is atomic against a concurrent sweep: however the two interleave,
// no sweep ever undoes or removes a journal whose owner lives, and every
// journal Create returns is the file at its path, header first.
func TestCreateAtomicAgainstConcurrentSweep(t *testing.T) {
	dir := t.TempDir()
	var undone atomic.Int64
	h := map[string]Undo{"netns": func(Entry) error { undone.Add(1); return nil }}
	stop := make(chan struct{})
	var sweeps atomic.Int64
	var wg sync.WaitGroup
	var sweepErr atomic.Value
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := Sweep(dir, SweepOptions{IncludeKept: true, Handlers: h}); err != nil {
					sweepErr.Store(err)
				}
				sweeps.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(time.Second)
	n := 0
	for ; time.Now().Before(deadline) || n < 100; n++ {
		id := fmt.Sprintf("latlab-%06x", n)
		j, err := Create(dir, id, "test")
		if err != nil {
			t.Fatalf("Create %d: %v", n, err)
		}
		name := id + "-a"
		if err := j.Record(Entry{Kind: "netns", Name: name}); err != nil {
			t.Fatalf("Record %d: %v", n, err)
		}
		b, err := os.ReadFile(j.Path())
		if err != nil {
			t.Fatalf("journal %d is gone while its owner lives: %v", n, err)
		}
		es, _, err := Read(strings.NewReader(string(b)))
		if err != nil || len(es) != 1 || es[0].Name != name {
			t.Fatalf("journal %d at its path: %q: %v", n, b, err)
		}
		if err := j.Remove(); err != nil {
			t.Fatalf("Remove %d: %v", n, err)
		}
	}
	close(stop)
	wg.Wait()
	if err, _ := sweepErr.Load().(error); err != nil {
		t.Errorf("a sweep failed: %v", err)
	}
	if u := undone.Load(); u != 0 {
		t.Errorf("sweeps undid %d entries of live journals", u)
	}
	t.Logf("%d journals created against %d concurrent sweeps", n, sweeps.Load())
}
