package dockertest

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ownProcessGroup starts dockerd in a process group of its own, so its
// children (containerd, shims) can be killed with it.
func ownProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killProcessGroup sends SIGKILL to p's whole process group.
//
// Equivalent to: kill -KILL -PGID
func killProcessGroup(p *os.Process) { syscall.Kill(-p.Pid, syscall.SIGKILL) }

// unmountDetach lazily unmounts path, ignoring errors.
//
// Equivalent to: umount -l PATH
func unmountDetach(path string) { unix.Unmount(path, unix.MNT_DETACH) }
