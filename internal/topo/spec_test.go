package topo

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// ParseTopology refuses what it cannot build with the file, the line of
// the offending value and the bound.
func TestParseTopologyErrorsNameLine(t *testing.T) {
	const good = "name: x\nbase:\n  namespaces: [a, b]\nmodes:\n  - name: m\n    client: a\n    server: b\n    target: 10.0.0.2:7707\n"
	if _, err := ParseTopology([]byte(good), "t.yaml"); err != nil {
		t.Fatalf("good topology: %v", err)
	}
	manyModes := "name: x\nbase:\n  namespaces: [a]\nmodes:\n"
	for i := 0; i <= MaxModes; i++ {
		manyModes += fmt.Sprintf("  - {name: m%d, client: a, server: a, target: 10.0.0.1:1}\n", i)
	}
	for _, c := range []struct {
		name, yaml string
		want       string // the whole error starts with it
	}{
		{"second document", good + "---\nname: y\n", "t.yaml:9: multiple YAML documents: a second one starts at line 9"},
		{"unknown field", strings.Replace(good, "    target:", "    colour: red\n    target:", 1), "t.yaml:8: field colour not found in a mode (allowed: name, description, client, server, target, listen, sidecar, opt_in, namespaces, links, routes, sysctls, nat, programs)"},
		{"unknown top-level field", "colour: red\n" + good, "t.yaml:1: field colour not found in the topology (allowed: name, description, base, modes)"},
		{"bad target", strings.Replace(good, "10.0.0.2:7707", "nowhere", 1), `t.yaml:8: mode m: target "nowhere": want IP:PORT`},
		{"mtu too large", strings.Replace(good, "  namespaces: [a, b]\n", "  namespaces: [a, b]\n  links:\n    - {kind: bridge, ns: a, name: br0, mtu: 65536}\n", 1), "t.yaml:5: base: link a/br0: mtu 65536 outside 68..65535"},
		{"mtu too small", strings.Replace(good, "  namespaces: [a, b]\n", "  namespaces: [a, b]\n  links:\n    - kind: veth\n      ns: a\n      name: v0\n      peer: {ns: b, name: v1, mtu: 10}\n", 1), "t.yaml:8: base: link a/v0 peer: mtu 10 outside 68..65535"},
		{"vxlan port", strings.Replace(good, "  namespaces: [a, b]\n", "  namespaces: [a, b]\n  links:\n    - {kind: vxlan, ns: a, name: vx0, vni: 1, port: 70000}\n", 1), "t.yaml:5: base: link a/vx0: port 70000 outside 1..65535"},
		{"redirect-peer on egress", strings.Replace(good, "    target:", "    programs:\n      - {ns: a, dev: eth0, hook: egress, program: redirect-peer, endpoints: [lxc0]}\n    target:", 1), `t.yaml:9: mode m: program redirect-peer at a/eth0: program redirect-peer: hook "egress" (want ingress)`},
		{"unknown program", strings.Replace(good, "    target:", "    programs:\n      - {ns: a, dev: eth0, hook: ingress, program: xdp-magic}\n    target:", 1), `t.yaml:9: mode m: program xdp-magic at a/eth0: program "xdp-magic" (want one of fib-redirect, redirect-peer)`},
		{"redirect-peer without endpoints", strings.Replace(good, "    target:", "    programs:\n      - {ns: a, dev: eth0, hook: ingress, program: redirect-peer}\n    target:", 1), `t.yaml:9: mode m: program redirect-peer at a/eth0: program redirect-peer: needs endpoints`},
		{"program in unknown namespace", strings.Replace(good, "    target:", "    programs:\n      - {ns: z, dev: eth0, hook: ingress, program: fib-redirect}\n    target:", 1), `t.yaml:9: mode m: program fib-redirect at z/eth0: namespace "z" is not defined`},
		{"sidecar off loopback", strings.Replace(good, "    target:", "    sidecar: {upstream: 10.0.0.2:7707}\n    target:", 1), `t.yaml:9: mode m: target 10.0.0.2:7707: a sidecar listens on a loopback address`},
		{"sockmap with a dev", strings.Replace(good, "    target:", "    programs:\n      - {ns: a, dev: eth0, hook: sock_ops, program: sockmap, port: 15001}\n    target:", 1), `t.yaml:9: mode m: program sockmap at a/eth0: sockmap takes hook sock_ops, a port, and no dev`},
		{"sockmap without a port", strings.Replace(good, "    target:", "    programs:\n      - {ns: a, hook: sock_ops, program: sockmap}\n    target:", 1), `t.yaml:9: mode m: program sockmap at a/: port 0 outside 1..65535`},
		{"too many modes", manyModes, fmt.Sprintf("t.yaml:5: modes: %d modes, at most %d", MaxModes+1, MaxModes)},
		{"syntax error", "name: x\nbase: [\n", "t.yaml:"},
		{"empty", "", "t.yaml: empty"},
		{"not a mapping", "- a\n", "t.yaml:1: a topology is a mapping"},
	} {
		_, err := ParseTopology([]byte(c.yaml), "t.yaml")
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s:\n got: %v\nwant: %s...", c.name, err, c.want)
		}
		var te *Error
		if err != nil && !errors.As(err, &te) {
			t.Errorf("%s: %T is not a *topo.Error", c.name, err)
		}
	}
}

// Validate (no YAML) keeps its messages free of file and line.
func TestValidateMessageHasNoLocation(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	d.Modes[1].Target = "x"
	if err := d.Validate(); err == nil || err.Error() != `mode bridge-nat: target "x": want IP:PORT` {
		t.Errorf("got %v", err)
	}
}

func TestParseFamilyAndNamed(t *testing.T) {
	for in, want := range map[string]Family{"4": Family4, "": Family4, "ipv6": Family6, "6": Family6, "dual": FamilyDual} {
		if got, err := ParseFamily(in); err != nil || got != want {
			t.Errorf("ParseFamily(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFamily("5"); err == nil || !strings.Contains(err.Error(), "want 4, 6 or dual") {
		t.Errorf("ParseFamily(5): %v", err)
	}
	for _, f := range []Family{Family4, Family6, FamilyDual} {
		tp, ok := Named(f.Name())
		if !ok || tp.Name != f.Name() || tp.HasIPv6() != (f != Family4) {
			t.Errorf("Named(%q) = %v, %v (HasIPv6 %v)", f.Name(), tp, ok, tp != nil && tp.HasIPv6())
		}
		if err := tp.Validate(); err != nil {
			t.Errorf("%s: %v", f.Name(), err)
		}
	}
	if _, ok := Named("my.yaml"); ok {
		t.Error("Named accepts a file name")
	}
}

// The default set leaves the opt-in modes out; they still parse, validate
// and can be named.
func TestDefaultModeNamesLeaveOptInOut(t *testing.T) {
	d := Default()
	def := d.DefaultModeNames()
	for _, m := range []string{"veth-bpf", "sidecar", "sidecar-sockmap"} {
		if slices.Contains(def, m) {
			t.Errorf("default modes %v include the opt-in %s", def, m)
		}
		if _, ok := d.Mode(m); !ok {
			t.Errorf("no mode %s", m)
		}
	}
	if len(def) != len(d.ModeNames())-3 || def[0] != "host" {
		t.Errorf("default modes %v of %v", def, d.ModeNames())
	}
}
