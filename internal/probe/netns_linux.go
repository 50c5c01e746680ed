package probe

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// errNotSupported is what reading a PSI file returns when PSI is compiled
// in but disabled (psi=0).
var errNotSupported error = unix.EOPNOTSUPP

// inNetNS runs fn on a fresh OS thread inside the network namespace at
// nsPath; with an empty path, on the caller's goroutine. The thread is never
// unlocked: it exits with its goroutine, so the namespace cannot leak into
// the runtime's thread pool.
func inNetNS(nsPath string, fn func() error) error {
	if nsPath == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", nsPath, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", nsPath, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
