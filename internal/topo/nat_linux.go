package topo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// NAT goes through nftables over netlink (google/nftables) by default: no
// external command, one atomic batch per rule, a table of our own ("latlab")
// inside the lab namespace, removed with it. Kernels without nf_tables fall
// back to the iptables command run inside the namespace with nsenter. See
// docs/design.md.

// natTable is the nftables table latlab owns in each lab namespace.
const natTable = "latlab"

type natInstaller struct {
	backend string // requested: auto, nftables, iptables
	used    string // what actually installed rules
}

func (n *natInstaller) install(nsPath, nsName string, r NAT) error {
	what := fmt.Sprintf("install %s rule in %s", r.Kind, nsName)
	switch n.backend {
	case NATIptables:
		if err := iptablesRule(nsPath, r); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		n.used = NATIptables
		return nil
	case NATNftables:
		if err := nftRule(nsPath, r); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		n.used = NATNftables
		return nil
	}
	err := nftRule(nsPath, r)
	if err == nil {
		n.used = NATNftables
		return nil
	}
	if !isNotSupported(err) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%s: nftables: %w", what, err)
	}
	if ierr := iptablesRule(nsPath, r); ierr != nil {
		return fmt.Errorf("%s: %w: nftables: %v; iptables: %v", what, ErrNotSupported, err, ierr)
	}
	n.used = NATIptables
	return nil
}

// nftRule adds one rule through nftables netlink inside the namespace, in
// table "ip latlab" or, for an IPv6 rule (natIPv6), "ip6 latlab".
//
// Equivalent to (masquerade):
//
//	nft add table ip latlab
//	nft add chain ip latlab postrouting '{ type nat hook postrouting priority srcnat; }'
//	nft add rule ip latlab postrouting ip saddr SRC oifname OUT masquerade
//
// and (dnat), for tcp and udp:
//
//	nft add chain ip latlab prerouting '{ type nat hook prerouting priority dstnat; }'
//	nft add rule ip latlab prerouting iifname IN meta l4proto tcp th dport PORT dnat to TO
func nftRule(nsPath string, r NAT) error {
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer unix.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	six := natIPv6(r)
	fam, nfproto := nftables.TableFamilyIPv4, byte(unix.NFPROTO_IPV4)
	// Source address: offset and length in the IPv4 or IPv6 header.
	saddrOff, alen := uint32(12), uint32(4)
	if six {
		fam, nfproto, saddrOff, alen = nftables.TableFamilyIPv6, unix.NFPROTO_IPV6, 8, 16
	}
	t := c.AddTable(&nftables.Table{Family: fam, Name: natTable})
	switch r.Kind {
	case NATMasquerade:
		ch := c.AddChain(&nftables.Chain{
			Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
		})
		p, _ := netip.ParsePrefix(r.Src)
		p = p.Masked()
		mask := netipMask(p)
		ex := []expr.Any{
			// ip saddr & mask == net
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: saddrOff, Len: alen},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: alen, Mask: mask, Xor: make([]byte, alen)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
		}
		if r.OutIf != "" {
			ex = append(ex,
				&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(r.OutIf)})
		}
		ex = append(ex, &expr.Masq{})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ex})
	case NATDNAT:
		ch := c.AddChain(&nftables.Chain{
			Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
		})
		to, _ := netip.ParseAddrPort(r.To)
		port := make([]byte, 2)
		binary.BigEndian.PutUint16(port, uint16(r.Port))
		toPort := make([]byte, 2)
		binary.BigEndian.PutUint16(toPort, to.Port())
		for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			var ex []expr.Any
			if r.InIf != "" {
				ex = append(ex,
					&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(r.InIf)})
			}
			ex = append(ex,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
				&expr.Immediate{Register: 1, Data: to.Addr().AsSlice()},
				&expr.Immediate{Register: 2, Data: toPort},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(nfproto), RegAddrMin: 1, RegProtoMin: 2, Specified: true},
			)
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ex})
		}
	default:
		return fmt.Errorf("unknown NAT kind %q", r.Kind)
	}
	return c.Flush()
}

// natIPv6 reports whether a rule is for IPv6: its source prefix or its
// DNAT destination is an IPv6 address.
func natIPv6(r NAT) bool {
	if p, err := netip.ParsePrefix(r.Src); err == nil {
		return p.Addr().Is6() && !p.Addr().Is4In6()
	}
	if ap, err := netip.ParseAddrPort(r.To); err == nil {
		return ap.Addr().Is6() && !ap.Addr().Is4In6()
	}
	return false
}

// netipMask is the prefix's network mask, 4 or 16 bytes.
func netipMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	bits := p.Bits()
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// ifname pads an interface name as nftables compares it (IFNAMSIZ, NUL).
func ifname(s string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, s)
	return b
}

// iptablesRule adds one rule with the iptables command inside the
// namespace. iptables-legacy is preferred: this path exists for kernels
// without nf_tables, where the nft-based iptables would fail too.
//
// Equivalent to: nsenter --net=NS iptables -t nat -A POSTROUTING -s SRC -o OUT -j MASQUERADE
func iptablesRule(nsPath string, r NAT) error {
	bin := ""
	names := []string{"iptables-legacy", "iptables"}
	if natIPv6(r) {
		names = []string{"ip6tables-legacy", "ip6tables"}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		return fmt.Errorf("%w: no %s command (apt-get install iptables)", ErrNotSupported, names[1])
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("%w: no nsenter command (util-linux)", ErrNotSupported)
	}
	var rules [][]string
	switch r.Kind {
	case NATMasquerade:
		args := []string{"-t", "nat", "-A", "POSTROUTING", "-s", r.Src}
		if r.OutIf != "" {
			args = append(args, "-o", r.OutIf)
		}
		rules = append(rules, append(args, "-j", "MASQUERADE"))
	case NATDNAT:
		for _, proto := range []string{"tcp", "udp"} {
			args := []string{"-t", "nat", "-A", "PREROUTING"}
			if r.InIf != "" {
				args = append(args, "-i", r.InIf)
			}
			rules = append(rules, append(args, "-p", proto, "--dport", strconv.Itoa(r.Port),
				"-j", "DNAT", "--to-destination", r.To))
		}
	default:
		return fmt.Errorf("unknown NAT kind %q", r.Kind)
	}
	for _, args := range rules {
		cmd := exec.Command(nsenter, append([]string{"--net=" + nsPath, "--", bin, "-w"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %v: %w: %s", bin, args, err, out)
		}
	}
	return nil
}
