//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm || mips || mips64 || ppc64 || s390x)

package datapath

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/netns"
)

// Attached is one program attached at its hook. Close detaches it.
type Attached struct {
	Info Info

	mu     sync.Mutex
	coll   *ebpf.Collection
	counts *ebpf.Map // per-CPU counters in Counts' order
	link   link.Link // MethodTCX; MethodCgroup (sockmap's sock_ops)
	nsPath string
	// sockmap: the sk_msg program attached to the hash, to detach it.
	msgHash *ebpf.Map
	msgProg *ebpf.Program
	// MethodTC: the filter's device index and parent, to delete it.
	ifindex int
	parent  uint32
}

// helpers lists the helpers a built-in program calls, for a clean
// "kernel lacks" reason.
func helpers(program string) []asm.BuiltinFunc {
	switch program {
	case RedirectPeer:
		return []asm.BuiltinFunc{asm.FnFibLookup, asm.FnRedirectPeer}
	case FIBRedirect:
		return []asm.BuiltinFunc{asm.FnFibLookup, asm.FnRedirect, asm.FnRedirectNeigh}
	}
	return nil
}

// Attach loads s.Program and attaches it at s.Hook of s.Dev inside
// s.NSPath: a TCX link where the kernel has TCX, else a direct-action
// filter on a clsact qdisc (created if absent). A kernel that lacks a
// helper the program calls, or both hooks, gives an error wrapping
// ErrNotSupported with the reason.
//
// Equivalent to: bpftool prog load datapath.o ... && bpftool net attach
// tcx_ingress|tcx_egress pinned PROG dev DEV (TCX), or tc qdisc add dev DEV
// clsact && tc filter add dev DEV ingress|egress bpf da obj datapath.o sec
// tc (fallback), inside the namespace (ip netns exec NS ...).
func Attach(s Spec) (*Attached, error) {
	what := fmt.Sprintf("attach eBPF program %s at %s %s in %s", s.Program, s.Dev, s.Hook, s.NS)
	if err := CheckMethod(s.Program, s.Hook, s.Method, len(s.Endpoints)); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if s.NSPath == "" {
		return nil, fmt.Errorf("%s: no namespace given (never the caller's own)", what)
	}
	for _, fn := range helpers(s.Program) {
		if err := features.HaveProgramHelper(ebpf.SchedCLS, fn); err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return nil, fmt.Errorf("%s: %w: the kernel has no %s helper for tc programs", what, ErrNotSupported, fn)
			}
			return nil, fmt.Errorf("%s: probe helper %s: %w", what, fn, err)
		}
	}
	coll, err := load(s.Program)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	elf := programs()[s.Program].elf
	a := &Attached{coll: coll, counts: coll.Maps[datapathMapCounts], nsPath: s.NSPath,
		Info: Info{Program: s.Program, NS: s.NS, Dev: s.Dev, Hook: s.Hook}}
	prog := coll.Programs[elf]
	if pi, err := prog.Info(); err == nil {
		if id, ok := pi.ID(); ok {
			a.Info.ID = uint32(id)
		}
	}
	err = netns.Do(s.NSPath, func() error {
		dev, err := net.InterfaceByName(s.Dev)
		if err != nil {
			return fmt.Errorf("device %s: %w", s.Dev, err)
		}
		for _, ep := range s.Endpoints {
			e, err := net.InterfaceByName(ep)
			if err != nil {
				return fmt.Errorf("endpoint %s: %w", ep, err)
			}
			if err := coll.Maps[datapathMapEndpoints].Put(uint32(e.Index), uint8(1)); err != nil {
				return fmt.Errorf("endpoint %s: %w", ep, err)
			}
		}
		if s.Method == MethodTC {
			if err := a.attachTC(dev.Index, prog); err != nil {
				return fmt.Errorf("tc: %w", err)
			}
			return nil
		}
		typ := ebpf.AttachTCXIngress
		if s.Hook == HookEgress {
			typ = ebpf.AttachTCXEgress
		}
		l, tcxErr := link.AttachTCX(link.TCXOptions{Interface: dev.Index, Program: prog, Attach: typ})
		if tcxErr == nil {
			a.link, a.Info.Method = l, MethodTCX
			return nil
		}
		if !errors.Is(tcxErr, ebpf.ErrNotSupported) {
			return fmt.Errorf("tcx: %w", tcxErr)
		}
		if s.Method == MethodTCX {
			return fmt.Errorf("%w: the kernel has no TCX (Linux 6.6+): %v", ErrNotSupported, tcxErr)
		}
		if err := a.attachTC(dev.Index, prog); err != nil {
			return fmt.Errorf("%w: no TCX (%v) and no tc clsact: %v", ErrNotSupported, tcxErr, err)
		}
		return nil
	})
	if err != nil {
		coll.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return a, nil
}

// Load loads program (its maps and the program itself, through the
// verifier) and frees it again: whether this kernel takes it.
//
// Equivalent to: bpftool prog load datapath.o /sys/fs/bpf/x (and rm)
func Load(program string) error {
	if program == ProgSockmap {
		spec, err := loadSockmap()
		if err != nil {
			return fmt.Errorf("load eBPF program %s: %w", program, err)
		}
		coll, err := ebpf.NewCollection(spec)
		if err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return fmt.Errorf("load eBPF program %s: %w: %v", program, ErrNotSupported, shortErr(err))
			}
			return fmt.Errorf("load eBPF program %s: %v", program, shortErr(err))
		}
		coll.Close()
		return nil
	}
	if _, ok := programs()[program]; !ok {
		return CheckMethod(program, HookIngress, "", 0)
	}
	coll, err := load(program)
	if err != nil {
		return fmt.Errorf("load eBPF program %s: %w", program, err)
	}
	coll.Close()
	return nil
}

