//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm || mips || mips64 || ppc64 || s390x)

package datapath

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/netns"
)

// soNetnsCookie is SO_NETNS_COOKIE (Linux 5.14+).
const soNetnsCookie = 71

// AttachSockmap short-circuits the loopback TCP connections of namespace
// s.NSPath that have port s.Port at either end: a sock_ops program on
// cgroup s.Cgroup (latlab's own, EnterCgroup) puts them in a sock hash as they are
// established, and an sk_msg program on the hash hands what one end sends
// straight to the other end's receive queue (bpf_msg_redirect_hash with
// BPF_F_INGRESS): no TCP segments, no netfilter, no loopback device. Only
// sockets created by processes in the cgroup are seen (a socket belongs to
// the cgroup of the task that created it), so this process must have
// entered it before it opens them. Both are held by this process: the cgroup link and the
// hash (which holds the sk_msg program) go when it exits.
//
// Equivalent to: bpftool prog load sockmap.o ... && bpftool cgroup attach
// CGROUP sock_ops pinned OPS && bpftool prog attach pinned MSG
// msg_verdict pinned HASH
func AttachSockmap(s SockmapSpec) (*Attached, error) {
	what := fmt.Sprintf("attach sockmap for port %d in %s", s.Port, s.NS)
	if s.NSPath == "" {
		return nil, fmt.Errorf("%s: no namespace given (never the caller's own)", what)
	}
	if s.Port <= 0 || s.Port > 65535 {
		return nil, fmt.Errorf("%s: port outside 1..65535", what)
	}
	for _, h := range []struct {
		typ ebpf.ProgramType
		fn  asm.BuiltinFunc
	}{{ebpf.SockOps, asm.FnSockHashUpdate}, {ebpf.SockOps, asm.FnGetNetnsCookie}, {ebpf.SkMsg, asm.FnMsgRedirectHash}} {
		if err := features.HaveProgramHelper(h.typ, h.fn); err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return nil, fmt.Errorf("%s: %w: the kernel has no %s helper for %s programs", what, ErrNotSupported, h.fn, h.typ)
			}
			return nil, fmt.Errorf("%s: probe helper %s: %w", what, h.fn, err)
		}
	}
	cg := s.Cgroup
	if cg == "" {
		return nil, fmt.Errorf("%s: no cgroup given", what)
	}
	var cookie uint64
	if err := netns.Do(s.NSPath, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		v, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, soNetnsCookie)
		cookie = v
		return err
	}); err != nil {
		if errors.Is(err, unix.ENOPROTOOPT) {
			return nil, fmt.Errorf("%s: %w: no SO_NETNS_COOKIE (Linux 5.14+)", what, ErrNotSupported)
		}
		return nil, fmt.Errorf("%s: namespace cookie: %w", what, err)
	}
	spec, err := loadSockmap()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return nil, fmt.Errorf("%s: %w: %v", what, ErrNotSupported, shortErr(err))
		}
		return nil, fmt.Errorf("%s: load: %v", what, shortErr(err))
	}
	sm := &Attached{coll: coll, counts: coll.Maps[sockmapMapSockmapCounts], nsPath: s.NSPath,
		Info: Info{Program: ProgSockmap, NS: s.NS, Dev: cg, Hook: HookSockOps, Method: MethodCgroup}}
	if pi, err := coll.Programs[sockmapProgSockmapOps].Info(); err == nil {
		if id, ok := pi.ID(); ok {
			sm.Info.ID = uint32(id)
		}
	}
	cfg := sockmapSockmapConfig{NetnsCookie: cookie, Port: uint32(s.Port)}
	if err := coll.Maps[sockmapMapSockmapCfg].Put(uint32(0), cfg); err != nil {
		sm.Close()
		return nil, fmt.Errorf("%s: configure: %w", what, err)
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: coll.Maps[sockmapMapSockHash].FD(),
		Program: coll.Programs[sockmapProgSockmapMsg], Attach: ebpf.AttachSkMsgVerdict}); err != nil {
		sm.Close()
		return nil, fmt.Errorf("%s: attach sk_msg to the sock hash: %w", what, err)
	}
	sm.msgHash, sm.msgProg = coll.Maps[sockmapMapSockHash], coll.Programs[sockmapProgSockmapMsg]
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: ebpf.AttachCGroupSockOps, Program: coll.Programs[sockmapProgSockmapOps]})
	if err != nil {
		sm.Close()
		return nil, fmt.Errorf("%s: attach sock_ops to cgroup %s: %w", what, cg, err)
	}
	sm.link = l
	return sm, nil
}

// ownCgroup is this process's cgroup v2 directory: /proc/self/cgroup's
// "0::PATH" under the cgroup2 mount.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("own cgroup: %w", err)
	}
	rel := ""
	for _, line := range strings.Split(string(b), "\n") {
		if r, ok := strings.CutPrefix(line, "0::"); ok {
			rel = r
		}
	}
	if rel == "" {
		return "", fmt.Errorf("%w: this process is in no cgroup v2 (no 0:: line in /proc/self/cgroup)", ErrNotSupported)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("own cgroup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		fs := strings.Fields(pre)
		if len(fs) < 5 {
			continue
		}
		root, mnt := fs[3], fs[4]
		r, ok := strings.CutPrefix(rel, root)
		if !ok {
			continue
		}
		return filepath.Join(mnt, r), nil
	}
	return "", fmt.Errorf("%w: no cgroup2 file system mounted", ErrNotSupported)
}

// CgroupPath is where EnterCgroup makes the cgroup named name: a child of
// this process's own cgroup v2.
func CgroupPath(name string) (string, error) {
	own, err := ownCgroup()
	if err != nil {
		return "", fmt.Errorf("cgroup %s: %w", name, err)
	}
	return filepath.Join(own, name), nil
}

// EnterCgroup creates the cgroup at path (a child of this process's own:
// CgroupPath) and moves this whole process into it; it returns the
// cgroup the process was in, for LeaveCgroup. Sockets the process opens
// from now on belong to path, so programs attached there see them.
//
// Equivalent to: mkdir PATH && echo $$ > PATH/cgroup.procs
func EnterCgroup(path string) (prev string, err error) {
	prev, err = ownCgroup()
	if err != nil {
		return "", fmt.Errorf("enter cgroup %s: %w", path, err)
	}
	if filepath.Dir(path) != prev {
		return "", fmt.Errorf("enter cgroup %s: not a child of this process's cgroup %s", path, prev)
	}
	if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("enter cgroup %s: %w", path, err)
	}
	if err := os.WriteFile(filepath.Join(path, "cgroup.procs"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("enter cgroup %s: move this process: %w", path, err)
	}
	return prev, nil
}

// LeaveCgroup moves this process back to prev and removes path (which a
// process that died has left empty: RemoveCgroup).
//
// Equivalent to: echo $$ > PREV/cgroup.procs && rmdir PATH
func LeaveCgroup(prev, path string) error {
	if err := os.WriteFile(filepath.Join(prev, "cgroup.procs"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("leave cgroup %s for %s: %w", path, prev, err)
	}
	return RemoveCgroup(path)
}

// RemoveCgroup removes an empty cgroup; one already gone is fine.
//
// Equivalent to: rmdir PATH
func RemoveCgroup(path string) error {
	if err := unix.Rmdir(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", path, err)
	}
	return nil
}
