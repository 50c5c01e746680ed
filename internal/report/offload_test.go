package report

import (
	"bytes"
	"testing"

	"github.com/latlab/latlab/internal/offload"
)

func offloadInfo() *offload.Info {
	return &offload.Info{
		NetNS: "/run/netns/lab1", Dev: "veth0", Backend: "netlink",
		Features: offload.Features{
			{Name: "tx-checksum-ipv4", Kernel: "tx-checksum-ipv4", State: offload.State{Fixed: true}},
			{Name: "tx-checksum-ip-generic", Kernel: "tx-checksum-ip-generic", State: offload.State{Active: true, Requested: true}},
			{Name: "generic-receive-offload", Kernel: "rx-gro", State: offload.State{}},
			{Name: "tx-tcp-segmentation", Kernel: "tx-tcp-segmentation", State: offload.State{Requested: true}},
			{Name: "tx-tcp6-segmentation", Kernel: "tx-tcp6-segmentation", State: offload.State{Active: true, Requested: true}},
			{Name: "highdma", Kernel: "highdma", State: offload.State{Active: true, Requested: true}},
		},
		// Coalescing unsupported (nil), rings supported but empty, and a
		// channel parameter outside ethtool's order.
		Rings:    offload.Rings{},
		Channels: offload.Channels{"rx": 1, "tx": 1, "rx-max": 2, "tx-max": 2, "zz-vendor": 7},
	}
}

func offloadSetResult() *offload.SetResult {
	return &offload.SetResult{
		NetNS: "/run/netns/lab1", Dev: "veth0",
		Changed:   []offload.Change{{Name: "generic-receive-offload", From: false, To: true}},
		Unchanged: []string{"tx-checksum-ip-generic"},
		Refused:   []offload.Refusal{{Name: "large-receive-offload", Want: true, Reason: "fixed: the device cannot change it"}},
		Dependent: []offload.Change{{Name: "tx-udp-segmentation", From: true, To: false}},
	}
}

func TestOffloadGolden(t *testing.T) {
	changes := CoalesceChanges(offload.Coalesce{"rx-usecs": 50, "rx-frames": 1, "adaptive-rx": 1},
		offload.Coalesce{"rx-usecs": 3, "rx-frames": 0, "adaptive-rx": 0, "tx-usecs": 8},
		offload.Coalesce{"rx-usecs": 50, "rx-frames": 0, "adaptive-rx": 1, "tx-usecs": 8})
	for _, f := range []string{FormatTable, FormatJSON} {
		var b bytes.Buffer
		if err := WriteOffloadShow(&b, Output{Format: f}, offloadInfo()); err != nil {
			t.Fatal(err)
		}
		golden(t, "offload-show."+f+".golden", b.Bytes())
		b.Reset()
		if err := WriteOffloadSet(&b, Output{Format: f}, offloadSetResult()); err != nil {
			t.Fatal(err)
		}
		if err := WriteOffloadSet(&b, Output{Format: f}, &offload.SetResult{Dev: "veth0"}); err != nil {
			t.Fatal(err)
		}
		golden(t, "offload-set."+f+".golden", b.Bytes())
		b.Reset()
		if err := WriteCoalesce(&b, Output{Format: f}, changes); err != nil {
			t.Fatal(err)
		}
		golden(t, "offload-coalesce."+f+".golden", b.Bytes())
	}
	if got := CoalesceNotTaken(changes); len(got) != 1 || got[0] != "rx-frames" {
		t.Errorf("not taken: %v, want [rx-frames] of %+v", got, changes)
	}
	for _, f := range []string{FormatCSV, "xml"} {
		if WriteOffloadShow(new(bytes.Buffer), Output{Format: f}, offloadInfo()) == nil || WriteOffloadSet(new(bytes.Buffer), Output{Format: f}, offloadSetResult()) == nil ||
			WriteCoalesce(new(bytes.Buffer), Output{Format: f}, changes) == nil {
			t.Errorf("format %s accepted", f)
		}
	}
}

func TestOffloadWhere(t *testing.T) {
	if got := OffloadWhere("", "eth0"); got != "eth0" {
		t.Errorf("own namespace: %q", got)
	}
	if got := OffloadWhere("/run/netns/x", "eth0"); got != "eth0 in netns /run/netns/x" {
		t.Errorf("%q", got)
	}
}
