package sockio

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A raw read restarted after every signal would wait a whole socket
// timeout again each time: with the runtime preempting the flow every
// 10ms it would never time out, and a silent server would hang the client
// instead of failing the run. ReadFull's raw mode counts EINTRs past the
// timeout as the timeout.
func TestRawReadFullTimesOutUnderSignals(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	const timeout = 50 * time.Millisecond
	if err := SetTimeouts(fds[0], timeout, timeout); err != nil {
		t.Fatal(err)
	}
	tids := make(chan int, 1)
	done := make(chan error, 1)
	start := time.Now() // before the read can begin
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		done <- ReadFull(fds[0], make([]byte, 64), 0, timeout)
	}()
	tid := <-tids
	tick := time.NewTicker(5 * time.Millisecond) // faster than the timeout
	defer tick.Stop()
	giveUp := time.After(5 * time.Second)
	for {
		select {
		case err := <-done:
			if err != ErrTimeout {
				t.Fatalf("ReadFull: %v, want ErrTimeout", err)
			}
			if d := time.Since(start); d < timeout {
				t.Fatalf("timed out after %v, before the %v timeout", d, timeout)
			}
			return
		case <-tick.C:
			// SIGURG: the signal the runtime preempts goroutines with.
			unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
		case <-giveUp:
			t.Fatal("ReadFull still waiting 5s into a 50ms timeout: EINTRs restart it forever")
		}
	}
}
