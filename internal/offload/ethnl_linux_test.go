package offload

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// fakeKernel answers ethtool netlink requests over genltest and records
// them. Feature bits: see fakeNames.
type fakeKernel struct {
	t                            *testing.T
	names                        []string
	hw, wanted, active, nochange bitmap
	reqs                         []genetlink.Message
	flags                        []netlink.HeaderFlags
	fail                         map[uint8]error
}

var fakeNames = []string{
	"tx-scatter-gather",      // 0
	"tx-checksum-ip-generic", // 1
	"rx-gro",                 // 2
	"tx-tcp-segmentation",    // 3
	"tx-tcp6-segmentation",   // 4
	"rx-lro",                 // 5: fixed
}

const fakeFamily = 0x1d

func newFake(t *testing.T) *fakeKernel {
	return &fakeKernel{
		t:        t,
		names:    fakeNames,
		hw:       bitmap{0x1f},
		wanted:   bitmap{0x1b},
		active:   bitmap{0x1b},
		nochange: bitmap{0},
		fail:     map[uint8]error{},
	}
}

func (f *fakeKernel) client(t *testing.T) *Client {
	conn := genltest.Dial(genltest.ServeFamily(genetlink.Family{ID: fakeFamily, Name: "ethtool", Version: 1}, f.serve))
	e, err := newEthnl(conn)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{netns: "/var/run/netns/latlab-fake", b: e}
	t.Cleanup(func() { c.Close() })
	return c
}

func compactBitset(ae *netlink.AttributeEncoder, typ uint16, n int, b bitmap) {
	ae.Nested(typ, func(nae *netlink.AttributeEncoder) error {
		nae.Flag(bitsetNoMask, true)
		nae.Uint32(bitsetSize, uint32(n))
		nae.Bytes(bitsetValue, wordsBytes(b, (n+31)/32))
		return nil
	})
}

func (f *fakeKernel) serve(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
	f.reqs = append(f.reqs, greq)
	f.flags = append(f.flags, nreq.Header.Flags)
	if err := f.fail[greq.Header.Command]; err != nil {
		return nil, err
	}
	ae := netlink.NewAttributeEncoder()
	switch greq.Header.Command {
	case msgStrsetGet:
		ae.Nested(strsetSets, func(sets *netlink.AttributeEncoder) error {
			sets.Nested(stringsetsSet, func(set *netlink.AttributeEncoder) error {
				set.Uint32(stringsetID, ssFeatures)
				set.Uint32(stringsetCount, uint32(len(f.names)))
				set.Nested(stringsetStr, func(strs *netlink.AttributeEncoder) error {
					for i, n := range f.names {
						strs.Nested(stringsString, func(s *netlink.AttributeEncoder) error {
							s.Uint32(stringIndex, uint32(i))
							s.String(stringValue, n)
							return nil
						})
					}
					return nil
				})
				return nil
			})
			return nil
		})
	case msgFeaturesGet:
		n := len(f.names)
		compactBitset(ae, featuresHW, n, f.hw)
		compactBitset(ae, featuresWanted, n, f.wanted)
		compactBitset(ae, featuresActive, n, f.active)
		compactBitset(ae, featuresNoChg, n, f.nochange)
	case msgFeaturesSet:
		ad, err := netlink.NewAttributeDecoder(greq.Data)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			if ad.Type() != netlink.Nested|featuresWanted && ad.Type() != featuresWanted {
				continue
			}
			v, m, _, err := parseBitset(ad.Bytes(), f.names)
			if err != nil {
				return nil, err
			}
			for i := range f.names {
				if m.get(i) && f.hw.get(i) {
					f.wanted.set(i, v.get(i))
				}
			}
		}
		// Like the kernel: TSO needs tx checksumming.
		copy(f.active, f.wanted)
		if !f.active.get(1) {
			f.active.set(3, false)
			f.active.set(4, false)
		}
		return []genetlink.Message{{}}, nil
	case msgCoalesceSet:
		return []genetlink.Message{{}}, nil
	case msgCoalesceGet:
		ae.Nested(attrHeader, func(h *netlink.AttributeEncoder) error {
			h.Uint32(headerDevIndex, 2)
			h.String(headerDevName, "llo0")
			return nil
		})
		ae.Uint32(2, 50)   // rx-usecs
		ae.Uint32(3, 0)    // rx-frames
		ae.Uint8(11, 1)    // adaptive-rx
		ae.Uint32(99, 123) // unknown to this client: ignored
	default:
		return nil, genltest.Error(int(unix.EOPNOTSUPP))
	}
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return []genetlink.Message{{Header: genetlink.Header{Command: greq.Header.Command, Version: 1}, Data: b}}, nil
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Request bytes, worked out by hand from the uapi headers: generic netlink
// header (cmd, version 1, reserved), then attributes (u16 len, u16 type;
// nests carry NLA_F_NESTED 0x8000), padded to 4 bytes.
const (
	hexStrsetGet = `01 01 0000
		10000180  09000200 6c6c6f30 00000000
		10000280  0c000180 08000100 04000000`
	hexFeaturesGet = `0b 01 0000
		18000180  09000200 6c6c6f30 00000000  08000300 01000000`
)

