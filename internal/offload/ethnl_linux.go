package offload

import (
	"errors"
	"fmt"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"
)

// ethtool netlink constants (include/uapi/linux/ethtool_netlink*.h). Only
// what this client uses; they are kernel ABI and never change.
const (
	ethtoolGenlName    = "ethtool"
	ethtoolGenlVersion = 1

	msgStrsetGet   = 1
	msgFeaturesGet = 11
	msgFeaturesSet = 12
	msgRingsGet    = 15
	msgChannelsGet = 17
	msgCoalesceGet = 19
	msgCoalesceSet = 20
	attrHeader     = 1 // ETHTOOL_A_*_HEADER is 1 in every message
	headerDevIndex = 1
	headerDevName  = 2
	headerFlags    = 3
	flagCompact    = 1 // ETHTOOL_FLAG_COMPACT_BITSETS
	flagOmitReply  = 2 // ETHTOOL_FLAG_OMIT_REPLY
	bitsetNoMask   = 1
	bitsetSize     = 2
	bitsetBits     = 3
	bitsetValue    = 4
	bitsetMask     = 5
	bitsetBitsBit  = 1
	bitIndex       = 1
	bitName        = 2
	bitValue       = 3
	featuresHW     = 2
	featuresWanted = 3
	featuresActive = 4
	featuresNoChg  = 5
	strsetSets     = 2 // ETHTOOL_A_STRSET_STRINGSETS
	stringsetsSet  = 1 // ETHTOOL_A_STRINGSETS_STRINGSET
	stringsetID    = 1
	stringsetCount = 2
	stringsetStr   = 3
	stringsString  = 1
	stringIndex    = 1
	stringValue    = 2
	ssFeatures     = 4 // ETH_SS_FEATURES
)

// maxBits bounds the bits of a bitset and the strings of a string set a
// reply may declare (the kernel's largest, link modes, has ~120): a
// corrupt or hostile count is refused instead of sizing an allocation.
const maxBits = 1 << 16

// transport is the part of *genetlink.Conn the client uses; tests pass a
// genltest connection.
type transport interface {
	GetFamily(name string) (genetlink.Family, error)
	Execute(m genetlink.Message, family uint16, flags netlink.HeaderFlags) ([]genetlink.Message, error)
	Close() error
}

// ethnl is the ethtool netlink backend.
type ethnl struct {
	t      transport
	family uint16
	names  []string // ETH_SS_FEATURES, global: fetched once
}

var _ backend = (*ethnl)(nil)

// newEthnl looks up the ethtool family on t. A kernel without it gives an
// error wrapping ErrNotSupported.
func newEthnl(t transport) (*ethnl, error) {
	f, err := t.GetFamily(ethtoolGenlName)
	if err != nil {
		if netlink.IsNotExist(err) {
			return nil, fmt.Errorf("ethtool netlink family: %w: %v", ErrNotSupported, err)
		}
		return nil, fmt.Errorf("look up ethtool netlink family: %w", err)
	}
	return &ethnl{t: t, family: f.ID}, nil
}

func (c *ethnl) name() string { return "netlink" }
func (c *ethnl) close() error { return c.t.Close() }

// kernelError carries a sentinel next to the kernel's error.
type kernelError struct {
	sentinel error
	err      error
}

func (e *kernelError) Error() string   { return e.err.Error() }
func (e *kernelError) Unwrap() []error { return []error{e.sentinel, e.err} }

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENODEV):
		return &kernelError{ErrNoDevice, err}
	case errors.Is(err, unix.EOPNOTSUPP):
		return &kernelError{ErrNotSupported, err}
	}
	return err
}

func (c *ethnl) exec(cmd uint8, data []byte, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	msgs, err := c.t.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: ethtoolGenlVersion},
		Data:   data,
	}, c.family, netlink.Request|flags)
	return msgs, mapErr(err)
}

// encodeHeader writes the request header nest.
func encodeHeader(ae *netlink.AttributeEncoder, dev string, flags uint32) {
	ae.Nested(attrHeader, func(nae *netlink.AttributeEncoder) error {
		nae.String(headerDevName, dev)
		if flags != 0 {
			nae.Uint32(headerFlags, flags)
		}
		return nil
	})
}

// --- requests ---------------------------------------------------------------

func strsetRequest(dev string) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, dev, 0)
	ae.Nested(strsetSets, func(nae *netlink.AttributeEncoder) error {
		nae.Nested(stringsetsSet, func(nnae *netlink.AttributeEncoder) error {
			nnae.Uint32(stringsetID, ssFeatures)
			return nil
		})
		return nil
	})
	return ae.Encode()
}

func featuresGetRequest(dev string) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, dev, flagCompact)
	return ae.Encode()
}

// featuresSetRequest sets the wanted bits in mask to value, as a compact
// bitset with a mask (bits outside mask keep their state).
func featuresSetRequest(dev string, nbits int, mask, value bitmap) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, dev, flagOmitReply)
	words := (nbits + 31) / 32
	ae.Nested(featuresWanted, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(bitsetSize, uint32(nbits))
		nae.Bytes(bitsetValue, wordsBytes(value, words))
		nae.Bytes(bitsetMask, wordsBytes(mask, words))
		return nil
	})
	return ae.Encode()
}

