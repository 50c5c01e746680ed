//go:build !linux

package workload

import (
	"context"
	"fmt"
	"net/netip"
)

// Server is unavailable on this platform.
type Server struct{}

// NewServer returns ErrNotSupported: the engine uses Linux system calls.
func NewServer(cfg ServerConfig) (*Server, error) {
	return nil, fmt.Errorf("start server: %w on this platform", ErrNotSupported)
}

// Addr is the zero address.
func (s *Server) Addr() netip.AddrPort { return netip.AddrPort{} }

// Serve returns ErrNotSupported.
func (s *Server) Serve(ctx context.Context) error {
	return fmt.Errorf("serve: %w on this platform", ErrNotSupported)
}

// Close does nothing.
func (s *Server) Close() error { return nil }

// Run returns ErrNotSupported: the engine uses Linux system calls.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	return nil, fmt.Errorf("run %s: %w on this platform", cfg.Workload, ErrNotSupported)
}

// AllowedCPUs returns ErrNotSupported.
func AllowedCPUs() ([]int, error) {
	return nil, fmt.Errorf("allowed CPUs: %w on this platform", ErrNotSupported)
}
