//go:build !linux

package netns

import "fmt"

// Enter returns ErrNotSupported: network namespaces are Linux-only.
func Enter(path string) error { return fmt.Errorf("enter netns %s: %w", path, ErrNotSupported) }

// Do runs fn in the caller's namespace when path is empty; any other path
// is ErrNotSupported off Linux.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return Enter(path)
}
