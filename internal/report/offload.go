package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"text/tabwriter"

	"github.com/latlab/latlab/internal/offload"
)

// OffloadWhere names a device the way the offload commands' output and
// errors do: "veth0", or "veth0 in netns /run/netns/lab1".
func OffloadWhere(netns, dev string) string {
	if netns == "" {
		return dev
	}
	return dev + " in netns " + netns
}

// OffloadShow is `latlab offload show --json`: ethtool's feature names
// and ethtool -C/-G/-L parameter names; a nil map is a query the driver
// does not support (null).
type OffloadShow struct {
	NetNS    string                   `json:"netns,omitempty"`
	Dev      string                   `json:"dev"`
	Backend  string                   `json:"backend"`
	Features map[string]offload.State `json:"features"`
	Coalesce offload.Coalesce         `json:"coalesce"`
	Rings    offload.Rings            `json:"rings"`
	Channels offload.Channels         `json:"channels"`
}

// WriteOffloadShow writes a device's features, coalescing, rings and
// channels (`latlab offload show`): as ethtool -k/-c/-g/-l print them
// (FormatTable), or as OffloadShow (FormatJSON).
func WriteOffloadShow(w io.Writer, out Output, info *offload.Info) error {
	switch out.Format {
	case FormatJSON:
		return WriteJSON(w, out.Meta, OffloadShow{
			NetNS: info.NetNS, Dev: info.Dev, Backend: info.Backend,
			Features: info.Features.Map(),
			Coalesce: info.Coalesce, Rings: info.Rings, Channels: info.Channels,
		})
	case FormatTable:
	default:
		return offloadFormat(out.Format)
	}
	fmt.Fprintf(w, "Features for %s (ethtool %s):\n", OffloadWhere(info.NetNS, info.Dev), info.Backend)
	for _, g := range info.Features.Layout() {
		if g.Single() {
			fmt.Fprintf(w, "%s: %s\n", g.Name, g.Members[0].State)
			continue
		}
		fmt.Fprintf(w, "%s: %s\n", g.Name, onOff(g.Active()))
		for _, f := range g.Members {
			fmt.Fprintf(w, "\t%s: %s\n", f.Name, f.State)
		}
	}
	writeParams(w, "Coalescing", "ethtool -c", info.Coalesce, offload.CoalesceParamNames())
	writeParams(w, "Rings", "ethtool -g", info.Rings, offload.RingParamNames())
	writeParams(w, "Channels", "ethtool -l", info.Channels, offload.ChannelParamNames())
	return nil
}

// writeParams writes one parameter block under its title: the names in
// order first, then any others the driver reported, sorted.
func writeParams(w io.Writer, title, tool string, p offload.Params, order []string) {
	fmt.Fprintf(w, "\n%s (%s):", title, tool)
	if p == nil {
		fmt.Fprintln(w, " not supported by the driver")
		return
	}
	if len(p) == 0 {
		fmt.Fprintln(w, " none reported")
		return
	}
	fmt.Fprintln(w)
	seen := map[string]bool{}
	for _, k := range order {
		if v, ok := p[k]; ok {
			fmt.Fprintf(w, "%s: %d\n", k, v)
			seen[k] = true
		}
	}
	var rest []string
	for k := range p {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		fmt.Fprintf(w, "%s: %d\n", k, p[k])
	}
}

// WriteOffloadSet writes what `latlab offload set` did: changed, refused,
// dependent and unchanged features (FormatTable), or res itself
// (FormatJSON).
func WriteOffloadSet(w io.Writer, out Output, res *offload.SetResult) error {
	switch out.Format {
	case FormatJSON:
		return WriteJSON(w, out.Meta, res)
	case FormatTable:
	default:
		return offloadFormat(out.Format)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	section := func(title string, n int) bool {
		if n == 0 {
			return false
		}
		fmt.Fprintf(tw, "%s:\n", title)
		return true
	}
	if section("changed", len(res.Changed)) {
		for _, c := range res.Changed {
			fmt.Fprintf(tw, "  %s\t%s -> %s\n", c.Name, onOff(c.From), onOff(c.To))
		}
	}
	if section("refused", len(res.Refused)) {
		for _, r := range res.Refused {
			fmt.Fprintf(tw, "  %s\twant %s, is %s\t%s\n", r.Name, onOff(r.Want), onOff(r.Active), r.Reason)
		}
	}
	if section("dependent (moved with the request)", len(res.Dependent)) {
		for _, c := range res.Dependent {
			fmt.Fprintf(tw, "  %s\t%s -> %s\n", c.Name, onOff(c.From), onOff(c.To))
		}
	}
	if section("unchanged (already as requested)", len(res.Unchanged)) {
		for _, n := range res.Unchanged {
			fmt.Fprintf(tw, "  %s\n", n)
		}
	}
	if len(res.Changed)+len(res.Refused)+len(res.Dependent)+len(res.Unchanged) == 0 {
		fmt.Fprintln(tw, "nothing to do")
	}
	return tw.Flush()
}

// CoalesceChange is one parameter of `latlab offload coalesce`: its value
// before, what was requested, and what the device reads back after.
type CoalesceChange struct {
	Before    uint32 `json:"before"`
	After     uint32 `json:"after"`
	Requested uint32 `json:"requested"`
}

// Taken says the device holds the requested value.
func (c CoalesceChange) Taken() bool { return c.After == c.Requested }

// CoalesceNotTaken lists, sorted, the parameters whose requested value
// the device did not take.
func CoalesceNotTaken(changes map[string]CoalesceChange) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		if !changes[k].Taken() {
			out = append(out, k)
		}
	}
	return out
}

// CoalesceChanges pairs each requested parameter with its readings
// before and after.
func CoalesceChanges(want, before, after offload.Coalesce) map[string]CoalesceChange {
	out := map[string]CoalesceChange{}
	for k, v := range want {
		out[k] = CoalesceChange{Before: before[k], After: after[k], Requested: v}
	}
	return out
}

// WriteCoalesce writes `latlab offload coalesce`'s result: one "name:
// before -> after" line per parameter, sorted, noting those the driver
// did not take (FormatTable), or the map (FormatJSON).
func WriteCoalesce(w io.Writer, out Output, changes map[string]CoalesceChange) error {
	switch out.Format {
	case FormatJSON:
		return WriteJSON(w, out.Meta, changes)
	case FormatTable:
	default:
		return offloadFormat(out.Format)
	}
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		ch := changes[k]
		note := ""
		if !ch.Taken() {
			note = "  (the driver kept its own value)"
		}
		if _, err := fmt.Fprintf(w, "%s: %d -> %d%s\n", k, ch.Before, ch.After, note); err != nil {
			return err
		}
	}
	return nil
}

// offloadFormat refuses a format the offload commands do not write.
func offloadFormat(format string) error {
	if err := CheckFormat(format); err != nil {
		return err
	}
	return fmt.Errorf("format %q: offload output is table or json", format)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
