//go:build unix

package journal

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lock takes an exclusive flock on f without waiting: when another open
// file description (this process's or another's) holds it, the error is
// one isBusy recognises. The kernel drops the lock when the last
// descriptor of f closes, however the process ends.
func lock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// isBusy reports whether lock failed because the lock is held.
func isBusy(err error) bool { return errors.Is(err, unix.EWOULDBLOCK) }

// syncDir makes the directory's entries (a journal linked in or removed)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
