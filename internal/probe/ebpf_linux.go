//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm || mips || mips64 || ppc64 || s390x)

package probe

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// hook is one kernel tracepoint and its classic-tracepoint group.
type hook struct {
	group, name string
	// prog names the program when it differs from name (tests).
	prog string
	// fields of the classic tracepoint's format the program reads, and the
	// constants that receive their offsets.
	fields map[string]string
}

// allHooks lists the hooks LoadEBPF attaches.
func allHooks() []hook {
	return []hook{
		{"irq", "softirq_entry", "", map[string]string{"vec": "off_softirq_vec"}},
		{"irq", "softirq_exit", "", map[string]string{"vec": "off_softirq_vec"}},
		{"irq", "softirq_raise", "", map[string]string{"vec": "off_softirq_vec"}},
		{"skb", "kfree_skb", "", map[string]string{"reason": "off_kfree_reason"}},
		{"tcp", "tcp_retransmit_skb", "", map[string]string{"skaddr": "off_retrans_sk"}},
		{"sched", "sched_wakeup", "", map[string]string{"pid": "off_wakeup_pid"}},
		{"sched", "sched_wakeup_new", "", map[string]string{"pid": "off_wakeup_pid"}},
		{"sched", "sched_switch", "", map[string]string{"prev_pid": "off_switch_prev_pid",
			"prev_state": "off_switch_prev_state", "next_pid": "off_switch_next_pid"}},
	}
}

// tiers in order of preference, with their program name prefixes.
var tiers = []struct{ tier, prefix string }{
	{TierTPBTF, "btf_"},
	{TierRawTP, "raw_"},
	{TierTP, "tp_"},
}

var tierRank = map[string]int{TierTPBTF: 0, TierRawTP: 1, TierTP: 2, TierProc: 3}

// EBPF is the set of tracepoint programs that loaded on this kernel.
type EBPF struct {
	mu          sync.Mutex
	maps        *ebpf.Collection
	progs       []*ebpf.Collection
	links       []link.Link
	hooks       map[string]string // hook -> tier attached
	unavailable []string
	reasons     map[uint32]string
}

// LoadEBPF loads and attaches every hook at the best tier this kernel
// accepts: tp_btf, else raw_tracepoint, else the classic tracepoint
// (mounting tracefs at /sys/kernel/tracing if no tracefs is mounted). Each
// program loads on its own, so one the kernel refuses only costs its hook.
// It fails only when no hook at all could be attached. It changes no
// sysctl.
func LoadEBPF() (*EBPF, error) { return loadHooks(allHooks(), TierTPBTF, TierRawTP, TierTP) }

// loadTiers tries only the given tiers (tests force each one).
func loadTiers(only ...string) (*EBPF, error) { return loadHooks(allHooks(), only...) }

// loadHooks attaches hooks at the given tiers.
func loadHooks(hooks []hook, only ...string) (*EBPF, error) {
	spec, err := loadProbe()
	if err != nil {
		return nil, fmt.Errorf("load eBPF spec: %w", err)
	}
	e := &EBPF{hooks: map[string]string{}}
	tracefs, tfErr := tracefsDir()
	tpOK := map[string]error{} // classic tier usable per hook
	for _, h := range hooks {
		if tfErr != nil {
			tpOK[h.name] = tfErr
			continue
		}
		offs, err := formatOffsets(filepath.Join(tracefs, "events", h.group, h.name, "format"))
		if err == nil {
			for field, konst := range h.fields {
				off, ok := offs[field]
				if !ok {
					err = fmt.Errorf("tracepoint %s/%s has no field %q on this kernel", h.group, h.name, field)
					break
				}
				if err = spec.Variables[konst].Set(uint32(off)); err != nil {
					break
				}
			}
		}
		tpOK[h.name] = err
	}
	ms := spec.Copy()
	ms.Programs = map[string]*ebpf.ProgramSpec{}
	if e.maps, err = ebpf.NewCollection(ms); err != nil {
		return nil, fmt.Errorf("create eBPF maps: %w", err)
	}
	for _, h := range hooks {
		var why []string
		for _, t := range tiers {
			if !slices.Contains(only, t.tier) {
				continue
			}
			if t.tier == TierTP && tpOK[h.name] != nil {
				why = append(why, t.tier+": "+tpOK[h.name].Error())
				continue
			}
			prog := h.name
			if h.prog != "" {
				prog = h.prog
			}
			if err := e.attach(spec, h, t.tier, t.prefix+prog); err != nil {
				why = append(why, t.tier+": "+err.Error())
				continue
			}
			e.hooks[h.name] = t.tier
			break
		}
		if _, ok := e.hooks[h.name]; !ok {
			e.unavailable = append(e.unavailable, h.name+": "+strings.Join(why, "; "))
		} else if len(why) > 0 {
			e.unavailable = append(e.unavailable, h.name+" (fell back to "+e.hooks[h.name]+"): "+strings.Join(why, "; "))
		}
	}
	if len(e.hooks) == 0 {
		e.Close()
		return nil, fmt.Errorf("load eBPF: no hook could be attached: %s", strings.Join(e.unavailable, "; "))
	}
	e.reasons = dropReasonNames()
	return e, nil
}

