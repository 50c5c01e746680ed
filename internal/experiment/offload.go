package experiment

import (
	"fmt"
	"sort"

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
	clients map[string]*offload.Client // by namespace
	ifaces  []topo.Iface
	snaps   []*offload.Snapshot
	current string
	// refused counts, per preset, each refusal ("lro=on refused: fixed")
	// over the interfaces.
	refused map[string]map[string]int
}

func newOffloadAxis(lab *topo.Lab) (*offloadAxis, error) {
	ifs, err := lab.Interfaces()
	if err != nil {
		return nil, err
	}
	a := &offloadAxis{clients: map[string]*offload.Client{}, current: offload.PresetDefault, refused: map[string]map[string]int{}}
	for _, i := range ifs {
		c, ok := a.clients[i.NS]
		if !ok {
			c, err = offload.Open(topo.NetNSPath(i.NS))
			if err != nil {
				a.close()
				return nil, fmt.Errorf("offloads in %s: %w", i.NS, err)
			}
			a.clients[i.NS] = c
		}
		s, err := c.Snapshot(i.Name)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("snapshot offloads of %s in %s: %w", i.Name, i.NS, err)
		}
		a.ifaces = append(a.ifaces, i)
		a.snaps = append(a.snaps, s)
	}
	return a, nil
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
			return fmt.Errorf("restore offloads of %s in %s: %w", i.Name, i.NS, err)
		}
		if len(p.Settings) == 0 {
			continue
		}
		res, err := c.Set(i.Name, p.Settings)
		if err != nil {
			return fmt.Errorf("apply offload preset %s to %s in %s: %w", p.Name, i.Name, i.NS, err)
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
