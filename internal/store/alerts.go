package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AlertState is an alert's state.
type AlertState string

// Alert states: an alert is open until a later run is back within the
// baseline, then resolved.
const (
	AlertOpen     AlertState = "open"
	AlertResolved AlertState = "resolved"
)

// Alert is a regression that latlab watch found in one configuration and
// metric of a job.
type Alert struct {
	ID        int64
	Job       string
	ConfigKey string
	Metric    string // rate, p50, p99
	State     AlertState
	// OpenedAt defaults to now in OpenAlert; ResolvedAt is zero while open.
	OpenedAt   time.Time
	ResolvedAt time.Time
	// RunID opened the alert; LastRunID is the latest run that still
	// showed it (or that resolved it). 0 for none (a deleted run).
	RunID     int64
	LastRunID int64
	Summary   string
	// Suspects are what changed in the environment across the shift
	// ("kernel 6.1→6.6"); a JSON array of strings, nil for none.
	Suspects json.RawMessage
	// DedupeKey identifies the alert while it is open; OpenAlert sets it
	// to AlertKey(Job, ConfigKey, Metric) when empty.
	DedupeKey string
}

// AlertKey is the default dedupe key of an alert.
func AlertKey(job, configKey, metric string) string {
	return job + "\x1f" + configKey + "\x1f" + metric
}

// AlertFilter selects alerts; zero fields select everything.
type AlertFilter struct {
	State     AlertState
	Job       string
	DedupeKey string
	Limit     int // at most this many (0: no limit)
}

const alertColumns = `id, job, config_key, metric, state, opened_at, resolved_at, run_id, last_run_id,
	summary, suspects, dedupe_key`

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// OpenAlert records a as open, unless an alert with the same dedupe key
// is open already: then that one's LastRunID is set to a.RunID and a is
// filled in from it. opened tells which happened. a.ID, State, OpenedAt
// and DedupeKey are set either way. The check and the insert are one
// transaction, and a unique index on open keys backs it, so two watchers
// cannot open the same alert twice.
func (s *Store) OpenAlert(ctx context.Context, a *Alert) (opened bool, err error) {
	wrap := func(err error) error { return fmt.Errorf("open alert %s/%s/%s: %w", a.Job, a.ConfigKey, a.Metric, err) }
	if a.DedupeKey == "" {
		a.DedupeKey = AlertKey(a.Job, a.ConfigKey, a.Metric)
	}
	if a.OpenedAt.IsZero() {
		a.OpenedAt = time.Now()
	}
	sus, err := nullJSON("suspects", a.Suspects)
	if err != nil {
		return false, wrap(err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, wrap(err)
	}
	defer tx.Rollback()
	old, err := scanAlert(tx.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE dedupe_key = ? AND state = 'open'`, a.DedupeKey))
	switch {
	case err == nil:
		if a.RunID != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE alerts SET last_run_id = ? WHERE id = ?`, a.RunID, old.ID); err != nil {
				return false, wrap(err)
			}
			old.LastRunID = a.RunID
		}
		if err := tx.Commit(); err != nil {
			return false, wrap(err)
		}
		*a = old
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, wrap(err)
	}
	if a.LastRunID == 0 {
		a.LastRunID = a.RunID
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO alerts
		(job, config_key, metric, state, opened_at, run_id, last_run_id, summary, suspects, dedupe_key)
		VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)`,
		a.Job, a.ConfigKey, a.Metric, fmtTime(a.OpenedAt), nullID(a.RunID), nullID(a.LastRunID),
		a.Summary, sus, a.DedupeKey)
	if err != nil {
		return false, wrap(err)
	}
	if a.ID, err = res.LastInsertId(); err != nil {
		return false, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return false, wrap(err)
	}
	a.State, a.ResolvedAt = AlertOpen, time.Time{}
	return true, nil
}

// ResolveAlert marks open alert id resolved at time at by run runID (0:
// by hand). Resolving an alert that is not open fails with ErrNotFound.
func (s *Store) ResolveAlert(ctx context.Context, id, runID int64, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE alerts SET state = 'resolved', resolved_at = ?,
		last_run_id = COALESCE(?, last_run_id) WHERE id = ? AND state = 'open'`, fmtTime(at), nullID(runID), id)
	if err != nil {
		return fmt.Errorf("resolve alert %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("resolve alert %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("resolve alert %d: no open alert: %w", id, ErrNotFound)
	}
	return nil
}

