package offload

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePresets(t *testing.T) {
	ps, err := ParsePresets("all-on,seg-off,gro-off")
	if err != nil || len(ps) != 3 || ps[1].Name != "seg-off" || len(ps[1].Settings) != 2 || ps[1].Settings[0] != (Setting{"tso", false}) {
		t.Fatalf("%+v %v", ps, err)
	}
	ps, err = ParsePresets("default;mine:tso=off,gro=on;tx-checksum-ip-generic=off")
	if err != nil || len(ps) != 3 {
		t.Fatalf("%+v %v", ps, err)
	}
	if ps[0].Name != PresetDefault || ps[0].Settings != nil {
		t.Errorf("default preset: %+v", ps[0])
	}
	if ps[1].Name != "mine" || ps[1].Settings[1] != (Setting{"gro", true}) {
		t.Errorf("named user preset: %+v", ps[1])
	}
	if ps[2].Name != "tx-checksum-ip-generic=off" {
		t.Errorf("unnamed user preset is named after its settings: %+v", ps[2])
	}
	for _, bad := range []string{"nosuch", "x:tos=off", "x:tso=maybe", "all-on,all-on"} {
		_, err := ParsePresets(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		}
		if bad == "x:tos=off" && (!errors.Is(err, ErrUnknownFeature) || !strings.Contains(err.Error(), "tso")) {
			t.Errorf("typo not explained: %v", err)
		}
	}
}
