//go:build unix

package journal

import (
	"errors"
	"fmt"
	"os"
	"syscall"

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

// checkDir refuses a journal directory that someone other than this
// process's user (root, for every command that journals) could write
// into: a journal planted there would make a sweep undo whatever it names.
// The directory must be a directory (not a symlink), owned by the
// effective user, and not writable by group or others.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("journal dir %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("journal dir %s: cannot read its owner", dir)
	}
	uid := os.Geteuid()
	switch {
	case !fi.IsDir():
		return fmt.Errorf("journal dir %s: refusing it: not a directory (%v); anyone who can replace it could plant journals that cleanup would undo", dir, fi.Mode().Type())
	case int(st.Uid) != uid:
		return fmt.Errorf("journal dir %s: refusing it: owned by uid %d, not by uid %d running latlab; anyone who can write there could plant journals that cleanup would undo (chown it, or use another --journal-dir)", dir, st.Uid, uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("journal dir %s: refusing it: mode %v is writable by group or others; anyone who can write there could plant journals that cleanup would undo (chmod go-w it, or use another --journal-dir)", dir, fi.Mode())
	}
	return nil
}
