package topo

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/datapath"
	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/netns"
)

// builder holds the netlink handles of one Build.
type builder struct {
	lab     *Lab
	nat     *natInstaller
	handles map[string]*netlink.Handle // logical ns -> handle
	fds     map[string]vnetns.NsHandle
	ipv6    bool // the topology has IPv6 addresses (t.HasIPv6)
}

// Build creates the topology's base objects and the selected modes. Every
// namespace is journalled before it is created; nothing is created in or
// changed in the caller's own namespace (links are created inside lab
// namespaces, veth peers and macvlans directly in their target namespace).
//
// A failure in Base fails the build (everything created is torn down). A
// mode that fails is reported in its ModeState (skipped when the kernel
// lacks a feature, failed otherwise) and the others go on.
func Build(ctx context.Context, t *Topology, opts BuildOptions) (*Lab, error) {
	start := time.Now()
	if opts.Journal == nil {
		return nil, errors.New("build topology: no journal")
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("build topology: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = NewPrefix()
	}
	if !strings.HasPrefix(opts.Prefix, Prefix) {
		return nil, fmt.Errorf("build topology: prefix %q must start with %q", opts.Prefix, Prefix)
	}
	selected := opts.Modes
	if selected == nil {
		selected = t.DefaultModeNames()
	}
	for _, name := range selected {
		if _, ok := t.Mode(name); !ok {
			return nil, fmt.Errorf("build topology: unknown mode %q (have %s)", name, strings.Join(t.ModeNames(), ", "))
		}
	}
	lab := &Lab{Topology: t, Prefix: opts.Prefix, journal: opts.Journal}
	b := &builder{
		lab:     lab,
		nat:     &natInstaller{backend: opts.NAT},
		handles: map[string]*netlink.Handle{},
		fds:     map[string]vnetns.NsHandle{},
		ipv6:    t.HasIPv6(),
	}
	defer b.close()
	if err := b.objects(ctx, &t.Base); err != nil {
		b.close()
		lab.Teardown()
		return nil, fmt.Errorf("build topology base: %w", err)
	}
	for _, m := range t.Modes {
		if !slices.Contains(selected, m.Name) {
			continue
		}
		st := &ModeState{Mode: m, Status: StatusOK, ClientNS: lab.NSName(m.Client), ServerNS: lab.NSName(m.Server)}
		lab.Modes = append(lab.Modes, st)
		if err := ctx.Err(); err != nil {
			b.close()
			lab.Teardown()
			return nil, err
		}
		before := len(lab.programs)
		err := b.objects(ctx, &m.Objects)
		for _, a := range lab.programs[before:] {
			st.Programs = append(st.Programs, a.Info)
		}
		if err != nil {
			// Detach what the mode attached to shared namespaces' devices.
			for _, a := range lab.programs[before:] {
				a.Close()
			}
			lab.programs, st.Programs = lab.programs[:before], nil
			st.Reason = err.Error()
			st.Status = StatusFailed
			if errors.Is(err, ErrNotSupported) {
				st.Status = StatusSkipped
			}
			// Drop the mode's own namespaces; what it added to shared
			// namespaces is harmless and goes with them at teardown.
			for _, ns := range m.Namespaces {
				b.forget(ns)
				DeleteNetNS(lab.NSName(ns))
			}
		}
	}
	lab.NATBackend = b.nat.used
	lab.BuildTime = time.Since(start)
	return lab, nil
}

// Teardown deletes every namespace the lab created (with everything in
// them: links, routes, NAT rules) and removes the journal. Servers and
// sockets in the namespaces should be closed first so the kernel frees them
// at once.
//
// Equivalent to: ip netns delete NAME, for each.
func (l *Lab) Teardown() error {
	var errs []error
	for _, a := range slices.Backward(l.programs) {
		if err := a.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.programs = nil
	if l.cgroup != "" {
		if err := datapath.LeaveCgroup(l.prevCgroup, l.cgroup); err != nil {
			errs = append(errs, err)
		}
		l.cgroup = ""
	}
	for _, name := range slices.Backward(l.namespaces) {
		if err := DeleteNetNS(name); err != nil {
			errs = append(errs, err)
		}
	}
	l.namespaces = nil
	if len(errs) > 0 {
		return fmt.Errorf("teardown %s: %w", l.Prefix, errors.Join(errs...))
	}
	if l.journal != nil {
		if err := l.journal.Remove(); err != nil {
			return err
		}
		l.journal = nil
	}
	return nil
}

// Keep leaves the lab up: the journal is marked kept, so only `latlab
// cleanup` removes it. eBPF programs attached through TCX are held by this
// process and detach when it exits (nothing is pinned: bpffs may not be
// mounted, and mounting it is a change to the host); tc clsact filters
// stay with their devices.
func (l *Lab) Keep() error {
	if l.journal == nil {
		return nil
	}
	err := l.journal.MarkKept()
	l.journal = nil
	return err
}

func (b *builder) close() {
	for k, h := range b.handles {
		h.Close()
		delete(b.handles, k)
	}
	for k, fd := range b.fds {
		fd.Close()
		delete(b.fds, k)
	}
}

func (b *builder) forget(ns string) {
	if h, ok := b.handles[ns]; ok {
		h.Close()
		delete(b.handles, ns)
	}
	if fd, ok := b.fds[ns]; ok {
		fd.Close()
		delete(b.fds, ns)
	}
}

func (b *builder) handle(ns string) (*netlink.Handle, error) {
	if h, ok := b.handles[ns]; ok {
		return h, nil
	}
	fd, err := vnetns.GetFromPath(b.lab.NSPath(ns))
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", b.lab.NSName(ns), err)
	}
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("netlink in netns %s: %w", b.lab.NSName(ns), err)
	}
	b.handles[ns], b.fds[ns] = h, fd
	return h, nil
}

