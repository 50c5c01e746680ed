package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv names the database a re-executed test binary writes to
// until it is killed.
const crashChildEnv = "LATLAB_STORE_CRASH_CHILD"

// crashChild creates a run and adds trials forever, printing "run ID" and
// then "trial ID" after each trial's commit has returned.
func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	blob, _ := testHist(5, 1_000_000, 1.5).MarshalBinary()
	r := Run{Kind: "lab", SpecName: "crash"}
	if _, err := s.CreateRun(ctx, &r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("run %d\n", r.ID)
	for i := 0; ; i++ {
		tr := Trial{RunID: r.ID, Round: i / 4, Order: i % 4, Mode: "host", Workload: "tcp_rr", Hist: blob}
		if _, err := s.AddTrial(ctx, &tr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("trial %d\n", tr.ID)
	}
}

// TestCrash kills a writer with SIGKILL at a random moment after some
// trials, three times over: the database must open, pass integrity_check,
// hold every trial the writer reported committed, and the writer's run
// must then be marked incomplete while a live process's run is left alone.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crash.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mine := Run{Kind: "lab", SpecName: "alive"}
	if _, err := s.CreateRun(ctx, &mine); err != nil {
		t.Fatal(err)
	}

	for round := range 3 {
		runID, committed := runAndKill(t, path, 20+rand.IntN(20), time.Duration(rand.IntN(5000))*time.Microsecond)

		s2, err := Open(path)
		if err != nil {
			t.Fatalf("open after SIGKILL: %v", err)
		}
		integrityCheck(t, s2.db)
		ts, err := s2.Trials(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		have := map[int64]bool{}
		for _, tr := range ts {
			have[tr.ID] = true
		}
		for _, id := range committed {
			if !have[id] {
				t.Errorf("crash %d: trial %d reported committed is missing", round, id)
			}
		}
		// At most the one trial whose commit returned but whose id was not
		// printed yet may be extra.
		if len(ts) < len(committed) || len(ts) > len(committed)+1 {
			t.Errorf("crash %d: %d trials stored, %d reported", round, len(ts), len(committed))
		}
		n, err := s2.MarkStaleRunsIncomplete(ctx)
		if err != nil || n != 1 {
			t.Errorf("crash %d: marked %d stale runs (%v), want 1", round, n, err)
		}
		r, err := s2.Run(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusIncomplete || !r.Finished.Equal(ts[len(ts)-1].Started) {
			t.Errorf("crash %d: killed run %q finished %v, want incomplete at last trial %v",
				round, r.Status, r.Finished, ts[len(ts)-1].Started)
		}
		s2.Close()
		t.Logf("crash %d: %d trials reported, %d stored", round, len(committed), len(ts))
	}
	if r, err := s.Run(ctx, mine.ID); err != nil || r.Status != StatusRunning {
		t.Errorf("live process's run: %q, %v; want running", r.Status, err)
	}
}

// runAndKill starts a crashChild on path, lets it report at least n
// trials, waits delay, kills it with SIGKILL and returns its run and the
// trial ids it reported.
func runAndKill(t *testing.T, path string, n int, delay time.Duration) (int64, []int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		runID     int64
		committed []int64
		killed    bool
	)
	sc := bufio.NewScanner(out)
	for sc.Scan() { // runs to EOF: the lines written before the kill
		what, num, _ := strings.Cut(sc.Text(), " ")
		id, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		switch what {
		case "run":
			runID = id
		case "trial":
			committed = append(committed, id)
		}
		if len(committed) == n && !killed {
			killed = true
			go func() {
				time.Sleep(delay)
				cmd.Process.Signal(syscall.SIGKILL)
			}()
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before %d trials: %v", n, err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child not killed by SIGKILL: %v", err)
	}
	return runID, committed
}
