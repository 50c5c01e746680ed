package watch

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/latlab/latlab/internal/store"
)

// Fingerprint is a run's environment flattened to comparable fields:
// "kernel", "cpu", "cores", "latlab", "sysctl NAME", "offload FEATURE on
// IFACE", "qdisc IFACE".
type Fingerprint map[string]string

// NetState is what watch adds to a run's environment (read only): the
// offload features of the interfaces measured through, per interface
// ("node-a/wire0"), and their root qdiscs. Stored as the environment's
// offload ({"IFACE": {"FEATURE": true}}) and qdiscs ({"IFACE": "fq_codel"})
// JSON.
type NetState struct {
	Offload map[string]map[string]bool
	Qdiscs  map[string]string
}

// FingerprintOf flattens a stored environment. JSON fields in another
// shape than NetState's are ignored.
func FingerprintOf(e store.Environment) Fingerprint {
	f := Fingerprint{"kernel": e.Kernel, "cpu": e.CPUModel, "cores": strconv.Itoa(e.Cores), "latlab": e.Version}
	var sys map[string]string
	if json.Unmarshal(e.Sysctls, &sys) == nil {
		for k, v := range sys {
			f["sysctl "+k] = v
		}
	}
	var off map[string]map[string]bool
	if json.Unmarshal(e.Offload, &off) == nil {
		for dev, feats := range off {
			for name, on := range feats {
				f["offload "+name+" on "+dev] = onOff(on)
			}
		}
	}
	var qd map[string]string
	if json.Unmarshal(e.Qdiscs, &qd) == nil {
		for dev, q := range qd {
			f["qdisc "+dev] = q
		}
	}
	return f
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Diff lists what differs from a to b, in words, sorted: "kernel
// 6.1→6.6", "tx-tcp-segmentation on→off on wire0", "qdisc
// fq_codel→noqueue on wire0", "net.core.busy_poll 0→50". A field present
// on one side only shows "(none)" on the other.
func Diff(a, b Fingerprint) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		if va == vb && oka == okb {
			continue
		}
		if !oka || va == "" {
			va = "(none)"
		}
		if !okb || vb == "" {
			vb = "(none)"
		}
		if va == vb {
			continue
		}
		change := va + "→" + vb
		switch {
		case strings.HasPrefix(k, "offload "):
			name, dev, _ := strings.Cut(strings.TrimPrefix(k, "offload "), " on ")
			out = append(out, fmt.Sprintf("%s %s on %s", name, change, dev))
		case strings.HasPrefix(k, "qdisc "):
			out = append(out, fmt.Sprintf("qdisc %s on %s", change, strings.TrimPrefix(k, "qdisc ")))
		case strings.HasPrefix(k, "sysctl "):
			out = append(out, strings.TrimPrefix(k, "sysctl ")+" "+change)
		default:
			out = append(out, k+" "+change)
		}
	}
	slices.Sort(out)
	return out
}
