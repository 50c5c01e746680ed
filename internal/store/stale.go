package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A run's owner is recorded as "boot_id/pid/starttime": the kernel's boot
// id, the pid of the process that created the run and that process's start
// time in clock ticks since boot (/proc/<pid>/stat field 22). The three
// together name one process exactly: a reused pid has another start time,
// and after a reboot the boot id differs. The check assumes the database is
// used from one machine and one pid namespace, as a local SQLite file is.

// ownerToken names process pid, or "" if /proc cannot tell.
func ownerToken(pid int) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	start, _, ok := procStat(pid)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s/%d/%s", strings.TrimSpace(string(boot)), pid, start)
}

// procStat returns the start time and state fields of /proc/<pid>/stat.
func procStat(pid int) (start string, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", false
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", "", false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 20 {
		return "", "", false
	}
	return f[19], f[0], true
}

// ownerAlive reports whether the process named by owner still runs. An
// empty or unreadable owner counts as alive: the run is left alone rather
// than wrongly marked incomplete.
func ownerAlive(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return true
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return true
	}
	if strings.TrimSpace(string(boot)) != parts[0] {
		return false // rebooted since
	}
	start, state, ok := procStat(pid)
	return ok && start == parts[2] && state != "Z"
}

// MarkStaleRunsIncomplete marks incomplete every run still "running" whose
// owning process (the one that called CreateRun) is gone, killed or
// crashed, and returns how many it marked. Such a run's finish time is set
// to the start of its last trial (its start if it has none): the last sign
// of life the database holds. Liveness is checked through /proc, exactly
// (see ownerToken); runs whose owner cannot be checked are left alone.
func (s *Store) MarkStaleRunsIncomplete(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, owner FROM runs WHERE status = 'running'`)
	if err != nil {
		return 0, fmt.Errorf("mark stale runs: %w", err)
	}
	var stale []int64
	for rows.Next() {
		var (
			id    int64
			owner string
		)
		if err := rows.Scan(&id, &owner); err != nil {
			rows.Close()
			return 0, fmt.Errorf("mark stale runs: %w", err)
		}
		if !s.alive(owner) {
			stale = append(stale, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("mark stale runs: %w", err)
	}
	n := 0
	for _, id := range stale {
		res, err := s.db.ExecContext(ctx, `UPDATE runs SET status = 'incomplete',
			finished = COALESCE((SELECT MAX(started) FROM trials WHERE run_id = runs.id), started)
			WHERE id = ? AND status = 'running'`, id)
		if err != nil {
			return n, fmt.Errorf("mark stale run %d incomplete: %w", id, err)
		}
		if k, err := res.RowsAffected(); err == nil {
			n += int(k)
		}
	}
	return n, nil
}
