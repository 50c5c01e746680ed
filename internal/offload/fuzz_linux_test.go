package offload

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Fuzz targets for the ethtool netlink reply parsers: what the kernel (or
// anything answering on the generic netlink socket) sends back. Seeds are
// the replies captured from a veth (testdata/*.bin) and encoded forms of
// the bitset layouts.

// maxFuzzBits bounds what a parsed reply may make the client allocate:
// a netlink message is at most 64 KiB, and no sane reply names more bits.
const maxFuzzBits = 1 << 20

func fuzzReplySeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, name := range []string{"veth-strset-reply.bin", "veth-features-reply.bin", "veth-channels-reply.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		var m genetlink.Message
		if err := m.UnmarshalBinary(b); err != nil {
			f.Fatal(err)
		}
		out = append(out, m.Data)
	}
	return out
}

func verboseBitsetSeed(size uint32, noMask bool) []byte {
	ae := netlink.NewAttributeEncoder()
	if noMask {
		ae.Flag(bitsetNoMask, true)
	}
	ae.Uint32(bitsetSize, size)
	ae.Nested(bitsetBits, func(nae *netlink.AttributeEncoder) error {
		for i, name := range []string{"", "rx-gro", ""} {
			nae.Nested(bitsetBitsBit, func(bae *netlink.AttributeEncoder) error {
				if name == "" {
					bae.Uint32(bitIndex, uint32(i))
				} else {
					bae.String(bitName, name)
				}
				if i != 1 {
					bae.Flag(bitValue, true)
				}
				return nil
			})
		}
		return nil
	})
	b, _ := ae.Encode()
	return b
}

func FuzzParseStrset(f *testing.F) {
	for _, d := range fuzzReplySeeds(f) {
		f.Add(d)
	}
	// The features set claiming 2^32-1 strings: refused, not allocated.
	ae := netlink.NewAttributeEncoder()
	ae.Nested(strsetSets, func(sets *netlink.AttributeEncoder) error {
		sets.Nested(stringsetsSet, func(set *netlink.AttributeEncoder) error {
			set.Uint32(stringsetID, ssFeatures)
			set.Uint32(stringsetCount, 0xffffffff)
			return nil
		})
		return nil
	})
	huge, _ := ae.Encode()
	f.Add(huge)
	f.Fuzz(func(t *testing.T, data []byte) {
		names, err := parseStrset([]genetlink.Message{{Data: data}})
		if err != nil {
			return
		}
		if len(names) > maxFuzzBits {
			t.Fatalf("%d feature names from a %d-byte reply", len(names), len(data))
		}
	})
}

func FuzzParseFeatures(f *testing.F) {
	for _, d := range fuzzReplySeeds(f) {
		f.Add(d, true)
		f.Add(d, false)
	}
	// A verbose FEATURES_GET reply: the four bitsets by name and index.
	ae := netlink.NewAttributeEncoder()
	for _, typ := range []uint16{featuresHW, featuresWanted, featuresActive, featuresNoChg} {
		ae.Bytes(typ|netlink.Nested, verboseBitsetSeed(3, typ == featuresHW))
	}
	verbose, _ := ae.Encode()
	f.Add(verbose, true)
	f.Add(verbose, false)
	f.Fuzz(func(t *testing.T, data []byte, withNames bool) {
		var names []string
		if withNames {
			names = fakeNames
		}
		r, err := parseFeatures([]genetlink.Message{{Data: data}}, names)
		if err != nil {
			return
		}
		if len(r.names) > maxFuzzBits {
			t.Fatalf("%d features from a %d-byte reply", len(r.names), len(data))
		}
		// What a client does with a reply: list it, look names up.
		for _, ft := range r.features() {
			if r.index(ft.Kernel) < 0 {
				t.Fatalf("feature %q listed but not found", ft.Kernel)
			}
		}
	})
}

func FuzzParseBitset(f *testing.F) {
	f.Add(verboseBitsetSeed(3, false))
	f.Add(verboseBitsetSeed(3, true))
	f.Add(verboseBitsetSeed(0, false))
	f.Add(verboseBitsetSeed(0xffffffff, false))
	ae := netlink.NewAttributeEncoder()
	ae.Flag(bitsetNoMask, true)
	ae.Uint32(bitsetSize, 6)
	ae.Bytes(bitsetValue, []byte{0x1b, 0, 0, 0})
	compact, _ := ae.Encode()
	f.Add(compact)
	f.Fuzz(func(t *testing.T, b []byte) {
		value, mask, size, err := parseBitset(b, fakeNames)
		if err != nil {
			return
		}
		if size < 0 || size > maxFuzzBits || len(value) > maxFuzzBits/32+len(b) || len(mask) > maxFuzzBits/32+len(b) {
			t.Fatalf("bitset of %d bits (%d value, %d mask words) from %d bytes", size, len(value), len(mask), len(b))
		}
	})
}

func FuzzParseParams(f *testing.F) {
	for _, d := range fuzzReplySeeds(f) {
		f.Add(d)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(2, 50)
	ae.Uint8(11, 1)
	ae.Uint32(99, 123)
	b, _ := ae.Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, table := range [][]param{coalesceParams, ringParams, channelParams} {
			p, err := parseParams([]genetlink.Message{{Data: data}}, table)
			if err != nil {
				continue
			}
			for name := range p {
				if _, ok := lookupParam(table, name); !ok {
					t.Fatalf("parameter %q is not in the table", name)
				}
			}
		}
	})
}
