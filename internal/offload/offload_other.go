//go:build !linux

package offload

import "fmt"

// Open is Linux-only; elsewhere it returns ErrNotSupported.
func Open(netns string) (*Client, error) {
	return nil, fmt.Errorf("device offloads: %w on this platform", ErrNotSupported)
}