func TestOffloadRequestBytes(t *testing.T) {
	const (
		req = netlink.Request
		ack = netlink.Request | netlink.Acknowledge
	)
	type wantReq struct {
		flags netlink.HeaderFlags
		hex   string
	}
	tests := []struct {
		name string
		op   func(c *Client) error
		want []wantReq
	}{
		{
			name: "FEATURES_GET",
			op: func(c *Client) error {
				_, err := c.Features("llo0")
				return err
			},
			want: []wantReq{{req, hexStrsetGet}, {req, hexFeaturesGet}},
		},
		{
			name: "FEATURES_SET tso=off gro=on",
			op: func(c *Client) error {
				_, err := c.Set("llo0", []Setting{{"tso", false}, {"gro", true}})
				return err
			},
			// WANTED compact bitset with mask: SIZE 6, VALUE 0x04 (rx-gro),
			// MASK 0x1c (rx-gro, tx-tcp-segmentation, tx-tcp6-segmentation);
			// header flags OMIT_REPLY.
			want: []wantReq{{req, hexStrsetGet}, {req, hexFeaturesGet}, {ack, `0c 01 0000
				18000180  09000200 6c6c6f30 00000000  08000300 02000000
				1c000380  08000200 06000000  08000400 04000000  08000500 1c000000`},
				{req, hexFeaturesGet}},
		},
		{
			name: "FEATURES_SET by kernel name, last setting wins",
			op: func(c *Client) error {
				_, err := c.Set("llo0", []Setting{{"tx-scatter-gather", true}, {"tx-checksum-ip-generic", true}, {"tx-scatter-gather", false}})
				return err
			},
			want: []wantReq{{req, hexStrsetGet}, {req, hexFeaturesGet}, {ack, `0c 01 0000
				18000180  09000200 6c6c6f30 00000000  08000300 02000000
				1c000380  08000200 06000000  08000400 02000000  08000500 03000000`},
				{req, hexFeaturesGet}},
		},
		{
			name: "COALESCE_SET",
			op: func(c *Client) error {
				return c.SetCoalesce("llo0", Coalesce{"rx-usecs": 50, "adaptive-rx": 1, "tx-frames": 8})
			},
			// Table order: adaptive-rx (u8, attr 11), rx-usecs (u32, 2),
			// tx-frames (u32, 7); no header flags.
			want: []wantReq{{ack, `14 01 0000
				10000180  09000200 6c6c6f30 00000000
				05000b00 01000000  08000200 32000000  08000700 08000000`}},
		},
		{
			name: "COALESCE_GET",
			op: func(c *Client) error {
				_, err := c.Coalesce("llo0")
				return err
			},
			want: []wantReq{{req, `13 01 0000  10000180  09000200 6c6c6f30 00000000`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := f.client(t)
			if err := tt.op(c); err != nil {
				t.Fatal(err)
			}
			if len(f.reqs) != len(tt.want) {
				t.Fatalf("%d requests, want %d", len(f.reqs), len(tt.want))
			}
			for i, w := range tt.want {
				got, err := f.reqs[i].MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if want := unhex(t, w.hex); string(got) != string(want) {
					t.Errorf("request %d:\n got %x\nwant %x", i, got, want)
				}
				if f.flags[i] != w.flags {
					t.Errorf("request %d: flags %v, want %v", i, f.flags[i], w.flags)
				}
			}
		})
	}
}

// In the fake, tx-checksum-ip-generic and tx-scatter-gather are their
// aliases' only members, so ethtool names them tx-checksumming and
// scatter-gather.
func TestOffloadSetReportFake(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	res, err := c.Set("llo0", []Setting{{"tx-checksum-ip-generic", false}, {"lro", true}, {"gro", true}, {"sg", true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 2 || res.Changed[0] != (Change{"tx-checksumming", true, false}) || res.Changed[1] != (Change{"generic-receive-offload", false, true}) {
		t.Errorf("changed %+v", res.Changed)
	}
	if len(res.Unchanged) != 1 || res.Unchanged[0] != "scatter-gather" {
		t.Errorf("unchanged %+v", res.Unchanged)
	}
	if len(res.Refused) != 1 || res.Refused[0].Name != "large-receive-offload" || !strings.Contains(res.Refused[0].Reason, "fixed") {
		t.Errorf("refused %+v", res.Refused)
	}
	if len(res.Dependent) != 2 || res.Dependent[0] != (Change{"tx-tcp-segmentation", true, false}) || res.Dependent[1].Name != "tx-tcp6-segmentation" {
		t.Errorf("dependent %+v", res.Dependent)
	}

	// TSO on while checksumming is off: accepted as wanted, held off.
	res, err = c.Set("llo0", []Setting{{"tso", true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refused) != 2 || !strings.Contains(res.Refused[0].Reason, "requested on") {
		t.Errorf("tso=on without checksumming: %+v", res)
	}
}

func TestOffloadRestoreFake(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	snap, err := c.Snapshot("llo0")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Coalesce) == 0 {
		t.Errorf("snapshot without coalescing: %+v", snap)
	}
	if _, err := c.Set("llo0", []Setting{{"tx", false}, {"gro", true}}); err != nil {
		t.Fatal(err)
	}
	f.reqs = nil
	res, err := c.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 0 {
		t.Errorf("failed: %v", res.Failed)
	}
	want := []string{"rx-gro", "tx-checksum-ip-generic", "tx-tcp-segmentation", "tx-tcp6-segmentation"}
	if strings.Join(res.Restored, ",") != strings.Join(want, ",") {
		t.Errorf("restored %v, want %v", res.Restored, want)
	}
	// Only what differed is sent: rx-gro and tx-checksum-ip-generic.
	var sets int
	for _, r := range f.reqs {
		switch r.Header.Command {
		case msgFeaturesSet:
			sets++
			ad, _ := netlink.NewAttributeDecoder(r.Data)
			for ad.Next() {
				if ad.Type()&^netlink.Nested == featuresWanted {
					v, m, _, _ := parseBitset(ad.Bytes(), nil)
					if m[0] != 0x06 || v[0] != 0x02 {
						t.Errorf("restore set value %#x mask %#x, want 0x02/0x06", v[0], m[0])
					}
				}
			}
		case msgCoalesceSet:
			t.Errorf("coalescing set though unchanged")
		}
	}
	if sets != 1 {
		t.Errorf("%d FEATURES_SET requests, want 1", sets)
	}

	// A feature the kernel will not take back is reported.
	f.hw.set(2, false) // rx-gro becomes fixed (on)
	f.wanted.set(2, true)
	f.active.set(2, true)
	res, err = c.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || res.Failed[0].What != "rx-gro" || res.Failed[0].Want != "off" || res.Failed[0].Got != "on [fixed]" {
		t.Errorf("failed %+v", res.Failed)
	}
}

func TestOffloadErrorsFake(t *testing.T) {
	f := newFake(t)
	f.fail[msgStrsetGet] = genltest.Error(int(unix.ENODEV))
	c := f.client(t)
	_, err := c.Features("eth9")
	if !errors.Is(err, ErrNoDevice) || !strings.HasPrefix(err.Error(), "read features of eth9 in netns /var/run/netns/latlab-fake: ") {
		t.Errorf("missing device: %v", err)
	}
	delete(f.fail, msgStrsetGet)
	if _, err := c.Rings("llo0"); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "read rings of llo0") {
		t.Errorf("rings: %v", err)
	}
	info, err := c.Show("llo0")
	if err != nil {
		t.Fatal(err)
	}
	if info.Rings != nil || info.Channels != nil || info.Coalesce["rx-usecs"] != 50 || info.Coalesce["adaptive-rx"] != 1 {
		t.Errorf("show: %+v", info)
	}
	if _, err := c.Set("llo0", []Setting{{"tos", false}}); !errors.Is(err, ErrUnknownFeature) || !strings.Contains(err.Error(), `did you mean tso`) {
		t.Errorf("unknown: %v", err)
	}
	if err := c.SetCoalesce("llo0", Coalesce{"rx-usec": 1}); err == nil || !strings.Contains(err.Error(), "rx-usecs") {
		t.Errorf("unknown coalescing parameter: %v", err)
	}

	// A kernel without the ethtool family: the lookup fails with ENOENT.
	conn := genltest.Dial(func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		return nil, genltest.Error(int(unix.ENOENT))
	})
	defer conn.Close()
	if _, err := newEthnl(conn); !errors.Is(err, ErrNotSupported) {
		t.Errorf("no ethtool family: %v, want ErrNotSupported (fallback to ioctl)", err)
	}
}

func readMsg(t *testing.T, name string) []genetlink.Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m genetlink.Message
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return []genetlink.Message{m}
}

// The testdata replies were captured from a veth on Linux 6.18 by
// TestCaptureVethReplies.
func TestOffloadParseCapturedVethReply(t *testing.T) {
	names, err := parseStrset(readMsg(t, "veth-strset-reply.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 60 || names[0] != "tx-scatter-gather" {
		t.Fatalf("%d names, first %q", len(names), names[0])
	}
	r, err := parseFeatures(readMsg(t, "veth-features-reply.bin"), names)
	if err != nil {
		t.Fatal(err)
	}
	fs := r.features()
	for name, want := range map[string]State{
		"tx-tcp-segmentation":     {Active: true, Requested: true},
		"tx-checksum-ip-generic":  {Active: true, Requested: true},
		"tx-checksum-ipv4":        {Fixed: true},
		"generic-receive-offload": {},
		"large-receive-offload":   {Fixed: true},
		"rx-gro-hw":               {Fixed: true},
		"rx-checksumming":         {Active: true, Requested: true},
		"tx-nocache-copy":         {},
		"highdma":                 {Active: true, Requested: true},
	} {
		f, ok := fs.Get(name)
		if !ok {
			t.Errorf("%s missing", name)
		} else if f.State != want {
			t.Errorf("%s: %+v, want %+v", name, f.State, want)
		}
	}
	ch, err := parseParams(readMsg(t, "veth-channels-reply.bin"), channelParams)
	if err != nil {
		t.Fatal(err)
	}
	if ch["rx"] != 1 || ch["tx"] != 1 || ch["rx-max"] < 1 || len(ch) != 4 {
		t.Errorf("channels %v", ch)
	}
}

func TestOffloadParseVerboseBitset(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	enc := func(noMask bool, bits ...vbitT) []byte {
		ae := netlink.NewAttributeEncoder()
		if noMask {
			ae.Flag(bitsetNoMask, true)
		}
		ae.Uint32(bitsetSize, 4)
		ae.Nested(bitsetBits, func(nae *netlink.AttributeEncoder) error {
			for _, b := range bits {
				nae.Nested(bitsetBitsBit, func(bae *netlink.AttributeEncoder) error {
					if b.idx >= 0 {
						bae.Uint32(bitIndex, uint32(b.idx))
					}
					if b.name != "" {
						bae.String(bitName, b.name)
					}
					if b.on {
						bae.Flag(bitValue, true)
					}
					return nil
				})
			}
			return nil
		})
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A list: every listed bit is set.
	v, m, n, err := parseBitset(enc(true, vbitT{1, "b", false}, vbitT{3, "d", false}), names)
	if err != nil || n != 4 || m != nil || v[0] != 0x0a {
		t.Errorf("list: %#x %v %d %v", v, m, n, err)
	}
	// Value/mask, one bit by name only.
	v, m, _, err = parseBitset(enc(false, vbitT{0, "", true}, vbitT{-1, "c", false}), names)
	if err != nil || v[0] != 0x01 || m[0] != 0x05 {
		t.Errorf("value/mask: %#x %#x %v", v, m, err)
	}
	if _, _, _, err := parseBitset(enc(true, vbitT{-1, "zz", false}), names); err == nil {
		t.Errorf("unknown bit name accepted")
	}
}

type vbitT struct {
	idx  int
	name string
	on   bool
}
