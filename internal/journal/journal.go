// Package journal records every object latlab is about to create or change,
// before it does so, so that a run killed at any moment (kill -9 included)
// can be undone later by `latlab cleanup`.
//
// A journal is a file of JSON lines under a directory (default
// /run/latlab). Its owner holds an exclusive flock on it while it runs; the
// kernel drops the lock when the process dies, however it dies, so "can I
// take the lock?" is an exact test of "is the owner gone?", with no PID
// reuse races.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultDir is where journals live unless told otherwise.
const DefaultDir = "/run/latlab"

const suffix = ".journal"

// Entry is one journalled object. Kind says which undo handler owns it
// ("netns", "offload", ...); Name and NS identify the object; Data carries
// whatever else the handler needs (a snapshot to restore, for example).
type Entry struct {
	Kind string          `json:"kind"`
	Name string          `json:"name,omitempty"`
	NS   string          `json:"ns,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	Time time.Time       `json:"time"`
}

// Header is the first line of a journal.
type Header struct {
	ID      string    `json:"id"`
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
}

// kindKept marks a journal whose objects were left up on purpose (--keep):
// stale-journal sweeps at start leave it alone; `latlab cleanup` removes it.
const kindKept = "kept"

// Journal is an open, locked journal owned by this process.
type Journal struct {
	path string
	f    *os.File
}

// Create makes dir (0700) and a new journal id there, locks it and writes
// its header. The id must be unique (callers use their run's prefix).
func Create(dir, id, command string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create journal dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, id+suffix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create journal %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("lock journal %s: %w", path, err)
	}
	j := &Journal{path: path, f: f}
	h := Header{ID: id, PID: os.Getpid(), Command: command, Started: time.Now().UTC()}
	if err := j.writeLine(h); err != nil {
		j.f.Close()
		os.Remove(path)
		return nil, err
	}
	return j, nil
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Record appends e and syncs it to disk before returning: call it before
// creating the object it names.
func (j *Journal) Record(e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	return j.writeLine(e)
}

// MarkKept records that the objects are left up on purpose, and releases
// the journal: only `latlab cleanup` (Sweep with IncludeKept) removes them.
func (j *Journal) MarkKept() error {
	if err := j.Record(Entry{Kind: kindKept}); err != nil {
		return err
	}
	return j.f.Close()
}

// Remove deletes the journal after its objects are gone.
func (j *Journal) Remove() error {
	err := os.Remove(j.path)
	j.f.Close()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal: %w", err)
	}
	return nil
}

func (j *Journal) writeLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	b = append(b, '\n')
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("write journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync journal %s: %w", j.path, err)
	}
	return nil
}

// Undo undoes one entry; it must treat an object that is already gone as
// success.
type Undo func(Entry) error

// SweepOptions configure Sweep.
type SweepOptions struct {
	// IncludeKept also removes journals marked kept (--keep).
	IncludeKept bool
	// Handlers maps an entry kind to its undo function. Entries of kinds
	// without a handler make the journal fail to sweep (and stay), so no
	// object is forgotten silently.
	Handlers map[string]Undo
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
// gone, and removes it. Journals still locked by a live process are left
// alone. A missing dir is nothing to do.
func Sweep(dir string, opts SweepOptions) (SweepResult, error) {
	var res SweepResult
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("read journal dir %s: %w", dir, err)
	}
	for _, de := range ents {
		if de.IsDir() || !strings.HasSuffix(de.Name(), suffix) {
			continue
		}
		path := filepath.Join(dir, de.Name())
		if err := sweepOne(path, opts, &res); err != nil {
			res.Errors = append(res.Errors, err)
		}
	}
	return res, errors.Join(res.Errors...)
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
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			res.Busy = append(res.Busy, path)
			return nil
		}
		return fmt.Errorf("lock journal %s: %w", path, err)
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

// Read parses a journal: its entries in order, and whether it is marked
// kept. A torn last line (a crash mid-write) is ignored: the object it
// would have named was never created, because Record returns before
// creation starts.
func Read(f *os.File) (entries []Entry, kept bool, err error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	first := true
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if first {
			first = false
			var h Header
			if json.Unmarshal(line, &h) == nil && h.ID != "" {
				continue
			}
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			continue
		}
		if e.Kind == kindKept {
			kept = true
			continue
		}
		entries = append(entries, e)
	}
	return entries, kept, sc.Err()
}
