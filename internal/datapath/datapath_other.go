//go:build !linux || !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm || mips || mips64 || ppc64 || s390x)

package datapath

import "fmt"

// Attached is an attached program (Linux only).
type Attached struct{ Info Info }

// Attach returns ErrNotSupported off Linux.
func Attach(s Spec) (*Attached, error) {
	return nil, fmt.Errorf("attach %s to %s: %w", s.Program, s.Dev, ErrNotSupported)
}

// Counts returns ErrNotSupported off Linux.
func (a *Attached) Counts() (Counts, error) { return Counts{}, ErrNotSupported }

// Close does nothing off Linux.
func (a *Attached) Close() error { return nil }

// Live reports false off Linux.
func (a *Attached) Live() (bool, error) { return false, ErrNotSupported }

// Load returns ErrNotSupported off Linux.
func Load(program string) error {
	return fmt.Errorf("load eBPF program %s: %w", program, ErrNotSupported)
}

// AttachSockmap returns ErrNotSupported off Linux.
func AttachSockmap(s SockmapSpec) (*Attached, error) {
	return nil, fmt.Errorf("attach sockmap for port %d: %w", s.Port, ErrNotSupported)
}

// CgroupPath returns ErrNotSupported off Linux.
func CgroupPath(name string) (string, error) { return "", ErrNotSupported }

// EnterCgroup returns ErrNotSupported off Linux.
func EnterCgroup(path string) (string, error) { return "", ErrNotSupported }

// LeaveCgroup returns ErrNotSupported off Linux.
func LeaveCgroup(prev, path string) error { return ErrNotSupported }

// RemoveCgroup returns ErrNotSupported off Linux.
func RemoveCgroup(path string) error { return ErrNotSupported }
