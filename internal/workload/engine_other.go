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
	return nil, fmt.Errorf("start server: %w", ErrNotSupported)
}

// Addr is the zero address.
func (s *Server) Addr() netip.AddrPort { return netip.AddrPort{} }

// Serve returns ErrNotSupported.
func (s *Server) Serve(ctx context.Context) error { return ErrNotSupported }

// Close does nothing.
func (s *Server) Close() error { return nil }

// Run returns ErrNotSupported: the engine uses Linux system calls.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	return nil, fmt.Errorf("run %s: %w", cfg.Workload, ErrNotSupported)
}

// AllowedCPUs returns ErrNotSupported.
func AllowedCPUs() ([]int, error) { return nil, ErrNotSupported }
