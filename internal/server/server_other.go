//go:build !linux

package server

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/latlab/latlab/internal/netns"
)

// Server is unavailable on this platform.
type Server struct{}

// New returns netns.ErrNotSupported: the server uses Linux system calls.
func New(cfg Config) (*Server, error) {
	return nil, fmt.Errorf("start server: %w on this platform", netns.ErrNotSupported)
}

// Addr is the zero address.
func (s *Server) Addr() netip.AddrPort { return netip.AddrPort{} }

// Serve returns netns.ErrNotSupported.
func (s *Server) Serve(ctx context.Context) error {
	return fmt.Errorf("serve: %w on this platform", netns.ErrNotSupported)
}

// Close does nothing.
func (s *Server) Close() error { return nil }
