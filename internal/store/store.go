package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is wrapped by every error about a run that does not exist,
// and by LatestRun on an empty database.
var ErrNotFound = errors.New("not found")

// Status is a run's state.
type Status string

// Run states. A run is running until FinishRun; one left running by a
// process that died becomes incomplete through MarkStaleRunsIncomplete.
const (
	StatusRunning    Status = "running"
	StatusComplete   Status = "complete"
	StatusIncomplete Status = "incomplete"
)

func (s Status) valid() bool {
	return s == StatusRunning || s == StatusComplete || s == StatusIncomplete
}

// busyTimeout is how long a statement waits for another connection's
// write lock before failing with "database is locked". Write transactions
// here last milliseconds; the margin covers a slow disk's fsync.
const busyTimeout = 10 * time.Second

// Store is an open results database. It is safe for concurrent use, and
// several processes may have the same file open.
type Store struct {
	db   *sql.DB
	path string
	// rowsRead counts the rows queries have read (RowsRead).
	rowsRead atomic.Int64
	// alive reports whether a run's owner (see ownerToken) still runs;
	// tests replace it.
	alive func(owner string) bool
}

// DefaultPath is where the database lives unless told otherwise: $LATLAB_DB
// if set; /var/lib/latlab/latlab.db for root; otherwise
// $XDG_DATA_HOME/latlab/latlab.db, falling back to
// ~/.local/share/latlab/latlab.db. Note that root and other users see
// different databases (sudo latlab writes /var/lib/latlab).
func DefaultPath() string {
	if p := os.Getenv("LATLAB_DB"); p != "" {
		return p
	}
	const system = "/var/lib/latlab/latlab.db"
	if os.Geteuid() == 0 {
		return system
	}
	// The XDG spec says to ignore a relative XDG_DATA_HOME.
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "latlab", "latlab.db")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "latlab", "latlab.db")
	}
	return system
}

// Open opens (creating it and its parent directories if needed) the
// database at path and brings its schema up to date. It fails with an
// error wrapping ErrSchemaTooNew if a newer latlab wrote the database.
//
// The file must be on a local filesystem: WAL mode needs shared memory
// between the processes using it.
func Open(path string) (*Store, error) {
	return openAt(path, len(migrations))
}

// ErrNoDatabase: OpenExisting found no database file at the path.
var ErrNoDatabase = errors.New("no database")

// OpenExisting opens the database at path like Open, but never creates
// it: commands that only read runs use it, so a mistyped --db does not
// leave an empty database behind. A missing file fails with an error
// wrapping ErrNoDatabase (and fs.ErrNotExist) that names the path. An
// existing database is still brought up to date, as Open does.
func OpenExisting(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open store: %w at %s: %w", ErrNoDatabase, abs, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("open store %s: is a directory, not a database", abs)
	}
	return openAt(abs, len(migrations))
}

// openAt is Open stopping the schema at version (tests build old
// databases with it).
func openAt(path string, version int) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	// Every connection of the pool gets these pragmas:
	//  - busy_timeout: wait for another writer instead of failing with
	//    "database is locked" (the driver applies it first);
	//  - journal_mode=WAL: readers never block the writer and vice versa,
	//    and a killed writer's partial transaction is simply ignored;
	//  - synchronous=FULL: a commit is on disk when AddTrial returns.
	//    NORMAL would already survive kill -9 in WAL mode, but may lose the
	//    last commits on power loss or a kernel crash, and latlab does
	//    fiddle with the kernel. A trial takes about a second, so an fsync
	//    per commit costs nothing that matters;
	//  - foreign_keys: sqlite leaves them off by default.
	// _txlock=immediate makes every transaction BEGIN IMMEDIATE: it takes
	// the write lock up front, waiting busy_timeout for it, instead of
	// failing at its first write when another connection got there first.
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	// A file: URI escapes whatever the path holds ('?', '#', '%').
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := migrate(ctx, db, abs, version); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return &Store{db: db, path: abs, alive: ownerAlive}, nil
}