func (e *EBPF) attach(spec *ebpf.CollectionSpec, h hook, tier, prog string) error {
	ps := spec.Copy()
	p, ok := ps.Programs[prog]
	if !ok {
		return fmt.Errorf("no program %s", prog)
	}
	ps.Programs = map[string]*ebpf.ProgramSpec{prog: p}
	coll, err := ebpf.NewCollectionWithOptions(ps, ebpf.CollectionOptions{MapReplacements: e.maps.Maps})
	if err != nil {
		return firstLine(err)
	}
	var l link.Link
	switch tier {
	case TierTPBTF:
		l, err = link.AttachTracing(link.TracingOptions{Program: coll.Programs[prog]})
	case TierRawTP:
		l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: h.name, Program: coll.Programs[prog]})
	case TierTP:
		l, err = link.Tracepoint(h.group, h.name, coll.Programs[prog], nil)
	}
	if err != nil {
		coll.Close()
		return firstLine(err)
	}
	e.progs = append(e.progs, coll)
	e.links = append(e.links, l)
	return nil
}

// firstLine keeps a verifier log out of the reasons.
func firstLine(err error) error {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return errors.New(s)
}

// tracefsDir finds a mounted tracefs, mounting one at /sys/kernel/tracing
// when none is (mounting a pseudo filesystem changes no kernel setting).
func tracefsDir() (string, error) {
	for _, d := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(d, "events")); err == nil {
			return d, nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("no tracefs mounted, and mounting one failed: %w", err)
	}
	return "/sys/kernel/tracing", nil
}

// formatOffsets reads field offsets from a tracepoint format file.
func formatOffsets(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// field:unsigned int vec;	offset:8;	size:4;	signed:0;
		line := strings.TrimSpace(sc.Text())
		decl, ok := strings.CutPrefix(line, "field:")
		if !ok {
			continue
		}
		parts := strings.Split(decl, ";")
		if len(parts) < 2 {
			continue
		}
		d := strings.Fields(parts[0])
		if len(d) == 0 {
			continue
		}
		name, _, _ := strings.Cut(d[len(d)-1], "[")
		name = strings.TrimPrefix(name, "*")
		o, ok := strings.CutPrefix(strings.TrimSpace(parts[1]), "offset:")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(o)
		if err != nil {
			return nil, fmt.Errorf("%s: field %s: %w", path, name, err)
		}
		out[name] = n
	}
	return out, sc.Err()
}

// dropReasonNames maps enum skb_drop_reason values to names ("NO_SOCKET")
// from the kernel's BTF; nil without BTF (reasons then read "reason_N").
func dropReasonNames() map[uint32]string {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil
	}
	t, err := spec.AnyTypeByName("skb_drop_reason")
	if err != nil {
		return nil
	}
	en, ok := t.(*btf.Enum)
	if !ok {
		return nil
	}
	out := map[uint32]string{}
	for _, v := range en.Values {
		out[uint32(v.Value)] = strings.TrimPrefix(v.Name, "SKB_DROP_REASON_")
	}
	return out
}

// Tier is the weakest tier among the attached hooks (tp_btf when all are
// tp_btf), or proc when nothing is attached.
func (e *EBPF) Tier() string {
	if e == nil {
		return TierProc
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	worst := ""
	for _, t := range e.hooks {
		if worst == "" || tierRank[t] > tierRank[worst] {
			worst = t
		}
	}
	if worst == "" {
		return TierProc
	}
	return worst
}

// Hooks maps each attached hook to its tier.
func (e *EBPF) Hooks() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.hooks))
	for k, v := range e.hooks {
		out[k] = v
	}
	return out
}

