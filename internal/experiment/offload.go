package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/latlab/latlab/internal/journal"
	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/topo"
)

// offloadAxis applies offload presets to every interface of a lab: the
// wire ends, bridges, veth ends, macvlans and vxlan devices. It snapshots
// each interface first; the "default" preset restores the snapshots, and
// any other preset is the snapshot plus its settings, so presets never
// accumulate. The lab's namespaces are deleted at the end, so nothing
// outlives the run.
type offloadAxis struct {
	clients map[string]*offload.Client // by namespace path ("" = caller's)
	ifaces  []topo.Iface               // NS is a namespace path here
	snaps   []*offload.Snapshot
	// targets are the interfaces of ifaces that existed before the run
	// (the spec's interfaces): their snapshots are journalled before any
	// change and they are restored and verified at the end.
	targets []int
	// entries are the journal entries of targets, in the same order:
	// marked undone once restored, so a kept journal holds no stale
	// snapshot.
	entries []journal.Entry
	j       *journal.Journal
	current string
	// refused counts, per preset, each refusal ("lro=on refused: fixed")
	// over the interfaces.
	refused map[string]map[string]int
}

// newOffloadAxis snapshots own, a testbed's interfaces (NS a namespace
// path; they go with the testbed), and targets, interfaces that existed
// before the run, whose snapshots j journals first. allowHostNIC (the
// run's --allow-host-nic) is journalled with them: cleanup restores a
// device outside latlab's namespaces only when it was given.
func newOffloadAxis(own []topo.Iface, targets []Target, j *journal.Journal, allowHostNIC bool) (*offloadAxis, error) {
	ifs := slices.Clone(own)
	first := len(ifs)
	for _, t := range targets {
		ifs = append(ifs, topo.Iface{NS: t.NetNS, Name: t.Dev})
	}
	a := &offloadAxis{clients: map[string]*offload.Client{}, current: offload.PresetDefault, refused: map[string]map[string]int{}, j: j}
	for k, i := range ifs {
		c, ok := a.clients[i.NS]
		if !ok {
			var err error
			c, err = offload.Open(i.NS)
			if err != nil {
				a.close()
				return nil, fmt.Errorf("offloads in %s: %w", i.NS, err)
			}
			a.clients[i.NS] = c
		}
		s, err := c.Snapshot(i.Name)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("snapshot offloads of %s in %s: %w", i.Name, nsLabel(i.NS), err)
		}
		if k >= first {
			// Journal before any change: after kill -9, `latlab cleanup`
			// restores it from here.
			b, err := json.Marshal(offloadRecord{Snapshot: s, AllowHostNIC: allowHostNIC})
			e := journal.Entry{Kind: KindOffload, Name: i.Name, NS: i.NS, Data: b}
			if err == nil {
				err = j.Record(e)
			}
			if err != nil {
				a.close()
				return nil, fmt.Errorf("journal offloads of %s in %s: %w", i.Name, nsLabel(i.NS), err)
			}
			a.targets = append(a.targets, len(a.ifaces))
			a.entries = append(a.entries, e)
		}
		a.ifaces = append(a.ifaces, i)
		a.snaps = append(a.snaps, s)
	}
	return a, nil
}

// KindOffload is the journal entry kind of an interface's offload snapshot.
const KindOffload = "offload"

// offloadRecord is a KindOffload entry's data: the snapshot (its fields
// inline, as offload.UnmarshalSnapshot reads them) and whether the run was
// given --allow-host-nic.
type offloadRecord struct {
	*offload.Snapshot
	AllowHostNIC bool `json:"allow_host_nic,omitempty"`
}

// latlabNetNS reports whether path is the path of a named namespace with
// latlab's prefix (one latlab creates and journals).
func latlabNetNS(path string) bool {
	name := filepath.Base(path)
	return path != "" && topo.NetNSPath(name) == path && strings.HasPrefix(name, topo.Prefix) &&
		len(name) > len(topo.Prefix) && !strings.Contains(name, "..")
}

