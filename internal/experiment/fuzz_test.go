package experiment

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// scalarsUnder collects the scalar values of every mapping key named key
// in n (aliases and merge keys followed, each node once).
func scalarsUnder(n *yaml.Node, key string, seen map[*yaml.Node]bool, out *[]string) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.AliasNode {
		scalarsUnder(n.Alias, key, seen, out)
		return
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && i+1 < len(n.Content) {
			k, v := c, n.Content[i+1]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Value == key {
				if v.Kind == yaml.AliasNode && v.Alias != nil {
					v = v.Alias
				}
				if v.Kind == yaml.ScalarNode {
					*out = append(*out, v.Value)
				}
			}
		}
		scalarsUnder(c, key, seen, out)
	}
}

// readsOutside reports whether b names a topology file that ParseSpec
// would read from outside the (nonexistent) spec directory: a fuzzer must
// not open /dev/zero, a FIFO or /proc/kcore. A real spec names any file
// its user can read.
func readsOutside(b []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return false
		}
		var vals []string
		scalarsUnder(&doc, "topology", map[*yaml.Node]bool{}, &vals)
		for _, v := range vals {
			if v != "default" && (filepath.IsAbs(v) || strings.Contains(v, "..")) {
				return true
			}
		}
	}
}

// FuzzParseSpec: a spec file (`latlab run SPEC`, watch jobs) is outside
// input. ParseSpec returns an error or a spec whose rendering (RenderSpec,
// what a run stores and `latlab run` repeats) parses back to the same
// rendering.
func FuzzParseSpec(f *testing.F) {
	f.Add(DefaultSpecYAML())
	files, _ := filepath.Glob("testdata/spec/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name: inline\ntopology: {name: t, base: {namespaces: [a]}, modes: [{name: host, client: a, server: a, target: 10.0.0.1:7707}]}\n"))
	f.Add([]byte("modes: [host]\noffloads: [{name: mine, settings: {tso: off}}]\ninterfaces: [{netns: n1, dev: eth0}]\n"))
	f.Add([]byte("placements: [{name: p, client_cpus: [0, 1], server_cpu: none, workloads: [tcp_rr]}]\ncalibrate: false\n"))
	f.Add([]byte("topology: mytopo.yaml\n"))
	f.Add([]byte("a: 1\n---\nb: 2\n"))
	const file = "/nonexistent-latlab-fuzz/fuzz.yaml"
	f.Fuzz(func(t *testing.T, b []byte) {
		if readsOutside(b) {
			t.Skip("topology path outside the spec directory")
		}
		spec, name, err := ParseSpec(b, file)
		if err != nil {
			return
		}
		r1, err := RenderSpec(spec, name, "")
		if err != nil {
			t.Fatalf("accepted spec does not render: %v", err)
		}
		back, name2, err := ParseSpec(r1, file)
		if err != nil {
			t.Fatalf("rendered spec refused: %v\n%s", err, r1)
		}
		r2, err := RenderSpec(back, name2, "")
		if err != nil || !bytes.Equal(r1, r2) {
			t.Fatalf("render round trip differs (%v):\n%s\n---\n%s", err, r1, r2)
		}
	})
}