// Alerts lists alerts, newest first.
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE (?1 = '' OR state = ?1) AND (?2 = '' OR job = ?2) AND (?3 = '' OR dedupe_key = ?3)
		ORDER BY opened_at DESC, id DESC LIMIT ?4`, string(f.State), f.Job, f.DedupeKey, limitArg(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		s.rowsRead.Add(1)
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

func scanAlert(r interface{ Scan(...any) error }) (Alert, error) {
	var (
		a             Alert
		state, opened string
		resolved, sus sql.NullString
		run, last     sql.NullInt64
	)
	if err := r.Scan(&a.ID, &a.Job, &a.ConfigKey, &a.Metric, &state, &opened, &resolved, &run, &last,
		&a.Summary, &sus, &a.DedupeKey); err != nil {
		return Alert{}, err
	}
	a.State, a.RunID, a.LastRunID, a.Suspects = AlertState(state), run.Int64, last.Int64, rawJSON(sus)
	var err error
	if a.OpenedAt, err = parseTime(opened); err != nil {
		return Alert{}, err
	}
	if resolved.Valid {
		if a.ResolvedAt, err = parseTime(resolved.String); err != nil {
			return Alert{}, err
		}
	}
	return a, nil
}

// PinBaseline makes run runID job's baseline (replacing any earlier pin).
func (s *Store) PinBaseline(ctx context.Context, job string, runID int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("pin baseline of %s: %w", job, err)
	}
	defer tx.Rollback()
	if err := runExists(ctx, tx, runID); err != nil {
		return fmt.Errorf("pin baseline of %s: %w", job, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO baselines (job, run_id, pinned_at) VALUES (?, ?, ?)
		ON CONFLICT (job) DO UPDATE SET run_id = excluded.run_id, pinned_at = excluded.pinned_at`,
		job, runID, fmtTime(time.Now())); err != nil {
		return fmt.Errorf("pin baseline of %s: %w", job, err)
	}
	return tx.Commit()
}

// UnpinBaseline removes job's pinned baseline, if any.
func (s *Store) UnpinBaseline(ctx context.Context, job string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM baselines WHERE job = ?`, job); err != nil {
		return fmt.Errorf("unpin baseline of %s: %w", job, err)
	}
	return nil
}

// Baseline returns the run pinned as job's baseline; ErrNotFound if none.
func (s *Store) Baseline(ctx context.Context, job string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT run_id FROM baselines WHERE job = ?`, job).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("baseline of %s: %w", job, err)
	}
	return id, nil
}

// JobTrials returns the trials of the latest limit (<= 0: all) runs of
// job, oldest run first, trials in run order, without their histograms
// and counters: what regression detection over a job's history reads,
// kept light (a histogram is up to 200 KiB).
func (s *Store) JobTrials(ctx context.Context, job string, limit int) ([]Trial, error) {
	cols := strings.NewReplacer("hist,", "NULL,", "counters,", "NULL,").Replace(trialColumns)
	rows, err := s.db.QueryContext(ctx, `SELECT `+cols+` FROM trials WHERE run_id IN (
		SELECT id FROM runs WHERE job_name = ? ORDER BY started DESC, id DESC LIMIT ?)
		ORDER BY (SELECT started FROM runs WHERE runs.id = trials.run_id), run_id, round, ord`,
		job, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("trials of job %s: %w", job, err)
	}
	ts, err := s.scanTrials(rows)
	if err != nil {
		return nil, fmt.Errorf("trials of job %s: %w", job, err)
	}
	return ts, nil
}