func wordsBytes(b bitmap, words int) []byte {
	out := make([]byte, 4*words)
	for i := 0; i < words && i < len(b); i++ {
		nlenc.PutUint32(out[4*i:4*i+4], b[i])
	}
	return out
}

func getRequest(dev string) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, dev, 0)
	return ae.Encode()
}

// paramsSetRequest encodes the given parameters in table order.
func paramsSetRequest(dev string, table []param, p Params) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	encodeHeader(ae, dev, 0)
	for _, pr := range table {
		v, ok := p[pr.name]
		if !ok {
			continue
		}
		if pr.u8 {
			if v > 255 {
				return nil, fmt.Errorf("%s=%d: out of range (0-255)", pr.name, v)
			}
			ae.Uint8(pr.attr, uint8(v))
		} else {
			ae.Uint32(pr.attr, v)
		}
	}
	return ae.Encode()
}

// --- replies ----------------------------------------------------------------

func parseStrset(msgs []genetlink.Message) ([]string, error) {
	var names []string
	found := false
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			if ad.Type() != strsetSets {
				continue
			}
			ad.Nested(func(sets *netlink.AttributeDecoder) error {
				for sets.Next() {
					if sets.Type() != stringsetsSet {
						continue
					}
					sets.Nested(func(set *netlink.AttributeDecoder) error {
						var id, count uint32
						var strs map[uint32]string
						for set.Next() {
							switch set.Type() {
							case stringsetID:
								id = set.Uint32()
							case stringsetCount:
								count = set.Uint32()
							case stringsetStr:
								strs = map[uint32]string{}
								set.Nested(func(ss *netlink.AttributeDecoder) error {
									for ss.Next() {
										if ss.Type() != stringsString {
											continue
										}
										ss.Nested(func(s *netlink.AttributeDecoder) error {
											var idx uint32
											var val string
											for s.Next() {
												switch s.Type() {
												case stringIndex:
													idx = s.Uint32()
												case stringValue:
													val = s.String()
												}
											}
											strs[idx] = val
											return nil
										})
									}
									return nil
								})
							}
						}
						if id != ssFeatures {
							return nil
						}
						found = true
						if count > maxBits {
							return fmt.Errorf("string set of %d strings, at most %d", count, maxBits)
						}
						if int(count) < len(strs) {
							count = uint32(len(strs))
						}
						names = make([]string, count)
						for i, s := range strs {
							if int(i) < len(names) {
								names[i] = s
							}
						}
						return nil
					})
				}
				return nil
			})
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("parse string set reply: %w", err)
		}
	}
	if !found {
		return nil, errors.New("string set reply lacks the features set")
	}
	return names, nil
}

// parseBitset decodes a bitset in either form. Compact: SIZE, VALUE and
// optionally MASK words. Verbose: BITS of BIT{INDEX, NAME, VALUE}; with
// NOMASK every listed bit is set, otherwise listed bits are the mask and
// VALUE marks the set ones. Verbose bits given by name only are looked up
// in names. It returns the set bits and the mask (nil for a list).
func parseBitset(b []byte, names []string) (value, mask bitmap, size int, err error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, nil, 0, err
	}
	noMask := false
	var words, maskWords []byte
	type vbit struct {
		idx   int
		name  string
		value bool
	}
	var bits []vbit
	verbose := false
	for ad.Next() {
		switch ad.Type() {
		case bitsetNoMask:
			noMask = true
		case bitsetSize:
			size = int(ad.Uint32())
		case bitsetValue:
			words = ad.Bytes()
		case bitsetMask:
			maskWords = ad.Bytes()
		case bitsetBits:
			verbose = true
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() != bitsetBitsBit {
						continue
					}
					vb := vbit{idx: -1}
					nad.Nested(func(bd *netlink.AttributeDecoder) error {
						for bd.Next() {
							switch bd.Type() {
							case bitIndex:
								vb.idx = int(bd.Uint32())
							case bitName:
								vb.name = bd.String()
							case bitValue:
								vb.value = true
							}
						}
						return nil
					})
					bits = append(bits, vb)
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return nil, nil, 0, err
	}
	if size < 0 || size > maxBits {
		return nil, nil, 0, fmt.Errorf("bitset of %d bits, at most %d", size, maxBits)
	}
	if !verbose {
		if len(words)%4 != 0 || len(words) < 4*((size+31)/32) {
			return nil, nil, 0, fmt.Errorf("bitset of %d bits has %d value bytes", size, len(words))
		}
		value = readWords(words)
		if maskWords != nil && !noMask {
			mask = readWords(maskWords)
		}
		return value, mask, size, nil
	}
	if size == 0 {
		size = len(names)
	}
	value = newBitmap(size)
	if !noMask {
		mask = newBitmap(size)
	}
	for _, vb := range bits {
		i := vb.idx
		if i < 0 {
			for j, n := range names {
				if n == vb.name {
					i = j
				}
			}
		}
		if i < 0 || i >= size {
			return nil, nil, 0, fmt.Errorf("bitset bit %d %q out of range", vb.idx, vb.name)
		}
		if noMask {
			value.set(i, true)
		} else {
			mask.set(i, true)
			value.set(i, vb.value)
		}
	}
	return value, mask, size, nil
}

