package offload

import (
	"fmt"
	"sort"
	"strings"
)

// Preset is a named set of feature settings applied together, one value of
// the offload axis of an experiment. The preset named PresetDefault changes
// nothing: it restores each device's state from before the experiment.
type Preset struct {
	Name     string    `json:"name" yaml:"name"`
	Settings []Setting `json:"settings,omitempty" yaml:"settings,omitempty"`
}

// PresetDefault leaves (or puts back) every device as it was.
const PresetDefault = "default"

// builtinPresets are the presets known by name. Short aliases expand as
// ethtool -K expands them (tso → tx-tcp-segmentation, tx-tcp6-..., ...).
var builtinPresets = map[string][]Setting{
	PresetDefault: nil,
	"all-on":      settings("tx=on rx=on sg=on tso=on gso=on gro=on"),
	"all-off":     settings("tx=off rx=off sg=off tso=off gso=off gro=off lro=off"),
	"seg-off":     settings("tso=off gso=off"),
	"gro-off":     settings("gro=off"),
	"gro-on":      settings("gro=on"),
	"csum-off":    settings("tx=off rx=off"),
}

func settings(s string) []Setting {
	out, err := ParseSettings(strings.Fields(s))
	if err != nil {
		panic(err)
	}
	return out
}

// PresetNames lists the built-in presets.
func PresetNames() []string {
	var out []string
	for n := range builtinPresets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParsePreset parses one preset: a built-in name ("seg-off"), or a
// user-given set "NAME:feature=on|off,feature=on|off" (the name is optional:
// "tso=off,gro=on" is named after its settings).
func ParsePreset(s string) (Preset, error) {
	s = strings.TrimSpace(s)
	if set, ok := builtinPresets[s]; ok {
		return Preset{Name: s, Settings: set}, nil
	}
	name, body, hasName := strings.Cut(s, ":")
	if !hasName {
		name, body = s, s
	}
	if !strings.Contains(body, "=") {
		return Preset{}, fmt.Errorf("offload preset %q: want one of %s, or NAME:feature=on|off,...", s, strings.Join(PresetNames(), ", "))
	}
	set, err := ParseSettings(strings.Split(body, ","))
	if err != nil {
		return Preset{}, fmt.Errorf("offload preset %q: %w", s, err)
	}
	for _, st := range set {
		// Kernel feature names vary by kernel and device: they are checked
		// against the device when applied. Short and long ethtool names
		// are known here, so a typo of one is caught at once.
		if !plausibleName(st.Name) {
			var all []string
			for _, a := range aliases {
				all = append(all, a.short, a.long)
			}
			msg := ""
			if sg := Suggest(st.Name, all); len(sg) > 0 {
				msg = "; did you mean " + strings.Join(sg, ", ") + "?"
			}
			return Preset{}, fmt.Errorf("offload preset %q: %q: %w%s", s, st.Name, ErrUnknownFeature, msg)
		}
	}
	return Preset{Name: name, Settings: set}, nil
}

// ParsePresets parses a comma-separated list of built-in names, and
// user-given presets separated by ';' ("all-on,seg-off" or
// "all-on;mine:tso=off,gro=on").
func ParsePresets(s string) ([]Preset, error) {
	var parts []string
	if strings.Contains(s, ";") || strings.Contains(s, "=") {
		parts = strings.Split(s, ";")
	} else {
		parts = strings.Split(s, ",")
	}
	var out []Preset
	seen := map[string]bool{}
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			continue
		}
		pr, err := ParsePreset(p)
		if err != nil {
			return nil, err
		}
		if seen[pr.Name] {
			return nil, fmt.Errorf("offload preset %q given twice", pr.Name)
		}
		seen[pr.Name] = true
		out = append(out, pr)
	}
	return out, nil
}

// plausibleName accepts ethtool's short and long names and anything shaped
// like a kernel feature name (rx-..., tx-..., with at least one dash).
func plausibleName(n string) bool {
	for _, a := range aliases {
		if n == a.short || n == a.long {
			return true
		}
	}
	return (strings.HasPrefix(n, "rx-") || strings.HasPrefix(n, "tx-") || strings.Count(n, "-") >= 2) &&
		strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}
