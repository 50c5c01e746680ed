//go:build linux

package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// The script must build the same thing latlab builds, or the comparison is
// meaningless: every namespace holds the same links (name, kind,
// addresses) either way.
func TestScriptEquivalentToLatlab(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "ip")
	testutil.RequireTool(t, "nft")
	var fromLatlab, fromScript map[string][]string
	if _, _, err := latlabOnce(func(l *topo.Lab) { fromLatlab = inventory(t, l.Prefix) }); err != nil {
		t.Fatal(err)
	}
	if _, err := scriptOnce("ip-default.sh", func(p string) { fromScript = inventory(t, p) }); err != nil {
		t.Fatal(err)
	}
	if len(fromLatlab) < 8 {
		t.Fatalf("latlab built only %d namespaces", len(fromLatlab))
	}
	for ns, want := range fromLatlab {
		if got := fromScript[ns]; !slices.Equal(got, want) {
			t.Errorf("netns %s:\n latlab: %v\n script: %v", ns, want, got)
		}
	}
	for ns := range fromScript {
		if _, ok := fromLatlab[ns]; !ok && len(fromScript[ns]) > 1 {
			t.Errorf("script built %s, latlab did not: %v", ns, fromScript[ns])
		}
	}
}

// inventory maps logical namespace name -> sorted "name/kind/addrs".
func inventory(t *testing.T, prefix string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	ents, _ := os.ReadDir(topo.NetNSDir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix+"-") {
			continue
		}
		h, err := netns.GetFromPath(topo.NetNSPath(e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		nh, err := netlink.NewHandleAt(h)
		if err != nil {
			t.Fatal(err)
		}
		links, _ := nh.LinkList()
		var items []string
		for _, l := range links {
			addrs, _ := nh.AddrList(l, netlink.FAMILY_V4)
			var as []string
			for _, a := range addrs {
				as = append(as, a.IPNet.String())
			}
			items = append(items, l.Attrs().Name+"/"+l.Type()+"/"+strings.Join(as, ","))
		}
		slices.Sort(items)
		out[strings.TrimPrefix(e.Name(), prefix+"-")] = items
		nh.Close()
		h.Close()
	}
	return out
}