func (b *builder) objects(ctx context.Context, o *Objects) error {
	for _, ns := range o.Namespaces {
		name := b.lab.NSName(ns)
		e := journal.Entry{Kind: KindNetNS, Name: name}
		if err := b.lab.journal.Record(e); err != nil {
			return err
		}
		if err := CreateNetNS(name); err != nil {
			// Not ours (a name that was taken, say): neither teardown nor
			// a later sweep of the journal may delete it.
			return errors.Join(err, b.lab.journal.Undone(e))
		}
		b.lab.namespaces = append(b.lab.namespaces, name) // teardown: only what this process created
		if b.ipv6 {
			// Links created or moved here from now on skip duplicate
			// address detection, link-local addresses included: NDP from
			// a tentative address would stall the first round trips.
			for _, key := range []string{"net.ipv6.conf.default.accept_dad", "net.ipv6.conf.all.accept_dad"} {
				if err := SetSysctl(NetNSPath(name), key, "0"); err != nil {
					return err
				}
			}
		}
	}
	for i := range o.Links {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.link(&o.Links[i]); err != nil {
			return err
		}
	}
	for i := range o.Routes {
		if err := b.route(&o.Routes[i]); err != nil {
			return err
		}
	}
	for _, s := range o.Sysctls {
		if err := SetSysctl(b.lab.NSPath(s.NS), s.Key, s.Value); err != nil {
			return err
		}
	}
	for _, n := range o.NAT {
		if err := b.nat.install(b.lab.NSPath(n.NS), b.lab.NSName(n.NS), n); err != nil {
			return err
		}
	}
	for _, p := range o.Programs {
		if p.Program == datapath.ProgSockmap {
			if err := b.sockmap(p); err != nil {
				return err
			}
			continue
		}
		a, err := datapath.Attach(datapath.Spec{NSPath: b.lab.NSPath(p.NS), NS: b.lab.NSName(p.NS),
			Dev: p.Dev, Hook: p.Hook, Program: p.Program, Endpoints: p.Endpoints, Method: p.Method})
		if err != nil {
			return err
		}
		b.lab.programs = append(b.lab.programs, a)
	}
	return nil
}

