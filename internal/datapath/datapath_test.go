package datapath_test

import (
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/datapath"
)

// Check refuses what cannot work before anything is loaded:
// bpf_redirect_peer from egress drops every packet, and a redirect-peer
// without endpoints would forward nothing.
func TestCheck(t *testing.T) {
	for _, c := range []struct {
		program, hook, method string
		endpoints             int
		want                  string // "" for ok
	}{
		{datapath.RedirectPeer, datapath.HookIngress, "", 1, ""},
		{datapath.RedirectPeer, datapath.HookEgress, "", 1, `hook "egress" (want ingress)`},
		{datapath.RedirectPeer, datapath.HookIngress, "", 0, "needs endpoints"},
		{datapath.FIBRedirect, datapath.HookEgress, datapath.MethodTC, 0, ""},
		{datapath.FIBRedirect, datapath.HookIngress, "", 2, "takes no endpoints"},
		{datapath.FIBRedirect, datapath.HookIngress, "xdp", 0, `method "xdp"`},
		{"nope", datapath.HookIngress, "", 0, `program "nope" (want one of fib-redirect, redirect-peer)`},
	} {
		err := datapath.CheckMethod(c.program, c.hook, c.method, c.endpoints)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s %s %q %d: %v, want %q", c.program, c.hook, c.method, c.endpoints, err, c.want)
		}
	}
}
