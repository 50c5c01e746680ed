//go:build !linux

package sockio

import (
	"fmt"

	"github.com/latlab/latlab/internal/netns"
)

// AllowedCPUs returns netns.ErrNotSupported.
func AllowedCPUs() ([]int, error) {
	return nil, fmt.Errorf("allowed CPUs: %w on this platform", netns.ErrNotSupported)
}
