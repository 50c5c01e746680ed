//go:build !linux

package workload

import (
	"context"
	"fmt"

	"github.com/latlab/latlab/internal/netns"
)

// Run returns netns.ErrNotSupported: the engine uses Linux system calls.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	return nil, fmt.Errorf("run %s: %w on this platform", cfg.Workload, netns.ErrNotSupported)
}