func readWords(b []byte) bitmap {
	out := make(bitmap, len(b)/4)
	for i := range out {
		out[i] = nlenc.Uint32(b[4*i : 4*i+4])
	}
	return out
}

// parseFeatures decodes a FEATURES_GET reply; names may be nil and are
// then left to the caller.
func parseFeatures(msgs []genetlink.Message, names []string) (*rawFeatures, error) {
	if len(msgs) != 1 {
		return nil, fmt.Errorf("features reply: %d messages, want 1", len(msgs))
	}
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data)
	if err != nil {
		return nil, err
	}
	r := &rawFeatures{}
	size := 0
	got := 0
	for ad.Next() {
		var dst *bitmap
		switch ad.Type() {
		case featuresHW:
			dst = &r.hw
		case featuresWanted:
			dst = &r.wanted
		case featuresActive:
			dst = &r.active
		case featuresNoChg:
			dst = &r.nochange
		default:
			continue
		}
		v, _, n, err := parseBitset(ad.Bytes(), names)
		if err != nil {
			return nil, fmt.Errorf("features reply: %w", err)
		}
		*dst = v
		size = max(size, n)
		got++
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("features reply: %w", err)
	}
	if got != 4 {
		return nil, fmt.Errorf("features reply: %d of 4 bitsets", got)
	}
	if len(names) < size {
		n := make([]string, size)
		copy(n, names)
		names = n
	}
	r.names = names
	words := (len(names) + 31) / 32
	for _, b := range []*bitmap{&r.hw, &r.wanted, &r.active, &r.nochange} {
		if len(*b) < words {
			nb := newBitmap(len(names))
			copy(nb, *b)
			*b = nb
		}
	}
	return r, nil
}

// parseParams decodes the numeric attributes of a COALESCE/RINGS/CHANNELS
// reply that the table knows; the kernel omits what the driver lacks.
func parseParams(msgs []genetlink.Message, table []param) (Params, error) {
	if len(msgs) != 1 {
		return nil, fmt.Errorf("reply: %d messages, want 1", len(msgs))
	}
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data)
	if err != nil {
		return nil, err
	}
	byAttr := map[uint16]param{}
	for _, p := range table {
		byAttr[p.attr] = p
	}
	out := Params{}
	for ad.Next() {
		p, ok := byAttr[ad.Type()]
		if !ok {
			continue
		}
		switch len(ad.Bytes()) {
		case 1:
			out[p.name] = uint32(ad.Uint8())
		case 4:
			out[p.name] = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// --- backend ------------------------------------------------------------------

func (c *ethnl) featureNames(dev string) ([]string, error) {
	if c.names != nil {
		return c.names, nil
	}
	req, err := strsetRequest(dev)
	if err != nil {
		return nil, err
	}
	msgs, err := c.exec(msgStrsetGet, req, 0)
	if err != nil {
		return nil, err
	}
	names, err := parseStrset(msgs)
	if err != nil {
		return nil, err
	}
	c.names = names
	return names, nil
}

func (c *ethnl) features(dev string) (*rawFeatures, error) {
	names, err := c.featureNames(dev)
	if err != nil {
		return nil, err
	}
	req, err := featuresGetRequest(dev)
	if err != nil {
		return nil, err
	}
	msgs, err := c.exec(msgFeaturesGet, req, 0)
	if err != nil {
		return nil, err
	}
	return parseFeatures(msgs, names)
}

func (c *ethnl) setFeatures(dev string, nbits int, mask, value bitmap) error {
	req, err := featuresSetRequest(dev, nbits, mask, value)
	if err != nil {
		return err
	}
	_, err = c.exec(msgFeaturesSet, req, netlink.Acknowledge)
	return err
}

func (c *ethnl) getParams(cmd uint8, dev string, table []param) (Params, error) {
	req, err := getRequest(dev)
	if err != nil {
		return nil, err
	}
	msgs, err := c.exec(cmd, req, 0)
	if err != nil {
		return nil, err
	}
	return parseParams(msgs, table)
}

func (c *ethnl) coalesce(dev string) (Coalesce, error) {
	return c.getParams(msgCoalesceGet, dev, coalesceParams)
}

func (c *ethnl) setCoalesce(dev string, p Coalesce) error {
	req, err := paramsSetRequest(dev, coalesceParams, p)
	if err != nil {
		return err
	}
	_, err = c.exec(msgCoalesceSet, req, netlink.Acknowledge)
	return err
}

func (c *ethnl) rings(dev string) (Rings, error) {
	return c.getParams(msgRingsGet, dev, ringParams)
}

func (c *ethnl) channels(dev string) (Channels, error) {
	return c.getParams(msgChannelsGet, dev, channelParams)
}