// sockmap attaches a sockmap short-circuit. Its sock_ops program sees
// only sockets of its cgroup, so the lab makes a cgroup of its own (a
// child of latlab's, journalled before it is made) and moves this process
// into it; Teardown moves it back and removes the cgroup, `latlab cleanup`
// removes it after a crash (a dead process has left it empty).
//
// Equivalent to: mkdir CGROUP; echo $$ > CGROUP/cgroup.procs; bpftool
// cgroup attach CGROUP sock_ops ...; bpftool prog attach ... msg_verdict ...
func (b *builder) sockmap(p Program) error {
	if b.lab.cgroup == "" {
		cg, err := datapath.CgroupPath(b.lab.Prefix)
		if err != nil {
			return err
		}
		e := journal.Entry{Kind: KindCgroup, Name: cg}
		if err := b.lab.journal.Record(e); err != nil {
			return err
		}
		prev, err := datapath.EnterCgroup(cg)
		if err != nil {
			return errors.Join(err, b.lab.journal.Undone(e))
		}
		b.lab.cgroup, b.lab.prevCgroup = cg, prev
	}
	a, err := datapath.AttachSockmap(datapath.SockmapSpec{NSPath: b.lab.NSPath(p.NS), NS: b.lab.NSName(p.NS),
		Port: p.Port, Cgroup: b.lab.cgroup})
	if err != nil {
		return err
	}
	b.lab.programs = append(b.lab.programs, a)
	return nil
}