// load loads program's collection: its maps and that one program.
func load(program string) (*ebpf.Collection, error) {
	spec, err := loadDatapath()
	if err != nil {
		return nil, err
	}
	elf := programs()[program].elf
	for name := range spec.Programs {
		if name != elf {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return nil, fmt.Errorf("%w: %v", ErrNotSupported, shortErr(err))
		}
		return nil, fmt.Errorf("load: %v", shortErr(err))
	}
	return coll, nil
}

// attachTC attaches prog as a direct-action filter on a clsact qdisc of
// the device, from a thread inside its namespace.
//
// Equivalent to: tc qdisc add dev DEV clsact; tc filter add dev DEV
// ingress|egress prio 1 handle 1 bpf da fd PROG
func (a *Attached) attachTC(ifindex int, prog *ebpf.Program) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
	if err := h.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if a.Info.Hook == HookEgress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: parent,
		Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL}, Fd: prog.FD(), Name: "latlab-" + a.Info.Program, DirectAction: true}
	if err := h.FilterAdd(f); err != nil {
		return fmt.Errorf("add bpf filter: %w", err)
	}
	a.ifindex, a.parent, a.Info.Method = ifindex, parent, MethodTC
	return nil
}

// Live reports whether the program is still attached: its TCX link
// still names a device (a link whose device went away is detached, though
// this process still holds it), or its tc filter is still on the device.
//
// Equivalent to: bpftool link show id ID (ifindex), or tc filter show dev
// DEV ingress|egress
func (a *Attached) Live() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.coll == nil:
		return false, nil
	case a.link != nil:
		info, err := a.link.Info()
		if err != nil {
			return false, fmt.Errorf("link info of %s: %w", a.Info, err)
		}
		if a.Info.Method == MethodCgroup {
			return true, nil // held by this process with its cgroup
		}
		tcx := info.TCX()
		return tcx != nil && tcx.Ifindex != 0, nil
	}
	fd, err := vnetns.GetFromPath(a.nsPath)
	if err != nil {
		return false, nil // the namespace is gone, and the filter with it
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		return false, fmt.Errorf("netlink in %s: %w", a.Info.NS, err)
	}
	defer h.Close()
	lk, err := h.LinkByIndex(a.ifindex)
	if err != nil {
		return false, nil // the device is gone
	}
	fs, err := h.FilterList(lk, a.parent)
	if err != nil {
		return false, fmt.Errorf("list filters of %s: %w", a.Info.Dev, err)
	}
	for _, f := range fs {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Id == int(a.Info.ID) {
			return true, nil
		}
	}
	return false, nil
}

// Counts reads the program's counters. For a sockmap, Seen counts the
// sockets put in the hash, Redirected the messages handed to the peer
// socket, Passed those that went the normal way (no peer in the hash).
//
// Equivalent to: bpftool map dump id COUNTS
func (a *Attached) Counts() (Counts, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.coll == nil {
		return Counts{}, fmt.Errorf("read counters of %s: closed", a.Info)
	}
	var c Counts
	dsts := []*uint64{&c.Seen, &c.Redirected, &c.Neigh, &c.Passed, &c.NotEndpoint}
	if a.Info.Program == ProgSockmap {
		dsts = []*uint64{&c.Seen, &c.Redirected, &c.Passed}
	}
	for k, dst := range dsts {
		var per []uint64
		if err := a.counts.Lookup(uint32(k), &per); err != nil {
			return Counts{}, fmt.Errorf("read counters of %s: %w", a.Info, err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return c, nil
}

// Close detaches the program (closing its TCX or cgroup link, deleting
// its tc filter if the device is still there, detaching a sockmap's
// sk_msg from its hash) and frees what this process holds.
//
// Equivalent to: bpftool link detach id ID, or tc filter del dev DEV
// ingress|egress prio 1 handle 1 bpf, or bpftool prog detach id MSG
// msg_verdict id HASH
func (a *Attached) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.coll == nil {
		return nil
	}
	var errs []error
	if a.link != nil {
		if err := a.link.Close(); err != nil {
			errs = append(errs, err)
		}
		a.link = nil
	}
	if a.msgProg != nil {
		if err := link.RawDetachProgram(link.RawDetachProgramOptions{Target: a.msgHash.FD(),
			Program: a.msgProg, Attach: ebpf.AttachSkMsgVerdict}); err != nil {
			errs = append(errs, err)
		}
		a.msgProg, a.msgHash = nil, nil
	}
	if a.Info.Method == MethodTC && a.ifindex != 0 {
		err := deleteFilter(a.nsPath, a.ifindex, a.parent)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, err)
		}
		a.ifindex = 0
	}
	a.coll.Close()
	a.coll = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach %s in %s: %w", a.Info, a.Info.NS, err)
	}
	return nil
}

// deleteFilter removes latlab's filter (prio 1, handle 1) from the device.
// A namespace that is gone took it along.
func deleteFilter(nsPath string, ifindex int, parent uint32) error {
	fd, err := vnetns.GetFromPath(nsPath)
	if err != nil {
		return nil // the namespace is gone, and the filter with it
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.FilterDel(&netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: parent,
		Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL}})
}

// shortErr keeps the first lines of a verifier error.
func shortErr(err error) string {
	s := err.Error()
	if lines := strings.Split(s, "\n"); len(lines) > 4 {
		s = strings.Join(lines[:4], " ") + " ..."
	}
	return s
}
