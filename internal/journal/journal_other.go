//go:build !unix

package journal

import (
	"fmt"
	"os"

	"github.com/latlab/latlab/internal/netns"
)

// lock is not available here: latlab's journals (and everything they
// record) are for Unix hosts, so Create fails cleanly instead.
func lock(f *os.File) error {
	return fmt.Errorf("lock %s: %w", f.Name(), netns.ErrNotSupported)
}

// isBusy is false: lock never reports a held lock here.
func isBusy(error) bool { return false }

// syncDir is a no-op: directories cannot be opened for sync here.
func syncDir(string) error { return nil }

// checkDir has nothing to check: Create fails at lock here, and there are
// no journals to sweep.
func checkDir(string) error { return nil }
