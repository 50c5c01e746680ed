package workload

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// detach hands back a descriptor the runtime's epoll does not watch.
func TestDetachLeavesEpoll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := detach(sc.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("x")); err != nil {
		t.Fatalf("detached descriptor unusable: %v", err)
	}
	links, _ := filepath.Glob("/proc/self/fd/*")
	want := fmt.Sprintf("tfd: %8d ", fd)
	for _, l := range links {
		if dst, _ := os.Readlink(l); dst != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + filepath.Base(l))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(info), want) {
			t.Fatalf("descriptor %d still registered with epoll:\n%s", fd, info)
		}
	}
}

// A raw read restarted after every signal would wait a whole socket
// timeout again each time: with the runtime preempting the flow every
// 10ms it would never time out, and a silent server would hang the client
// instead of failing the run. readFull's raw mode counts EINTRs past the
// timeout as the timeout.
func TestRawReadFullTimesOutUnderSignals(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	const timeout = 50 * time.Millisecond
	if err := setTimeouts(fds[0], timeout, timeout); err != nil {
		t.Fatal(err)
	}
	tids := make(chan int, 1)
	done := make(chan error, 1)
	start := time.Now() // before the read can begin
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		done <- readFull(fds[0], make([]byte, 64), 0, timeout)
	}()
	tid := <-tids
	tick := time.NewTicker(5 * time.Millisecond) // faster than the timeout
	defer tick.Stop()
	giveUp := time.After(5 * time.Second)
	for {
		select {
		case err := <-done:
			if err != errTimeout {
				t.Fatalf("readFull: %v, want errTimeout", err)
			}
			if d := time.Since(start); d < timeout {
				t.Fatalf("timed out after %v, before the %v timeout", d, timeout)
			}
			return
		case <-tick.C:
			// SIGURG: the signal the runtime preempts goroutines with.
			unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
		case <-giveUp:
			t.Fatal("readFull still waiting 5s into a 50ms timeout: EINTRs restart it forever")
		}
	}
}
