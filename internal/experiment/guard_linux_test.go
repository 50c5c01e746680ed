package experiment

import (
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
	"github.com/latlab/latlab/internal/wire"
)

// A spec's interface is refused without AllowHostNIC when its namespace
// is the caller's by identity, whatever it is called: /proc/thread-self,
// or a name under /var/run/netns bind-mounted from it. A lab namespace
// and a namespace that does not exist (the run fails later, opening it)
// pass the guard.
func TestHostNICGuardByIdentity(t *testing.T) {
	testutil.RequireRoot(t)
	_, labNS := testutil.NewNetNS(t)
	_, aliasPath := testutil.HostNetNSAlias(t)
	seg, _ := offload.ParsePreset("seg-off")
	spec := func(ns string, allow bool) *LabSpec {
		s := &LabSpec{Modes: []string{"host"}, Workloads: []wire.Workload{wire.TCPRR}, Trials: 1,
			Offloads: []offload.Preset{seg}, Interfaces: []Target{{NetNS: ns, Dev: "eth0"}}, AllowHostNIC: allow}
		s.Defaults()
		return s
	}
	for _, ns := range []string{"", "/proc/thread-self/ns/net", aliasPath} {
		if err := spec(ns, false).Validate(); err == nil || !strings.Contains(err.Error(), "--allow-host-nic") {
			t.Errorf("netns %q: %v, want a refusal naming --allow-host-nic", ns, err)
		}
		if err := spec(ns, true).Validate(); err != nil {
			t.Errorf("netns %q with AllowHostNIC: %v", ns, err)
		}
	}
	for _, ns := range []string{labNS, topo.NetNSPath(testutil.UniqueName("latlab-t-"))} {
		if err := spec(ns, false).Validate(); err != nil {
			t.Errorf("netns %q: %v, want it through the guard", ns, err)
		}
	}
}