// restoreTargets puts the pre-existing interfaces back as they were and
// verifies them against their snapshots. Each one restored and verified is
// marked undone in the journal: with --keep the journal outlives the run,
// and a later `latlab cleanup` must not revert the interface to this
// run's snapshot after someone changed it on purpose. One that could not
// be restored keeps its entry, for cleanup to try again.
func (a *offloadAxis) restoreTargets() error {
	var errs []error
	for n, k := range a.targets {
		i := a.ifaces[k]
		res, err := a.clients[i.NS].Restore(a.snaps[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("restore offloads of %s in %s: %w", i.Name, nsLabel(i.NS), err))
			continue
		}
		if len(res.Failed) > 0 {
			errs = append(errs, fmt.Errorf("restore offloads of %s in %s: still differ from the snapshot: %v", i.Name, nsLabel(i.NS), res.Failed))
			continue
		}
		if a.j != nil {
			if err := a.j.Undone(a.entries[n]); err != nil {
				errs = append(errs, fmt.Errorf("journal the restore of %s in %s: %w", i.Name, nsLabel(i.NS), err))
			}
		}
	}
	a.current = offload.PresetDefault
	return errors.Join(errs...)
}

func nsLabel(ns string) string {
	if ns == "" {
		return "the caller's namespace"
	}
	return ns
}

// UndoHandlers returns the journal undo handlers of everything an
// experiment creates or changes: lab namespaces (topo) and offload
// snapshots of pre-existing interfaces. Other kinds (Docker runs) are
// their packages' own: internal/cli adds them to build the registry that
// LabSpec.Undoers and `latlab cleanup` use. Handlers of objects latlab creates
// refuse names outside latlab's prefix (topo.Prefix); an offload entry is
// refused unless its snapshot is of the device and namespace it names, and
// that namespace is one of latlab's (topo.Prefix, under the netns
// directory) or the run journalled --allow-host-nic: a damaged or forged
// entry cannot make cleanup change the host's NICs or another namespace's.
func UndoHandlers() journal.Undoers {
	h := topo.UndoHandlers()
	h[topo.KindNetNS] = journal.RequirePrefix(topo.Prefix, h[topo.KindNetNS])
	h[KindOffload] = func(e journal.Entry) error {
		s, err := offload.UnmarshalSnapshot(e.Data)
		if err != nil {
			return err
		}
		if s.Dev != e.Name || s.NetNS != e.NS {
			return fmt.Errorf("refusing to restore: the snapshot is of %s in %s, the entry names %s in %s", s.Dev, nsLabel(s.NetNS), e.Name, nsLabel(e.NS))
		}
		var rec offloadRecord
		if err := json.Unmarshal(e.Data, &rec); err != nil {
			return fmt.Errorf("parse offload entry: %w", err)
		}
		if !latlabNetNS(e.NS) && !rec.AllowHostNIC {
			return fmt.Errorf("refusing to restore offloads of %s in %s: not a namespace latlab creates (%s*) and the run did not record --allow-host-nic", e.Name, nsLabel(e.NS), topo.NetNSPath(topo.Prefix))
		}
		res, err := offload.Restore(s)
		if err != nil {
			if errors.Is(err, offload.ErrNoDevice) {
				return nil // the device is gone: nothing to restore
			}
			return err
		}
		if len(res.Failed) > 0 {
			return fmt.Errorf("still differs from the snapshot: %v", res.Failed)
		}
		return nil
	}
	return h
}

// apply puts every interface in preset p's state.
func (a *offloadAxis) apply(p offload.Preset) error {
	if a.current == p.Name {
		return nil
	}
	first := a.refused[p.Name] == nil
	if first {
		a.refused[p.Name] = map[string]int{}
	}
	for k, i := range a.ifaces {
		c := a.clients[i.NS]
		if _, err := c.Restore(a.snaps[k]); err != nil {
			return fmt.Errorf("restore offloads of %s in %s: %w", i.Name, nsLabel(i.NS), err)
		}
		if len(p.Settings) == 0 {
			continue
		}
		res, err := c.Set(i.Name, p.Settings)
		if err != nil {
			return fmt.Errorf("apply offload preset %s to %s in %s: %w", p.Name, i.Name, nsLabel(i.NS), err)
		}
		if first {
			for _, r := range res.Refused {
				want := "off"
				if r.Want {
					want = "on"
				}
				a.refused[p.Name][fmt.Sprintf("%s=%s refused (%s)", r.Name, want, r.Reason)]++
			}
		}
	}
	a.current = p.Name
	return nil
}

func (a *offloadAxis) close() {
	for _, c := range a.clients {
		c.Close()
	}
}

// notes renders the refusals: "lro=on refused (fixed) on 9 interfaces".
func (a *offloadAxis) notes() map[string][]string {
	out := map[string][]string{}
	for p, m := range a.refused {
		for what, n := range m {
			out[p] = append(out[p], fmt.Sprintf("%s on %d interface(s)", what, n))
		}
		sort.Strings(out[p])
	}
	return out
}
