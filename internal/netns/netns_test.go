package netns_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/latlab/latlab/internal/netns"
)

func TestErrNotSupportedWraps(t *testing.T) {
	err := fmt.Errorf("create ipvlan eth0: %w", netns.ErrNotSupported)
	if !errors.Is(err, netns.ErrNotSupported) {
		t.Fatal("a wrapped ErrNotSupported is not ErrNotSupported")
	}
	if err.Error() != "create ipvlan eth0: not supported" {
		t.Errorf("message %q", err)
	}
}
