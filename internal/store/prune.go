package store

import (
	"context"
	"fmt"
	"time"
)

// PruneOptions tune DeleteRunsOlderThan.
type PruneOptions struct {
	// Force also deletes runs that an open alert or a pinned baseline
	// refers to (the alert then refers to no run; the pin is removed).
	Force bool
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
}

// PruneResult is what DeleteRunsOlderThan deleted (with DryRun: would
// delete).
type PruneResult struct {
	Runs         int
	Trials       int
	Environments int
	Annotations  int
	// Baselines is the number of pinned baselines removed (Force only).
	Baselines int
	// Protected are old runs kept because an open alert or a pinned
	// baseline refers to them (empty with Force).
	Protected []int64
	// Running is the number of old runs kept because they are still
	// running.
	Running int
}

// oldRuns selects the runs DeleteRunsOlderThan deletes: started before ?1,
// not running, and (unless ?2, force) not referred to by an open alert or
// a pinned baseline.
const oldRuns = `SELECT id FROM runs WHERE started < ?1 AND status != 'running' AND (?2 OR id NOT IN (
	SELECT run_id FROM alerts WHERE state = 'open' AND run_id IS NOT NULL
	UNION SELECT last_run_id FROM alerts WHERE state = 'open' AND last_run_id IS NOT NULL
	UNION SELECT run_id FROM baselines))`

// DeleteRunsOlderThan deletes the runs started before cutoff and
// everything that depends on them — trials, environment, annotations
// about them — in one transaction: a crash or an error deletes nothing.
// Running runs are never deleted. Runs an open alert or a pinned baseline
// refers to are kept unless o.Force; resolved alerts stay, referring to
// no run. Annotations about no run in particular stay. The database file
// keeps its size: sqlite reuses the freed pages.
func (s *Store) DeleteRunsOlderThan(ctx context.Context, cutoff time.Time, o PruneOptions) (PruneResult, error) {
	var res PruneResult
	wrap := func(err error) (PruneResult, error) {
		return PruneResult{}, fmt.Errorf("delete runs started before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	if cutoff.IsZero() {
		return wrap(fmt.Errorf("no cutoff"))
	}
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see Open): nobody writes in between
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback()
	at := fmtTime(cutoff)
	count := func(q string, out *int) error {
		return tx.QueryRowContext(ctx, q, at, o.Force).Scan(out)
	}
	for _, c := range []struct {
		q   string
		out *int
	}{
		{`SELECT COUNT(*) FROM (` + oldRuns + `)`, &res.Runs},
		{`SELECT COUNT(*) FROM trials WHERE run_id IN (` + oldRuns + `)`, &res.Trials},
		{`SELECT COUNT(*) FROM environments WHERE run_id IN (` + oldRuns + `)`, &res.Environments},
		{`SELECT COUNT(*) FROM annotations WHERE run_id IN (` + oldRuns + `)`, &res.Annotations},
		{`SELECT COUNT(*) FROM baselines WHERE run_id IN (` + oldRuns + `)`, &res.Baselines},
		{`SELECT COUNT(*) FROM runs WHERE started < ?1 AND status = 'running' AND ?2 IS NOT NULL`, &res.Running},
	} {
		if err := count(c.q, c.out); err != nil {
			return wrap(err)
		}
	}
	if !o.Force {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM runs WHERE started < ?1 AND status != 'running'
			AND id NOT IN (`+oldRuns+`) ORDER BY id`, at, o.Force)
		if err != nil {
			return wrap(err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return wrap(err)
			}
			res.Protected = append(res.Protected, id)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return wrap(err)
		}
	}
	if o.DryRun || res.Runs == 0 {
		return res, nil
	}
	// Dependents first, explicitly (not only through ON DELETE), then the
	// runs: oldRuns selects the same runs in every statement.
	for _, q := range []string{
		`DELETE FROM trials WHERE run_id IN (` + oldRuns + `)`,
		`DELETE FROM environments WHERE run_id IN (` + oldRuns + `)`,
		`DELETE FROM annotations WHERE run_id IN (` + oldRuns + `)`,
		`DELETE FROM baselines WHERE run_id IN (` + oldRuns + `)`,
		`UPDATE alerts SET run_id = NULL WHERE run_id IN (` + oldRuns + `)`,
		`UPDATE alerts SET last_run_id = NULL WHERE last_run_id IN (` + oldRuns + `)`,
		`DELETE FROM runs WHERE id IN (` + oldRuns + `)`,
	} {
		if _, err := tx.ExecContext(ctx, q, at, o.Force); err != nil {
			return wrap(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap(err)
	}
	return res, nil
}
