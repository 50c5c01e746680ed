//go:build !linux

package topo

import "fmt"

// CreateNetNS returns ErrNotSupported: network namespaces are Linux-only.
func CreateNetNS(name string) error { return fmt.Errorf("create netns %s: %w", name, ErrNotSupported) }

// DeleteNetNS returns ErrNotSupported.
func DeleteNetNS(name string) error { return fmt.Errorf("delete netns %s: %w", name, ErrNotSupported) }
