package netns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Enter moves the calling OS thread into the network namespace at path (a
// name's Path, or /proc/PID/ns/net). The caller must have locked its
// goroutine to the thread (runtime.LockOSThread) and must never unlock it:
// the runtime then discards the thread when the goroutine ends, so the
// namespace cannot leak into its thread pool.
//
// Equivalent to: nsenter --net=PATH (for the calling thread only)
func Enter(path string) error {
	fd, err := open(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return enter(fd, path)
}

// Do runs fn on a fresh OS thread inside the network namespace at path and
// returns its error; with an empty path, fn runs on the caller's goroutine
// in the caller's namespace. The path is opened by the caller's thread (so
// /proc/thread-self/ns/net means the caller's namespace). The new thread is
// never unlocked: it exits with its goroutine, so the namespace cannot leak
// into the runtime's thread pool. Sockets fn opens stay in that namespace
// for their whole life; goroutines fn starts do not run there.
//
// Equivalent to: ip netns exec NAME CMD (with path = Path(NAME))
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	fd, err := open(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go func() {
		// Never unlocked (see above).
		runtime.LockOSThread()
		if err := enter(fd, path); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func open(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open netns %s: %w", path, err)
	}
	return fd, nil
}

func enter(fd int, path string) error {
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	return nil
}
