package journal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultDir is where journals live unless told otherwise.
const DefaultDir = "/run/latlab"

const (
	suffix = ".journal"
	// tmpPrefix starts the name of a journal being created (not yet
	// linked into place). Sweep ignores such files while they are locked
	// or young and removes them otherwise: nothing was journalled in them.
	tmpPrefix = ".creating-"
	// tmpGrace is how old an unlocked temporary journal must be before
	// Sweep removes it: Create locks it microseconds after making it.
	tmpGrace = time.Minute
	// maxLine bounds one line (an offload snapshot is a few KiB).
	maxLine = 16 << 20
)

// Reserved entry kinds: written by the journal itself, refused by Record.
const (
	// kindKept marks a journal whose objects were left up on purpose
	// (--keep): stale-journal sweeps at start leave it alone; `latlab
	// cleanup` removes it.
	kindKept = "kept"
	// kindUndone is a tombstone: the newest earlier entry with the same
	// kind (Undoes), name and namespace was undone by its owner and must
	// not be undone again.
	kindUndone = "undone"
)

// Entry is one journalled object. Kind says which undo handler owns it
// ("netns", "offload", ...); Name and NS identify the object; Data carries
// whatever else the handler needs (a snapshot to restore, for example).
type Entry struct {
	Kind string          `json:"kind"`
	Name string          `json:"name,omitempty"`
	NS   string          `json:"ns,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	Time time.Time       `json:"time"`
	// Undoes is set on tombstones only: the kind of the entry undone.
	Undoes string `json:"undoes,omitempty"`
}

// Header is the first line of a journal.
type Header struct {
	ID      string    `json:"id"`
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
}

// Journal is an open, locked journal owned by this process. Its methods
// may be called from several goroutines.
type Journal struct {
	path string
	dir  string

	mu sync.Mutex
	f  *os.File
	// broken is set after a write failed part-way: appending after a torn
	// line would turn it into a bad line in the middle of the journal.
	broken error
}

// Create makes dir (0700) and a new journal id there, locked, with its
// header written and synced. The id must be unique (callers use their
// run's prefix): a journal of that id already there is an error.
//
// The file is made, locked and given its header under a temporary name
// and only then linked to its real name, so no Sweep can find it unlocked
// or without a header while this process lives.
func Create(dir, id, command string) (*Journal, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return nil, fmt.Errorf("create journal %q: want a plain name", id)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create journal dir %s: %w", dir, err)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, id+suffix)
	f, err := os.CreateTemp(dir, tmpPrefix+id+"-*")
	if err != nil {
		return nil, fmt.Errorf("create journal %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) (*Journal, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := lock(f); err != nil {
		return fail(fmt.Errorf("lock journal %s: %w", tmp, err))
	}
	j := &Journal{path: path, dir: dir, f: f}
	h := Header{ID: id, PID: os.Getpid(), Command: command, Started: time.Now().UTC()}
	if err := j.writeLine(h); err != nil {
		return fail(err)
	}
	// link fails if the name is taken: the O_EXCL of the real name.
	if err := os.Link(tmp, path); err != nil {
		return fail(fmt.Errorf("create journal %s: %w", path, err))
	}
	if err := os.Remove(tmp); err != nil {
		os.Remove(path)
		return fail(fmt.Errorf("create journal %s: remove temporary name: %w", path, err))
	}
	if err := syncDir(dir); err != nil {
		os.Remove(path)
		return fail(fmt.Errorf("create journal %s: %w", path, err))
	}
	return j, nil
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Record appends e and syncs it to disk before returning: call it before
// creating the object it names. Kind must be set and not one the journal
// reserves for itself ("kept", "undone").
func (j *Journal) Record(e Entry) error {
	if e.Kind == "" || e.Kind == kindKept || e.Kind == kindUndone {
		return fmt.Errorf("journal %s: record entry of kind %q: not an object kind", j.path, e.Kind)
	}
	if e.Undoes != "" {
		return fmt.Errorf("journal %s: record %s %s: only tombstones undo", j.path, e.Kind, e.Name)
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	return j.write(e)
}

// Undone records that the object of an earlier entry (matched by kind,
// name and namespace) was undone by this process — an offload snapshot put
// back at the end of the run — so no sweep undoes it again: a kept
// journal then no longer reverts that object to a stale state.
func (j *Journal) Undone(e Entry) error {
	if e.Kind == "" || e.Kind == kindKept || e.Kind == kindUndone {
		return fmt.Errorf("journal %s: mark %q entry undone: not an object kind", j.path, e.Kind)
	}
	return j.write(Entry{Kind: kindUndone, Undoes: e.Kind, Name: e.Name, NS: e.NS, Time: time.Now().UTC()})
}

// MarkKept records that the objects are left up on purpose, and releases
// the journal: only `latlab cleanup` (Sweep with IncludeKept) removes them.
func (j *Journal) MarkKept() error {
	err := j.write(Entry{Kind: kindKept, Time: time.Now().UTC()})
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return err
	}
	if cerr := j.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close journal %s: %w", j.path, cerr)
	}
	j.f = nil
	return err
}

// Remove deletes the journal after its objects are gone.
func (j *Journal) Remove() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := os.Remove(j.path)
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal %s: %w", j.path, err)
	}
	if err := syncDir(j.dir); err != nil {
		return fmt.Errorf("remove journal %s: %w", j.path, err)
	}
	return nil
}

func (j *Journal) write(v any) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.writeLine(v)
}

// writeLine appends one JSON line and syncs it; j.mu is held (or j is not
// shared yet).
func (j *Journal) writeLine(v any) error {
	if j.f == nil {
		return fmt.Errorf("write journal %s: already released", j.path)
	}
	if j.broken != nil {
		return fmt.Errorf("write journal %s: an earlier write failed: %w", j.path, j.broken)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	b = append(b, '\n')
	if _, err := j.f.Write(b); err != nil {
		j.broken = err
		return fmt.Errorf("write journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		j.broken = err
		return fmt.Errorf("sync journal %s: %w", j.path, err)
	}
	return nil
}

// Undo undoes one entry; it must treat an object that is already gone as
// success.
type Undo func(Entry) error

// RequirePrefix wraps u so that it refuses, without calling u, an entry
// whose Name is not a plain name starting with prefix: a journal edited by
// hand (or corrupted) must not make a sweep delete somebody else's
// namespace or containers. A refused entry keeps its journal, with an
// error.
func RequirePrefix(prefix string, u Undo) Undo {
	return func(e Entry) error {
		if !strings.HasPrefix(e.Name, prefix) || len(e.Name) == len(prefix) || strings.ContainsAny(e.Name, `/\`) || strings.Contains(e.Name, "..") {
			return fmt.Errorf("refusing to undo %s %q: not a name latlab gives (%s...)", e.Kind, e.Name, prefix)
		}
		return u(e)
	}
}

// Undoers is a registry of undo handlers by entry kind. Each package that
// journals a kind offers its handlers as an Undoers value
// (experiment.UndoHandlers, dockerlab.UndoHandlers) and the program builds
// the registry it sweeps with at wiring time (internal/cli): there is no
// package-level registry, so a package that only undoes does not have to
// import the one that creates.
type Undoers map[string]Undo

// With returns a new registry with u's handlers and then more's (a kind in
// both gets more's handler).
func (u Undoers) With(more ...Undoers) Undoers {
	out := make(Undoers, len(u))
	for k, h := range u {
		out[k] = h
	}
	for _, m := range more {
		for k, h := range m {
			out[k] = h
		}
	}
	return out
}

// SweepOptions configure Sweep.
type SweepOptions struct {
	// IncludeKept also removes journals marked kept (--keep).
	IncludeKept bool
	// Handlers maps an entry kind to its undo function. Entries of kinds
	// without a handler make the journal fail to sweep (and stay), so no
	// object is forgotten silently.
	Handlers Undoers
}

// SweepResult says what a sweep did.
type SweepResult struct {
	Journals []string // journals removed
	Undone   []Entry  // entries undone
	Busy     []string // journals still owned by a live process (left alone)
	Kept     []string // kept journals left alone (IncludeKept false)
	Errors   []error
}

// Sweep undoes, newest entry first, every journal in dir whose owner is
// gone, and removes it. A dir not owned by this process's user, or
// writable by group or others, is refused whole (checkDir). Journals still locked by a live process are left
// alone, and so is a journal whose undo fails (it is reported in Errors
// and kept for the next sweep). A missing dir is nothing to do.
func Sweep(dir string, opts SweepOptions) (SweepResult, error) {
	var res SweepResult
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("read journal dir %s: %w", dir, err)
	}
	// A directory others can write into is not swept: its journals may
	// be anyone's, and a sweep undoes what they name as root.
	if err := checkDir(dir); err != nil {
		res.Errors = append(res.Errors, err)
		return res, err
	}
	removed := false
	for _, de := range ents {
		name := de.Name()
		path := filepath.Join(dir, name)
		switch {
		case de.IsDir():
		case strings.HasPrefix(name, tmpPrefix):
			if gone, err := sweepTemp(path); err != nil {
				res.Errors = append(res.Errors, err)
			} else if gone {
				removed = true
			}
		case strings.HasSuffix(name, suffix):
			n := len(res.Journals)
			if err := sweepOne(path, opts, &res); err != nil {
				res.Errors = append(res.Errors, err)
			}
			removed = removed || len(res.Journals) > n
		}
	}
	if removed {
		if err := syncDir(dir); err != nil {
			res.Errors = append(res.Errors, fmt.Errorf("sweep %s: %w", dir, err))
		}
	}
	return res, errors.Join(res.Errors...)
}

// sweepTemp removes a temporary journal that its creator abandoned: old and
// not locked. It never lists objects (Create links it into place before it
// returns the journal), so there is nothing to undo.
func sweepTemp(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open journal %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat journal %s: %w", path, err)
	}
	if time.Since(st.ModTime()) < tmpGrace {
		return false, nil
	}
	if err := lock(f); err != nil {
		if isBusy(err) {
			return false, nil
		}
		return false, fmt.Errorf("lock journal %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("remove journal %s: %w", path, err)
	}
	return true, nil
}

func sweepOne(path string, opts SweepOptions, res *SweepResult) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open journal %s: %w", path, err)
	}
	defer f.Close()
	if err := lock(f); err != nil {
		if isBusy(err) {
			res.Busy = append(res.Busy, path)
			return nil
		}
		return fmt.Errorf("lock journal %s: %w", path, err)
	}
	// Another sweep may have undone and removed it between our open and
	// our lock: the file we hold is then no longer the one at path.
	if cur, err := os.Stat(path); err != nil || !sameFile(f, cur) {
		return nil
	}
	entries, kept, err := Read(f)
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if kept && !opts.IncludeKept {
		res.Kept = append(res.Kept, path)
		return nil
	}
	var errs []error
	for _, e := range slices.Backward(entries) {
		h, ok := opts.Handlers[e.Kind]
		if !ok {
			errs = append(errs, fmt.Errorf("journal %s: no handler for %q entries", path, e.Kind))
			continue
		}
		if err := h(e); err != nil {
			errs = append(errs, fmt.Errorf("journal %s: undo %s %s: %w", path, e.Kind, e.Name, err))
			continue
		}
		res.Undone = append(res.Undone, e)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal %s: %w", path, err)
	}
	res.Journals = append(res.Journals, path)
	return nil
}

func sameFile(f *os.File, fi os.FileInfo) bool {
	st, err := f.Stat()
	return err == nil && os.SameFile(st, fi)
}

// Read parses a journal: its entries still to undo, in order, and whether
// it is marked kept. The first line must be the header. Tombstones
// ("undone" lines) remove the newest earlier entry they name; one that
// names nothing is ignored (undoing nothing is harmless). A torn last line
// — no newline at the end of the file, as a crash mid-write leaves — is
// skipped when it does not parse: Record returns only after the whole line
// is written, so the object it would name was never created. Any other
// line that does not parse is an error, so a damaged journal is never
// half undone.
func Read(r io.Reader) (entries []Entry, kept bool, err error) {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, complete, err := readLine(br)
		if err != nil {
			return nil, false, fmt.Errorf("read line %d: %w", n, err)
		}
		if line == nil {
			return entries, kept, nil
		}
		var perr error
		if n == 1 {
			perr = parseHeader(line)
		} else {
			var e Entry
			if perr = parseEntry(line, &e); perr == nil {
				switch e.Kind {
				case kindKept:
					kept = true
				case kindUndone:
					entries = fold(entries, e)
				default:
					entries = append(entries, e)
				}
			}
		}
		if perr != nil {
			if !complete {
				// A torn last line: see above.
				return entries, kept, nil
			}
			return nil, false, fmt.Errorf("line %d: %w", n, perr)
		}
	}
}

// readLine returns the next line without its newline, whether it had one,
// and nil at the end.
func readLine(br *bufio.Reader) (line []byte, complete bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return nil, false, fmt.Errorf("longer than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return buf[:len(buf)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) == 0 {
				return nil, false, nil
			}
			return buf, false, nil
		default:
			return nil, false, err
		}
	}
}

func parseHeader(line []byte) error {
	var h struct {
		Header
		Kind string `json:"kind"`
	}
	if err := strictJSON(line, &h); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if h.ID == "" || h.Kind != "" {
		return errors.New("header: not a journal header (no id)")
	}
	return nil
}

func parseEntry(line []byte, e *Entry) error {
	if err := strictJSON(line, e); err != nil {
		return err
	}
	switch {
	case e.Kind == "":
		return errors.New("entry without a kind")
	case e.Kind == kindUndone && e.Undoes == "":
		return errors.New("undone entry without the kind it undoes")
	case e.Kind != kindUndone && e.Undoes != "":
		return fmt.Errorf("%s entry with an undoes field", e.Kind)
	}
	return nil
}

// strictJSON decodes exactly one JSON object from line (json.Unmarshal
// refuses trailing data).
func strictJSON(line []byte, v any) error {
	if len(line) == 0 || line[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(line, v)
}

// fold applies tombstone t: the newest entry it names is dropped.
func fold(entries []Entry, t Entry) []Entry {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Kind == t.Undoes && e.Name == t.Name && e.NS == t.NS {
			return slices.Delete(entries, i, i+1)
		}
	}
	return entries
}
