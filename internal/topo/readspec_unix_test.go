//go:build unix

package topo

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A path a user names in a spec or config is read only if it is a regular
// file of bounded size: /dev/zero would otherwise be read until memory
// runs out, a FIFO would block the command forever.
func TestReadSpecFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(ok, []byte("name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadSpecFile(ok); err != nil || string(b) != "name: x\n" {
		t.Fatalf("regular file: %q, %v", b, err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxSpecFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/dev/zero": "not a regular file",
		dir:         "not a regular file",
		big:         "more than",
		fifo:        "not a regular file",
	} {
		done := make(chan error, 1)
		go func() { _, err := ReadSpecFile(path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %v, want %q", path, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still reading after 10s", path)
		}
	}
	if _, err := LoadTopology("/dev/zero"); err == nil || !strings.Contains(err.Error(), "read topology") {
		t.Errorf("LoadTopology(/dev/zero): %v", err)
	}
}
