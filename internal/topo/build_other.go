//go:build !linux

package topo

import (
	"context"
	"fmt"
)

// Build returns ErrNotSupported: labs need Linux network namespaces.
func Build(ctx context.Context, t *Topology, opts BuildOptions) (*Lab, error) {
	return nil, fmt.Errorf("build topology: %w", ErrNotSupported)
}

// Teardown returns ErrNotSupported.
func (l *Lab) Teardown() error { return fmt.Errorf("teardown: %w", ErrNotSupported) }

// Keep returns ErrNotSupported.
func (l *Lab) Keep() error { return fmt.Errorf("keep: %w", ErrNotSupported) }

// Interfaces returns ErrNotSupported.
func (l *Lab) Interfaces() ([]Iface, error) {
	return nil, fmt.Errorf("list interfaces: %w", ErrNotSupported)
}

// SetSysctl returns ErrNotSupported.
func SetSysctl(nsPath, key, value string) error {
	return fmt.Errorf("set sysctl %s: %w", key, ErrNotSupported)
}

// KernelConfig returns "" off Linux.
func KernelConfig(opt string) string { return "" }
