package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations is the schema's history, oldest first. migrations[i] takes a
// database from version i to version i+1 (PRAGMA user_version). Entries are
// only ever appended: an applied migration is never edited, since
// databases in the field already ran it.
//
// Times are TEXT in a fixed-width UTC RFC 3339 form with nanoseconds (see
// fmtTime), so they sort as text and sqlite's date functions read them.
var migrations = []string{
	// 1: runs and their trials.
	`CREATE TABLE runs (
		id        INTEGER PRIMARY KEY,
		started   TEXT NOT NULL,
		finished  TEXT,
		status    TEXT NOT NULL CHECK (status IN ('running', 'complete', 'incomplete')),
		spec_name TEXT NOT NULL DEFAULT '',
		spec      TEXT NOT NULL DEFAULT '', -- the spec as YAML
		seed      INTEGER NOT NULL DEFAULT 0, -- uint64 stored bit for bit
		version   TEXT NOT NULL DEFAULT '', -- latlab version
		kind      TEXT NOT NULL, -- lab, run, watch, ...
		job_name  TEXT,
		owner     TEXT NOT NULL DEFAULT '' -- boot_id/pid/starttime of the writer
	);
	CREATE INDEX runs_started ON runs (started);
	CREATE TABLE trials (
		id             INTEGER PRIMARY KEY,
		run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		round          INTEGER NOT NULL,
		ord            INTEGER NOT NULL, -- position within the round
		config_key     TEXT NOT NULL,
		mode           TEXT NOT NULL DEFAULT '',
		workload       TEXT NOT NULL DEFAULT '',
		offload        TEXT NOT NULL DEFAULT '',
		size           INTEGER NOT NULL DEFAULT 0,
		placement      TEXT NOT NULL DEFAULT '',
		transactions   INTEGER NOT NULL DEFAULT 0,
		duration_s     REAL NOT NULL DEFAULT 0,
		rate_per_sec   REAL NOT NULL DEFAULT 0,
		throughput_bps REAL NOT NULL DEFAULT 0,
		p50_ns         INTEGER NOT NULL DEFAULT 0,
		p90_ns         INTEGER NOT NULL DEFAULT 0,
		p99_ns         INTEGER NOT NULL DEFAULT 0,
		p999_ns        INTEGER NOT NULL DEFAULT 0,
		max_ns         INTEGER NOT NULL DEFAULT 0,
		lost           INTEGER NOT NULL DEFAULT 0,
		error          TEXT NOT NULL DEFAULT '',
		hist           BLOB, -- hist.Histogram.MarshalBinary
		counters       TEXT, -- kernel counters, JSON
		started        TEXT NOT NULL
	);
	CREATE INDEX trials_run ON trials (run_id, round, ord);
	CREATE INDEX trials_config ON trials (config_key, started);`,

	// 2: what the runs ran on, and free-text notes.
	`CREATE TABLE environments (
		run_id    INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
		kernel    TEXT NOT NULL DEFAULT '',
		cpu_model TEXT NOT NULL DEFAULT '',
		cores     INTEGER NOT NULL DEFAULT 0,
		offload   TEXT, -- JSON
		sysctls   TEXT, -- JSON
		qdiscs    TEXT, -- JSON
		version   TEXT NOT NULL DEFAULT '',
		extra     TEXT -- JSON
	);
	CREATE TABLE annotations (
		id     INTEGER PRIMARY KEY,
		run_id INTEGER REFERENCES runs (id) ON DELETE CASCADE, -- NULL: not about one run
		time   TEXT NOT NULL,
		text   TEXT NOT NULL
	);
	CREATE INDEX annotations_run ON annotations (run_id);
	CREATE INDEX annotations_time ON annotations (time);`,

	// 3: regression alerts raised by latlab watch, and pinned baselines.
	`CREATE TABLE alerts (
		id          INTEGER PRIMARY KEY,
		job         TEXT NOT NULL,
		config_key  TEXT NOT NULL,
		metric      TEXT NOT NULL, -- rate, p50, p99
		state       TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
		opened_at   TEXT NOT NULL,
		resolved_at TEXT,
		run_id      INTEGER REFERENCES runs (id) ON DELETE SET NULL, -- the run that opened it
		last_run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL, -- the latest run that saw it
		summary     TEXT NOT NULL DEFAULT '',
		suspects    TEXT, -- JSON array of strings
		dedupe_key  TEXT NOT NULL
	);
	-- At most one open alert per key; resolved ones are history.
	CREATE UNIQUE INDEX alerts_open_key ON alerts (dedupe_key) WHERE state = 'open';
	CREATE INDEX alerts_job ON alerts (job, opened_at);
	CREATE TABLE baselines (
		job       TEXT PRIMARY KEY,
		run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		pinned_at TEXT NOT NULL
	);`,

	// 4: a per-(kind, job, status) run count kept by triggers, so that
	// /metrics and the runs list never count or scan every run, and an
	// index that finds each group's latest run in one seek.
	`CREATE TABLE run_groups (
		kind     TEXT NOT NULL,
		job_name TEXT NOT NULL DEFAULT '', -- '' for runs of no job (runs.job_name NULL)
		status   TEXT NOT NULL,
		runs     INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (kind, job_name, status)
	);
	INSERT INTO run_groups (kind, job_name, status, runs)
		SELECT kind, COALESCE(job_name, ''), status, COUNT(*) FROM runs GROUP BY 1, 2, 3;
	CREATE TRIGGER run_groups_insert AFTER INSERT ON runs BEGIN
		INSERT INTO run_groups (kind, job_name, status, runs) VALUES (NEW.kind, COALESCE(NEW.job_name, ''), NEW.status, 1)
			ON CONFLICT (kind, job_name, status) DO UPDATE SET runs = runs + 1;
	END;
	CREATE TRIGGER run_groups_delete AFTER DELETE ON runs BEGIN
		UPDATE run_groups SET runs = runs - 1
			WHERE kind = OLD.kind AND job_name = COALESCE(OLD.job_name, '') AND status = OLD.status;
	END;
	CREATE TRIGGER run_groups_update AFTER UPDATE OF kind, job_name, status ON runs BEGIN
		UPDATE run_groups SET runs = runs - 1
			WHERE kind = OLD.kind AND job_name = COALESCE(OLD.job_name, '') AND status = OLD.status;
		INSERT INTO run_groups (kind, job_name, status, runs) VALUES (NEW.kind, COALESCE(NEW.job_name, ''), NEW.status, 1)
			ON CONFLICT (kind, job_name, status) DO UPDATE SET runs = runs + 1;
	END;
	CREATE INDEX runs_group_latest ON runs (kind, job_name, status, started, id);`,
}

// ErrSchemaTooNew is wrapped by Open when the database was written by a
// newer latlab than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this latlab")

// schemaVersion reads PRAGMA user_version.
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate brings the database up to version target (len(migrations) in
// production; tests stop earlier). Each migration runs in its own
// transaction together with the user_version bump, so a crash leaves the
// database at some version, never between two. Transactions begin
// IMMEDIATE (see Open), so two processes opening a fresh database at once
// serialise, and the loser sees the version already bumped and skips.
func migrate(ctx context.Context, db *sql.DB, path string, target int) error {
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("%s: version %d, this latlab knows up to %d (upgrade latlab): %w",
			path, v, len(migrations), ErrSchemaTooNew)
	}
	for next := v + 1; next <= target; next++ {
		if err := applyMigration(ctx, db, next); err != nil {
			return fmt.Errorf("%s: migrate to version %d: %w", path, next, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, version int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cur, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if cur >= version {
		return nil // another process got there first
	}
	if _, err := tx.ExecContext(ctx, migrations[version-1]); err != nil {
		return err
	}
	// PRAGMA takes no bound parameters; version is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		return err
	}
	return tx.Commit()
}
