package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// RunGroup is the runs of one kind and job ("" for none): how many there
// are in each status, and the latest complete one.
type RunGroup struct {
	Kind    string
	JobName string
	// Counts is the number of runs in each status.
	Counts map[Status]int
	// LatestComplete is the group's most recently started complete run
	// (ID 0: none).
	LatestComplete Run
}

// RunGroups returns every (kind, job) group of runs, ordered by job then
// kind, at most limit of them (<= 0: all): what /metrics reports. It reads
// a summary the database keeps up to date on every insert, update and
// delete of a run (schema version 4), plus one indexed lookup per group
// for its latest complete run: its cost depends on the number of groups,
// not of runs.
func (s *Store) RunGroups(ctx context.Context, limit int) ([]RunGroup, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, job_name, status, runs FROM run_groups
		WHERE runs > 0 ORDER BY job_name, kind, status`)
	if err != nil {
		return nil, fmt.Errorf("run groups: %w", err)
	}
	defer rows.Close()
	var out []RunGroup
	for rows.Next() {
		s.rowsRead.Add(1)
		var (
			kind, job, status string
			n                 int
		)
		if err := rows.Scan(&kind, &job, &status, &n); err != nil {
			return nil, fmt.Errorf("run groups: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Kind != kind || out[len(out)-1].JobName != job {
			if limit > 0 && len(out) == limit {
				break
			}
			out = append(out, RunGroup{Kind: kind, JobName: job, Counts: map[Status]int{}})
		}
		out[len(out)-1].Counts[Status(status)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("run groups: %w", err)
	}
	rows.Close()
	for i := range out {
		g := &out[i]
		if g.Counts[StatusComplete] == 0 {
			continue
		}
		s.rowsRead.Add(1)
		r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs
			WHERE kind = ? AND job_name IS ? AND status = 'complete' ORDER BY started DESC, id DESC LIMIT 1`,
			g.Kind, nullString(g.JobName)))
		if err == sql.ErrNoRows {
			continue // deleted since the summary was read
		}
		if err != nil {
			return nil, fmt.Errorf("run groups: latest complete run of %s/%s: %w", g.Kind, g.JobName, err)
		}
		g.LatestComplete = r
	}
	return out, nil
}

// RunCounts is the number of runs in each status, from the same summary
// as RunGroups (it does not count the runs).
func (s *Store) RunCounts(ctx context.Context) (map[Status]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, SUM(runs) FROM run_groups GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	defer rows.Close()
	out := map[Status]int{}
	for rows.Next() {
		s.rowsRead.Add(1)
		var (
			st string
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count runs: %w", err)
		}
		out[Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	return out, nil
}

// TrialCount is how many trials a run has, and how many of them failed.
type TrialCount struct {
	Trials int
	Failed int
}

// TrialCounts counts the trials of each run in ids, without reading the
// trials themselves (a run list shows counts, not histograms). Runs
// without trials are absent from the map.
func (s *Store) TrialCounts(ctx context.Context, ids []int64) (map[int64]TrialCount, error) {
	out := map[int64]TrialCount{}
	// Chunks keep the statement under sqlite's bound-parameter limit.
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, `SELECT run_id, COUNT(*), COALESCE(SUM(error != ''), 0) FROM trials
			WHERE run_id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`) GROUP BY run_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("count trials: %w", err)
		}
		for rows.Next() {
			s.rowsRead.Add(1)
			var (
				id int64
				c  TrialCount
			)
			if err := rows.Scan(&id, &c.Trials, &c.Failed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("count trials: %w", err)
			}
			out[id] = c
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("count trials: %w", err)
		}
	}
	return out, nil
}

// PreviousRun is the id of the run of the same kind and job started just
// before r (0: none), in any status: one indexed lookup.
func (s *Store) PreviousRun(ctx context.Context, r Run) (int64, error) {
	var id int64
	s.rowsRead.Add(1)
	err := s.db.QueryRowContext(ctx, `SELECT id FROM runs
		WHERE kind = ?1 AND job_name IS ?2 AND (started < ?3 OR (started = ?3 AND id < ?4))
		ORDER BY started DESC, id DESC LIMIT 1`, r.Kind, nullString(r.JobName), fmtTime(r.Started), r.ID).Scan(&id)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("run before %d: %w", r.ID, err)
	}
	return id, nil
}
