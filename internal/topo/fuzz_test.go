package topo

import (
	"bytes"
	"testing"
)

// FuzzParseTopology: a topology file (`latlab lab --topology FILE`, or
// inline in a spec) is outside input. Whatever it holds, ParseTopology
// returns an error or a topology that validates and survives its own
// YAML rendering unchanged.
func FuzzParseTopology(f *testing.F) {
	def, err := Default().YAML()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	for _, y := range []string{
		"name: x\nbase: {namespaces: [a]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1}]\n",
		"name: x\nbase: {namespaces: [a, b], links: [{kind: veth, ns: a, name: v0, addrs: [10.0.0.1/24], peer: {ns: b, name: v1, addrs: [10.0.0.2/24]}}]}\nmodes: [{name: m, client: a, server: b, target: 10.0.0.2:7707}]\n",
		"name: x\nbase: {namespaces: [a], links: [{kind: tun, ns: a, name: t0}]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1}]\n",
		"name: x\nbase: {namespaces: [a]}\nmodes: [{name: m, client: a, server: zz, target: 10.0.0.1:1}]\n",
		"name: x\nbase: {namespaces: [a]}\nmodes: [{name: m, client: a, server: a, target: nowhere}]\n",
		"name: x\nbase: {namespaces: [a], sysctls: [{ns: a, key: kernel.pid_max, value: '1'}]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1}]\n",
		"name: x\nbase: {namespaces: [a]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1, colour: red}]\n",
		"name: x\nbase: {namespaces: [a], links: [{kind: bridge, ns: a, name: abcdefghijklmnopq}]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1}]\n",
		"name: x\nbase: &b {namespaces: [a]}\nmodes: [{name: m, client: a, server: a, target: 10.0.0.1:1, <<: *b}]\n",
		"name: x\n---\nname: y\n",
		"",
	} {
		f.Add([]byte(y))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, err := ParseTopology(b, "fuzz.yaml")
		if err != nil {
			return
		}
		if err := tp.Validate(); err != nil {
			t.Fatalf("accepted topology does not validate: %v", err)
		}
		out, err := tp.YAML()
		if err != nil {
			t.Fatalf("accepted topology does not render: %v", err)
		}
		back, err := ParseTopology(out, "rendered.yaml")
		if err != nil {
			t.Fatalf("rendered topology refused: %v\n%s", err, out)
		}
		again, err := back.YAML()
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("YAML round trip differs:\n%s\n---\n%s", out, again)
		}
	})
}
