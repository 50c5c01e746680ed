//go:build unix

package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A new database is its owner's alone: directories created 0700, the file
// and sqlite's -wal/-shm 0600, whatever the umask allows. Existing
// directories are left alone.
func TestOpenCreatesPrivateFiles(t *testing.T) {
	old := syscall.Umask(0o022) // the common default; restored below
	defer syscall.Umask(old)
	base := t.TempDir()
	os.Chmod(base, 0o755)
	path := filepath.Join(base, "new", "dir", "latlab.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := Run{Kind: "lab"}
	if _, err := s.CreateRun(context.Background(), &r); err != nil { // writes the WAL
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Join(base, "new"), 0o700},
		{filepath.Join(base, "new", "dir"), 0o700},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
		{base, 0o755}, // existed: untouched
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("%s: mode %o, want %o", c.path, got, c.want)
		}
	}
	// An existing database keeps its mode (it is someone's choice).
	s.Close()
	os.Chmod(path, 0o640)
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("reopening changed the mode to %o", fi.Mode().Perm())
	}
}