// createPrivate creates the database's directories (0700) and the empty
// database file (0600) when they do not exist, so that results, specs and
// annotations are the owner's alone; sqlite gives its -wal and -shm files
// the database file's mode. Both are chmodded after creation, since the
// umask applies to the create call. Directories and files that already
// exist are left as they are: they are someone's choice.
func createPrivate(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
	} else if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("create database: %w", err)
	}
	return f.Close()
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// RowsRead is how many rows (runs, trials, alerts, aggregate rows) this
// Store's queries have returned since Open: a diagnostic that lets tests
// show what a page or a scrape costs.
func (s *Store) RowsRead() int64 { return s.rowsRead.Load() }

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Run is one invocation of latlab that produced trials.
type Run struct {
	ID int64
	// Started defaults to now in CreateRun. Finished is zero while the run
	// is running.
	Started  time.Time
	Finished time.Time
	// Status defaults to StatusRunning in CreateRun.
	Status Status
	// SpecName names the spec; Spec is its full text (YAML).
	SpecName string
	Spec     string
	Seed     uint64
	// Version is latlab's version.
	Version string
	// Kind says which command made the run: "lab", "run", "watch", ...
	Kind string
	// JobName is the scheduled job the run belongs to; "" for none.
	JobName string
}

// Trial is one configuration measured once within a run. Its metrics are
// the caller's; the store does not compute them.
type Trial struct {
	ID    int64
	RunID int64
	// Round and Order place the trial in the run: every round runs every
	// configuration once, in a shuffled order.
	Round int
	Order int
	// ConfigKey identifies the configuration across runs; AddTrial sets it
	// to ConfigKey(Mode, Workload, Offload, Size, Placement) when empty.
	ConfigKey string
	Mode      string
	Workload  string
	Offload   string // offload preset
	Size      int    // request size, bytes
	Placement string
	// Metrics.
	Transactions  int64
	DurationS     float64
	RatePerSec    float64
	ThroughputBps float64
	P50Ns         int64
	P90Ns         int64
	P99Ns         int64
	P999Ns        int64
	MaxNs         int64
	Lost          int64
	// Error is why the trial failed; "" for success.
	Error string
	// Hist is the latency histogram, hist.Histogram.MarshalBinary; nil for
	// none.
	Hist []byte
	// Counters are kernel counters (JSON); nil for none.
	Counters json.RawMessage
	// Started defaults to now in AddTrial.
	Started time.Time
}

// ConfigKey is the canonical key of a configuration, the one AddTrial
// uses when Trial.ConfigKey is empty.
func ConfigKey(mode, workload, offload string, size int, placement string) string {
	return fmt.Sprintf("mode=%s workload=%s offload=%s size=%d placement=%s",
		mode, workload, offload, size, placement)
}

// Environment describes the machine a run ran on. JSON fields may be nil.
type Environment struct {
	RunID    int64
	Kernel   string
	CPUModel string
	Cores    int
	Offload  json.RawMessage // offload state
	Sysctls  json.RawMessage
	Qdiscs   json.RawMessage
	Version  string // latlab version
	Extra    json.RawMessage
}

// Annotation is a timestamped note, about one run or (RunID nil) about
// whatever happened at that time ("upgraded the kernel").
type Annotation struct {
	ID    int64
	RunID *int64
	Time  time.Time
	Text  string
}

// RunFilter selects runs; zero fields select everything.
type RunFilter struct {
	Limit   int // at most this many runs (0: no limit)
	Offset  int // skip this many of the selected runs first (paging)
	Status  Status
	Kind    string
	JobName string
}

const timeFormat = "2006-01-02T15:04:05.000000000Z"

// fmtTime formats t so that text order is time order.
func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q in database: %w", s, err)
	}
	return t, nil
}

