package watch

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/latlab/latlab/internal/offload"
)

// captureNetState reads (never changes) the offload features and root
// qdisc of every non-loopback interface in the namespace at nsPath (""
// for the caller's own), naming them label+"/"+dev. Failures leave the
// interface out: the fingerprint is best effort.
func captureNetState(ns *NetState, nsPath, label string) error {
	var h *netlink.Handle
	var err error
	if nsPath == "" {
		h, err = netlink.NewHandle()
	} else {
		var nh netns.NsHandle
		if nh, err = netns.GetFromPath(nsPath); err == nil {
			h, err = netlink.NewHandleAt(nh)
			nh.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links in %s: %w", nsPath, err)
	}
	oc, oerr := offload.Open(nsPath)
	if oerr == nil {
		defer oc.Close()
	}
	if ns.Offload == nil {
		ns.Offload, ns.Qdiscs = map[string]map[string]bool{}, map[string]string{}
	}
	for _, lk := range links {
		a := lk.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		name := a.Name
		if label != "" {
			name = label + "/" + a.Name
		}
		if qs, err := h.QdiscList(lk); err == nil {
			for _, q := range qs {
				if q.Attrs().Parent == netlink.HANDLE_ROOT {
					ns.Qdiscs[name] = q.Type()
				}
			}
		}
		if oerr != nil {
			continue
		}
		if fs, err := oc.Features(a.Name); err == nil {
			m := map[string]bool{}
			for _, f := range fs {
				if !f.Fixed {
					m[f.Name] = f.Active
				}
			}
			ns.Offload[name] = m
		}
	}
	return nil
}
