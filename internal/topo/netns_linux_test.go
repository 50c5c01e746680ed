package topo_test

import (
	"os"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// SameNetNS and IsHostNetNS compare namespace identities, not strings:
// every spelling of the caller's namespace (including a /var/run/netns
// name bind-mounted from it) is the host; a lab namespace is not.
func TestSameNetNSByIdentity(t *testing.T) {
	testutil.RequireRoot(t)
	_, lab := testutil.NewNetNS(t)

	// A name under /var/run/netns that is the caller's own namespace,
	// bind-mounted as `ip netns attach NAME $$` would. It is made after
	// CreateNetNS (NewNetNS), which may have parked the main thread in the
	// lab namespace: "" must still mean this thread's namespace.
	_, aliasPath := testutil.HostNetNSAlias(t)

	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"", "", true},
		{"/proc/thread-self/ns/net", "", true},
		{"", aliasPath, true},
		{lab, lab, true},
		{"", lab, false},
		{aliasPath, lab, false},
	} {
		same, err := topo.SameNetNS(c.a, c.b)
		if err != nil || same != c.same {
			t.Errorf("SameNetNS(%q, %q) = %v, %v; want %v", c.a, c.b, same, err, c.same)
		}
	}
	for _, c := range []struct {
		path string
		host bool
	}{
		{"", true},
		{aliasPath, true},
		{lab, false},
	} {
		host, err := topo.IsHostNetNS(c.path)
		if err != nil || host != c.host {
			t.Errorf("IsHostNetNS(%q) = %v, %v; want %v", c.path, host, err, c.host)
		}
	}
	// PID 1's namespace, where readable (not under a ptrace-restricting
	// LSM), is the host's whatever the caller's is.
	if _, err := os.Stat("/proc/1/ns/net"); err == nil {
		if host, err := topo.IsHostNetNS("/proc/1/ns/net"); err != nil || !host {
			t.Errorf("IsHostNetNS(/proc/1/ns/net) = %v, %v; want true", host, err)
		}
	} else {
		t.Logf("/proc/1/ns/net not readable here (%v): that case is not checked", err)
	}
	missing := topo.NetNSPath(testutil.UniqueName("latlab-t-"))
	if _, err := topo.SameNetNS("", missing); err == nil {
		t.Errorf("SameNetNS with a namespace that does not exist: no error")
	}
	if host, err := topo.IsHostNetNS(missing); err != nil || host {
		t.Errorf("IsHostNetNS(%s) of a namespace that does not exist = %v, %v; want false, nil", missing, host, err)
	}
}

// SetSysctl writes inside a lab namespace and never in the caller's: an
// empty path (which netns.Do would run in the caller's namespace) is
// refused before anything is written. The key does not exist anywhere, so
// even a broken guard could not change a host sysctl.
func TestSetSysctlRefusesCallerNetNS(t *testing.T) {
	err := topo.SetSysctl("", "net.latlab.no_such_key", "1")
	if err == nil || !strings.Contains(err.Error(), "no namespace given") {
		t.Fatalf(`SetSysctl("") = %v, want a refusal`, err)
	}
	_, path := testutil.NewNetNS(t)
	if err := topo.SetSysctl(path, "net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := netns.Do(path, func() (err error) {
		got, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != "1" {
		t.Errorf("ip_forward in %s = %q after SetSysctl, want 1", path, got)
	}
}
