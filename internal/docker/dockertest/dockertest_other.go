//go:build !linux

package dockertest

import (
	"os"
	"syscall"
)

// Off Linux there is no private dockerd (it needs a network namespace:
// Start fails in testutil.NewNetNS); these only have to compile.

func ownProcessGroup() *syscall.SysProcAttr { return nil }

func killProcessGroup(p *os.Process) { p.Kill() }

func unmountDetach(path string) {}