// Unavailable lists hooks that did not attach, or attached only at a lower
// tier, with the kernel's reasons.
func (e *EBPF) Unavailable() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.unavailable...)
}

// TraceTIDs restricts run-queue delay to these threads (the benchmark's);
// with none registered every task is measured.
func (e *EBPF) TraceTIDs(tids ...int) error {
	m := e.maps.Maps["tids"]
	for _, t := range tids {
		if err := m.Update(uint32(t), uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("register tid %d: %w", t, err)
		}
	}
	on := uint32(0)
	if len(tids) > 0 {
		on = 1
	}
	return e.maps.Maps["runq_filter"].Update(uint32(0), on, ebpf.UpdateAny)
}

// Read returns the current counters (cumulative since LoadEBPF).
func (e *EBPF) Read() (*EBPFCounters, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.maps == nil {
		return nil, errors.New("eBPF probes closed")
	}
	c := &EBPFCounters{Time: time.Now(), Tier: TierProc, Hooks: map[string]string{},
		DropsByReason: map[string]uint64{}, RetransByNetNS: map[uint32]uint64{}}
	worst := ""
	for k, v := range e.hooks {
		c.Hooks[k] = v
		if worst == "" || tierRank[v] > tierRank[worst] {
			worst = v
		}
	}
	if worst != "" {
		c.Tier = worst
	}
	var per []probeCounters
	if err := e.maps.Maps["stats"].Lookup(uint32(0), &per); err != nil {
		return nil, fmt.Errorf("read eBPF counters: %w", err)
	}
	n := len(per)
	mk := func() Counter { return Counter{PerCPU: make([]uint64, n)} }
	vs := func() VecStats {
		return VecStats{Count: mk(), NS: mk(), RaiseCount: mk(), RaiseNS: mk()}
	}
	c.NetTX, c.NetRX = vs(), vs()
	c.Retransmits, c.RunqCount, c.RunqNS = mk(), mk(), mk()
	add := func(ctr *Counter, cpu int, v uint64) { ctr.PerCPU[cpu] = v; ctr.Total += v }
	for cpu, p := range per {
		for i, v := range []*VecStats{&c.NetTX, &c.NetRX} {
			s := p.Vec[i]
			add(&v.Count, cpu, s.Count)
			add(&v.NS, cpu, s.Ns)
			add(&v.RaiseCount, cpu, s.RaiseCount)
			add(&v.RaiseNS, cpu, s.RaiseNs)
			for b := range s.Hist {
				v.Hist[b] += s.Hist[b]
				v.RaiseHist[b] += s.RaiseHist[b]
			}
		}
		add(&c.Retransmits, cpu, p.Retrans)
		add(&c.RunqCount, cpu, p.RunqCount)
		add(&c.RunqNS, cpu, p.RunqNs)
		for b := range p.RunqHist {
			c.RunqHist[b] += p.RunqHist[b]
		}
	}
	var reason uint32
	var vals []uint64
	it := e.maps.Maps["drop_reasons"].Iterate()
	for it.Next(&reason, &vals) {
		name, ok := e.reasons[reason]
		if !ok {
			name = "reason_" + strconv.FormatUint(uint64(reason), 10)
		}
		for _, v := range vals {
			c.DropsByReason[name] += v
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read drop reasons: %w", err)
	}
	var inum uint32
	var cnt uint64
	it = e.maps.Maps["retrans_by_ns"].Iterate()
	for it.Next(&inum, &cnt) {
		c.RetransByNetNS[inum] = cnt
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read retransmits: %w", err)
	}
	return c, nil
}

// Close detaches every program and frees the maps.
func (e *EBPF) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, l := range e.links {
		errs = append(errs, l.Close())
	}
	for _, c := range e.progs {
		c.Close()
	}
	if e.maps != nil {
		e.maps.Close()
	}
	e.links, e.progs, e.maps = nil, nil, nil
	return errors.Join(errs...)
}

// NetNSInode returns the inode number of a network namespace file (e.g.
// /var/run/netns/NAME, /proc/self/ns/net), the key of
// EBPFCounters.RetransByNetNS.
func NetNSInode(path string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return uint32(st.Ino), nil
}