// link creates one link (and a veth's peer), sets addresses and MTU,
// enslaves it and brings it up.
//
// Equivalent to: ip -n NS link add NAME type KIND ... ; ip -n NS addr add ...;
// ip -n NS link set NAME master BR up
func (b *builder) link(l *Link) error {
	what := fmt.Sprintf("create %s %s in %s", l.Kind, l.Name, b.lab.NSName(l.NS))
	h, err := b.handle(l.NS)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = l.Name
	attrs.MTU = l.MTU
	var nl netlink.Link
	addIn := h // the namespace the RTM_NEWLINK is sent in
	switch l.Kind {
	case KindBridge:
		nl = &netlink.Bridge{LinkAttrs: attrs}
	case KindVeth:
		if _, err := b.handle(l.Peer.NS); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		v := netlink.NewVeth(attrs)
		v.PeerName = l.Peer.Name
		v.PeerMTU = uint32(l.Peer.MTU)
		if l.Peer.NS != l.NS {
			v.PeerNamespace = netlink.NsFd(int(b.fds[l.Peer.NS]))
		}
		nl = v
	case KindNetkit:
		// Both ends forward by default: no program is attached (Cilium's
		// programs decide per packet; a blackhole policy without them
		// would drop everything).
		if _, err := b.handle(l.Peer.NS); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		nk := &netlink.Netkit{LinkAttrs: attrs, Mode: netlink.NETKIT_MODE_L3,
			Policy: netlink.NETKIT_POLICY_FORWARD, PeerPolicy: netlink.NETKIT_POLICY_FORWARD}
		if l.Mode == "l2" {
			nk.Mode = netlink.NETKIT_MODE_L2
		}
		peer := netlink.LinkAttrs{Name: l.Peer.Name, MTU: l.Peer.MTU}
		if l.Peer.NS != l.NS {
			peer.Namespace = netlink.NsFd(int(b.fds[l.Peer.NS]))
		}
		nk.SetPeerAttrs(&peer)
		nl = nk
	case KindMacvlan, KindIPvlan:
		pns := l.ParentNS
		if pns == "" {
			pns = l.NS
		}
		ph, err := b.handle(pns)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		parent, err := ph.LinkByName(l.Parent)
		if err != nil {
			return fmt.Errorf("%s: parent %s in %s: %w", what, l.Parent, b.lab.NSName(pns), err)
		}
		attrs.ParentIndex = parent.Attrs().Index
		if pns != l.NS {
			attrs.Namespace = netlink.NsFd(int(b.fds[l.NS]))
			addIn = ph
		}
		if l.Kind == KindMacvlan {
			nl = &netlink.Macvlan{LinkAttrs: attrs, Mode: macvlanMode(l.Mode)}
		} else {
			nl = &netlink.IPVlan{LinkAttrs: attrs, Mode: ipvlanMode(l.Mode)}
		}
	case KindVXLAN:
		vx := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: l.VNI, Port: l.Port, Learning: true}
		if vx.Port == 0 {
			vx.Port = 4789
		}
		if l.Dev != "" {
			dev, err := h.LinkByName(l.Dev)
			if err != nil {
				return fmt.Errorf("%s: underlay %s: %w", what, l.Dev, err)
			}
			vx.VtepDevIndex = dev.Attrs().Index
		}
		if l.Local != "" {
			vx.SrcAddr = net.ParseIP(l.Local)
		}
		if l.Remote != "" {
			vx.Group = net.ParseIP(l.Remote)
		}
		nl = vx
	default:
		return fmt.Errorf("%s: unknown kind", what)
	}
	if err := addIn.LinkAdd(nl); err != nil {
		if isNotSupported(err) {
			return fmt.Errorf("%s: %w: %v%s", what, ErrNotSupported, err, kernelConfigHint(l.Kind))
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := b.setup(h, l.NS, l.Name, l.Addrs, l.Master); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if l.Kind == KindVeth || l.Kind == KindNetkit {
		ph := b.handles[l.Peer.NS]
		if err := b.setup(ph, l.Peer.NS, l.Peer.Name, l.Peer.Addrs, l.Peer.Master); err != nil {
			return fmt.Errorf("%s: peer %s in %s: %w", what, l.Peer.Name, b.lab.NSName(l.Peer.NS), err)
		}
	}
	return nil
}

func (b *builder) setup(h *netlink.Handle, ns, name string, addrs []string, master string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		if addr.IP.To4() == nil {
			// A lab address is never a duplicate: skip IPv6 duplicate
			// address detection, which would hold it tentative (unusable)
			// for about a second (ip addr add ... nodad).
			addr.Flags |= unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s: %w", a, err)
		}
	}
	if master != "" {
		br, err := h.LinkByName(master)
		if err != nil {
			return fmt.Errorf("master %s: %w", master, err)
		}
		if err := h.LinkSetMaster(link, br); err != nil {
			return fmt.Errorf("set master %s: %w", master, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

// route adds one route.
//
// Equivalent to: ip -n NS route add DST [via GW] [dev DEV] [scope link] [onlink]
func (b *builder) route(r *Route) error {
	what := fmt.Sprintf("add route %s in %s", r.Dst, b.lab.NSName(r.NS))
	h, err := b.handle(r.NS)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	nr := &netlink.Route{}
	if r.Dst != "default" {
		p, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			a, _ := netip.ParseAddr(r.Dst)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		nr.Dst = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	} else if via, err := netip.ParseAddr(r.Via); err == nil && via.Is6() && !via.Is4In6() {
		nr.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	} else {
		nr.Dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	if r.Via != "" {
		nr.Gw = net.ParseIP(r.Via)
	}
	if r.Dev != "" {
		link, err := h.LinkByName(r.Dev)
		if err != nil {
			return fmt.Errorf("%s: dev %s: %w", what, r.Dev, err)
		}
		nr.LinkIndex = link.Attrs().Index
	}
	if r.Scope == "link" {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.OnLink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	if err := h.RouteAdd(nr); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func macvlanMode(s string) netlink.MacvlanMode {
	switch s {
	case "private":
		return netlink.MACVLAN_MODE_PRIVATE
	case "vepa":
		return netlink.MACVLAN_MODE_VEPA
	case "passthru":
		return netlink.MACVLAN_MODE_PASSTHRU
	}
	return netlink.MACVLAN_MODE_BRIDGE
}

func ipvlanMode(s string) netlink.IPVlanMode {
	switch s {
	case "l3":
		return netlink.IPVLAN_MODE_L3
	case "l3s":
		return netlink.IPVLAN_MODE_L3S
	}
	return netlink.IPVLAN_MODE_L2
}

// isNotSupported reports whether a link-creation error means the kernel has
// no such link type: RTM_NEWLINK answers EOPNOTSUPP ("Unknown device type")
// when the kind is neither built in nor loadable as a module.
func isNotSupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT)
}

// kernelConfigHint explains a missing link type from the kernel's own
// configuration when /proc/config.gz is there.
func kernelConfigHint(kind string) string {
	opt := map[string]string{
		KindIPvlan: "CONFIG_IPVLAN", KindMacvlan: "CONFIG_MACVLAN",
		KindVXLAN: "CONFIG_VXLAN", KindBridge: "CONFIG_BRIDGE", KindVeth: "CONFIG_VETH",
		KindNetkit: "CONFIG_NETKIT",
	}[kind]
	if opt == "" {
		return ""
	}
	state := KernelConfig(opt)
	if kind == KindNetkit {
		opt += ", Linux 6.7 or later"
	}
	if state == "" {
		return fmt.Sprintf(" (the kernel has no %s link type; it needs %s)", kind, opt)
	}
	return fmt.Sprintf(" (the kernel has no %s link type: %s)", kind, state)
}

// KernelConfig returns the line of /proc/config.gz that sets opt ("# CONFIG_IPVLAN
// is not set", "CONFIG_IPVLAN=m"), or "" when the kernel does not publish
// its configuration.
func KernelConfig(opt string) string {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return ""
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return ""
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, opt+"=") || line == "# "+opt+" is not set" {
			return line
		}
	}
	return ""
}

// SetSysctl writes a per-namespace net.* sysctl inside the namespace at
// nsPath. The write happens on a throwaway OS thread that entered the
// namespace; if entering fails nothing is written, so the caller's (the
// host's) sysctls are never touched.
//
// Equivalent to: ip netns exec NS sysctl -w KEY=VALUE
func SetSysctl(nsPath, key, value string) error {
	what := fmt.Sprintf("set sysctl %s=%s in %s", key, value, nsPath)
	if !strings.HasPrefix(key, "net.") {
		return fmt.Errorf("%s: only net.* keys are per namespace", what)
	}
	if nsPath == "" {
		// netns.Do would write the caller's (the host's) sysctl.
		return fmt.Errorf("%s: no namespace given (never the caller's own)", what)
	}
	if err := netns.Do(nsPath, func() error {
		p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		return os.WriteFile(p, []byte(value), 0o644)
	}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Interfaces lists every interface in the lab's namespaces except loopback.
//
// Equivalent to: ip -n NS link show, for each namespace.
func (l *Lab) Interfaces() ([]Iface, error) {
	var out []Iface
	for _, ns := range l.namespaces {
		if _, err := os.Stat(NetNSPath(ns)); err != nil {
			continue // a mode that failed to build removed its namespaces
		}
		h, err := vnetns.GetFromPath(NetNSPath(ns))
		if err != nil {
			return nil, fmt.Errorf("list interfaces of %s: %w", ns, err)
		}
		nh, err := netlink.NewHandleAt(h)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("list interfaces of %s: %w", ns, err)
		}
		links, err := nh.LinkList()
		nh.Close()
		h.Close()
		if err != nil {
			return nil, fmt.Errorf("list interfaces of %s: %w", ns, err)
		}
		for _, lk := range links {
			if lk.Attrs().Flags&net.FlagLoopback != 0 {
				continue
			}
			out = append(out, Iface{NS: ns, Name: lk.Attrs().Name, Kind: lk.Type()})
		}
	}
	return out, nil
}
