//go:build !linux || !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm || mips || mips64 || ppc64 || s390x)

package probe

import "errors"

// EBPF is unavailable on this platform.
type EBPF struct{}

// LoadEBPF always fails here: eBPF needs Linux.
func LoadEBPF() (*EBPF, error) { return nil, errors.New("eBPF needs Linux") }

func (e *EBPF) Tier() string                 { return TierProc }
func (e *EBPF) Hooks() map[string]string     { return nil }
func (e *EBPF) Unavailable() []string        { return nil }
func (e *EBPF) TraceTIDs(...int) error       { return errors.New("eBPF needs Linux") }
func (e *EBPF) Read() (*EBPFCounters, error) { return nil, errors.New("eBPF needs Linux") }
func (e *EBPF) Close() error                 { return nil }
func NetNSInode(string) (uint32, error)      { return 0, errors.New("needs Linux") }
