//go:build !linux

package topo

import "fmt"

// CreateNetNS returns ErrNotSupported: network namespaces are Linux-only.
func CreateNetNS(name string) error { return fmt.Errorf("create netns %s: %w", name, ErrNotSupported) }

// DeleteNetNS returns ErrNotSupported.
func DeleteNetNS(name string) error { return fmt.Errorf("delete netns %s: %w", name, ErrNotSupported) }

// SameNetNS reports whether a and b name the same network namespace. Off
// Linux there is one namespace: "" and "" are the same, anything else is
// ErrNotSupported.
func SameNetNS(a, b string) (bool, error) {
	if a == "" && b == "" {
		return true, nil
	}
	return false, fmt.Errorf("identify netns %q and %q: %w", a, b, ErrNotSupported)
}

// IsHostNetNS reports whether path is the caller's namespace: off Linux,
// only "" is.
func IsHostNetNS(path string) (bool, error) { return SameNetNS(path, "") }