// nullString maps "" to NULL.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// nullJSON maps an empty value to NULL and refuses invalid JSON.
func nullJSON(what string, m json.RawMessage) (sql.NullString, error) {
	if len(m) == 0 {
		return sql.NullString{}, nil
	}
	if !json.Valid(m) {
		return sql.NullString{}, fmt.Errorf("%s is not valid JSON", what)
	}
	return sql.NullString{String: string(m), Valid: true}, nil
}

func rawJSON(n sql.NullString) json.RawMessage {
	if !n.Valid {
		return nil
	}
	return json.RawMessage(n.String)
}

// limitArg maps "no limit" (<= 0) to sqlite's LIMIT -1.
func limitArg(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// CreateRun records a new run, sets r.ID and returns it. Unset Started
// and Status default to now and StatusRunning. The run is owned by this
// process, for MarkStaleRunsIncomplete.
func (s *Store) CreateRun(ctx context.Context, r *Run) (int64, error) {
	if r.Started.IsZero() {
		r.Started = time.Now()
	}
	if r.Status == "" {
		r.Status = StatusRunning
	}
	if !r.Status.valid() {
		return 0, fmt.Errorf("create run: bad status %q", r.Status)
	}
	if r.Kind == "" {
		return 0, errors.New("create run: no kind")
	}
	var finished sql.NullString
	if !r.Finished.IsZero() {
		finished = nullString(fmtTime(r.Finished))
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO runs
		(started, finished, status, spec_name, spec, seed, version, kind, job_name, owner)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		fmtTime(r.Started), finished, string(r.Status), r.SpecName, r.Spec, int64(r.Seed),
		r.Version, r.Kind, nullString(r.JobName), ownerToken(os.Getpid()))
	if err != nil {
		return 0, fmt.Errorf("create run: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("create run: %w", err)
	}
	r.ID = id
	return id, nil
}

// FinishRun sets a run's final status (complete or incomplete) and finish
// time.
func (s *Store) FinishRun(ctx context.Context, id int64, status Status, finished time.Time) error {
	if status != StatusComplete && status != StatusIncomplete {
		return fmt.Errorf("finish run %d: bad status %q", id, status)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET status = ?, finished = ? WHERE id = ?`,
		string(status), fmtTime(finished), id)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("finish run %d: %w", id, ErrNotFound)
	}
	return nil
}

// runExists fails with ErrNotFound unless run id exists.
func runExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	return err
}

// AddTrial records a trial of run t.RunID in its own transaction, sets
// t.ID and returns it. When it returns nil the trial is on disk. Unset
// ConfigKey and Started default as documented on Trial.
func (s *Store) AddTrial(ctx context.Context, t *Trial) (int64, error) {
	wrap := func(err error) error { return fmt.Errorf("add trial to run %d: %w", t.RunID, err) }
	if t.ConfigKey == "" {
		t.ConfigKey = ConfigKey(t.Mode, t.Workload, t.Offload, t.Size, t.Placement)
	}
	if t.Started.IsZero() {
		t.Started = time.Now()
	}
	counters, err := nullJSON("counters", t.Counters)
	if err != nil {
		return 0, wrap(err)
	}
	var blob any // nil slice → NULL
	if len(t.Hist) > 0 {
		blob = t.Hist
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, wrap(err)
	}
	defer tx.Rollback()
	if err := runExists(ctx, tx, t.RunID); err != nil {
		return 0, wrap(err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO trials
		(run_id, round, ord, config_key, mode, workload, offload, size, placement,
		 transactions, duration_s, rate_per_sec, throughput_bps,
		 p50_ns, p90_ns, p99_ns, p999_ns, max_ns, lost, error, hist, counters, started)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.RunID, t.Round, t.Order, t.ConfigKey, t.Mode, t.Workload, t.Offload, t.Size, t.Placement,
		t.Transactions, t.DurationS, t.RatePerSec, t.ThroughputBps,
		t.P50Ns, t.P90Ns, t.P99Ns, t.P999Ns, t.MaxNs, t.Lost, t.Error, blob, counters, fmtTime(t.Started))
	if err != nil {
		return 0, wrap(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, wrap(err)
	}
	t.ID = id
	return id, nil
}

// SetEnvironment records (or replaces) the environment of run e.RunID.
func (s *Store) SetEnvironment(ctx context.Context, e *Environment) error {
	wrap := func(err error) error { return fmt.Errorf("set environment of run %d: %w", e.RunID, err) }
	var js [4]sql.NullString
	for i, f := range []struct {
		name string
		v    json.RawMessage
	}{{"offload", e.Offload}, {"sysctls", e.Sysctls}, {"qdiscs", e.Qdiscs}, {"extra", e.Extra}} {
		var err error
		if js[i], err = nullJSON(f.name, f.v); err != nil {
			return wrap(err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback()
	if err := runExists(ctx, tx, e.RunID); err != nil {
		return wrap(err)
	}
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO environments
		(run_id, kernel, cpu_model, cores, offload, sysctls, qdiscs, version, extra)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.RunID, e.Kernel, e.CPUModel, e.Cores, js[0], js[1], js[2], e.Version, js[3])
	if err != nil {
		return wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return wrap(err)
	}
	return nil
}

// Annotate records a note timestamped now, about run *runID or, with a
// nil runID, about no run in particular.
func (s *Store) Annotate(ctx context.Context, runID *int64, text string) error {
	what := "annotate"
	if runID != nil {
		what = fmt.Sprintf("annotate run %d", *runID)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if runID != nil {
		if err := runExists(ctx, tx, *runID); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO annotations (run_id, time, text) VALUES (?, ?, ?)`,
		runID, fmtTime(time.Now()), text); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

const runColumns = `id, started, finished, status, spec_name, spec, seed, version, kind, job_name`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var (
		r                 Run
		started, status   string
		finished, jobName sql.NullString
		seed              int64
	)
	if err := sc.Scan(&r.ID, &started, &finished, &status, &r.SpecName, &r.Spec, &seed,
		&r.Version, &r.Kind, &jobName); err != nil {
		return r, err
	}
	var err error
	if r.Started, err = parseTime(started); err != nil {
		return r, err
	}
	if finished.Valid {
		if r.Finished, err = parseTime(finished.String); err != nil {
			return r, err
		}
	}
	r.Status, r.Seed, r.JobName = Status(status), uint64(seed), jobName.String
	return r, nil
}

// Runs lists the runs f selects, newest first.
func (s *Store) Runs(ctx context.Context, f RunFilter) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM runs
		WHERE (?1 = '' OR status = ?1) AND (?2 = '' OR kind = ?2) AND (?3 = '' OR job_name = ?3)
		ORDER BY started DESC, id DESC LIMIT ?4 OFFSET ?5`,
		string(f.Status), f.Kind, f.JobName, limitArg(f.Limit), max(f.Offset, 0))
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		s.rowsRead.Add(1)
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// Run returns run id.
func (s *Store) Run(ctx context.Context, id int64) (Run, error) {
	s.rowsRead.Add(1)
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Run{}, fmt.Errorf("run %d: %w", id, err)
	}
	return r, nil
}

// LatestRun returns the most recently started run, whatever its status.
func (s *Store) LatestRun(ctx context.Context) (Run, error) {
	s.rowsRead.Add(1)
	r, err := scanRun(s.db.QueryRowContext(ctx,
		`SELECT `+runColumns+` FROM runs ORDER BY started DESC, id DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("no runs: %w", ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("latest run: %w", err)
	}
	return r, nil
}

const trialColumns = `id, run_id, round, ord, config_key, mode, workload, offload, size, placement,
	transactions, duration_s, rate_per_sec, throughput_bps,
	p50_ns, p90_ns, p99_ns, p999_ns, max_ns, lost, error, hist, counters, started`

func (s *Store) scanTrials(rows *sql.Rows) ([]Trial, error) {
	defer rows.Close()
	var out []Trial
	for rows.Next() {
		s.rowsRead.Add(1)
		var (
			t        Trial
			counters sql.NullString
			started  string
		)
		if err := rows.Scan(&t.ID, &t.RunID, &t.Round, &t.Order, &t.ConfigKey, &t.Mode, &t.Workload,
			&t.Offload, &t.Size, &t.Placement, &t.Transactions, &t.DurationS, &t.RatePerSec,
			&t.ThroughputBps, &t.P50Ns, &t.P90Ns, &t.P99Ns, &t.P999Ns, &t.MaxNs, &t.Lost, &t.Error,
			&t.Hist, &counters, &started); err != nil {
			return nil, err
		}
		t.Counters = rawJSON(counters)
		var err error
		if t.Started, err = parseTime(started); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Trials returns run runID's trials in the order they ran (round, then
// order within the round).
func (s *Store) Trials(ctx context.Context, runID int64) ([]Trial, error) {
	if err := runExists(ctx, s.db, runID); err != nil {
		return nil, fmt.Errorf("trials of run %d: %w", runID, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+trialColumns+` FROM trials
		WHERE run_id = ? ORDER BY round, ord, id`, runID)
	if err != nil {
		return nil, fmt.Errorf("trials of run %d: %w", runID, err)
	}
	ts, err := s.scanTrials(rows)
	if err != nil {
		return nil, fmt.Errorf("trials of run %d: %w", runID, err)
	}
	return ts, nil
}

// ConfigHistory returns up to limit (<= 0: all) trials of one
// configuration across every run, newest first: the history regression
// detection compares against. Failed trials and trials of incomplete runs
// are included; Trial.Error and the run's status tell them apart.
func (s *Store) ConfigHistory(ctx context.Context, configKey string, limit int) ([]Trial, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+trialColumns+` FROM trials
		WHERE config_key = ? ORDER BY started DESC, id DESC LIMIT ?`, configKey, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("history of %q: %w", configKey, err)
	}
	ts, err := s.scanTrials(rows)
	if err != nil {
		return nil, fmt.Errorf("history of %q: %w", configKey, err)
	}
	return ts, nil
}

// Environment returns run runID's environment; ErrNotFound if none was
// set.
func (s *Store) Environment(ctx context.Context, runID int64) (Environment, error) {
	var (
		e                   Environment
		off, sys, qd, extra sql.NullString
	)
	err := s.db.QueryRowContext(ctx, `SELECT run_id, kernel, cpu_model, cores, offload, sysctls,
		qdiscs, version, extra FROM environments WHERE run_id = ?`, runID).
		Scan(&e.RunID, &e.Kernel, &e.CPUModel, &e.Cores, &off, &sys, &qd, &e.Version, &extra)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Environment{}, fmt.Errorf("environment of run %d: %w", runID, err)
	}
	e.Offload, e.Sysctls, e.Qdiscs, e.Extra = rawJSON(off), rawJSON(sys), rawJSON(qd), rawJSON(extra)
	return e, nil
}

// Annotations returns, oldest first, the annotations of run *runID, or
// with a nil runID every annotation (about a run or not): a timeline.
func (s *Store) Annotations(ctx context.Context, runID *int64) ([]Annotation, error) {
	what := "annotations"
	if runID != nil {
		what = fmt.Sprintf("annotations of run %d", *runID)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, run_id, time, text FROM annotations
		WHERE ?1 IS NULL OR run_id = ?1 ORDER BY time, id`, runID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Annotation
	for rows.Next() {
		var (
			a   Annotation
			run sql.NullInt64
			tm  string
		)
		if err := rows.Scan(&a.ID, &run, &tm, &a.Text); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if run.Valid {
			a.RunID = &run.Int64
		}
		if a.Time, err = parseTime(tm); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
