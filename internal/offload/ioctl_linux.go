package offload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool ioctl commands (include/uapi/linux/ethtool.h).
const (
	ethtoolGCoalesce  = 0x0e
	ethtoolSCoalesce  = 0x0f
	ethtoolGRingParam = 0x10
	ethtoolGStrings   = 0x1b
	ethtoolGSsetInfo  = 0x37
	ethtoolGFeatures  = 0x3a
	ethtoolSFeatures  = 0x3b
	ethtoolGChannels  = 0x3c
	ethGStringLen     = 32
)

// ioctlCoalesce is struct ethtool_coalesce after cmd, in field order.
var ioctlCoalesce = []string{
	"rx-usecs", "rx-frames", "rx-usecs-irq", "rx-frames-irq",
	"tx-usecs", "tx-frames", "tx-usecs-irq", "tx-frames-irq",
	"stats-block-usecs", "adaptive-rx", "adaptive-tx", "pkt-rate-low",
	"rx-usecs-low", "rx-frames-low", "tx-usecs-low", "tx-frames-low",
	"pkt-rate-high", "rx-usecs-high", "rx-frames-high", "tx-usecs-high",
	"tx-frames-high", "sample-interval",
}

// ioctlRings is struct ethtool_ringparam after cmd.
var ioctlRings = []string{"rx-max", "rx-mini-max", "rx-jumbo-max", "tx-max", "rx", "rx-mini", "rx-jumbo", "tx"}

// ioctlChannels is struct ethtool_channels after cmd.
var ioctlChannels = []string{"rx-max", "tx-max", "other-max", "combined-max", "rx", "tx", "other", "combined"}

// ioctlBackend speaks SIOCETHTOOL on a datagram socket, for kernels
// without ethtool netlink (before 5.6).
type ioctlBackend struct {
	fd    int
	names []string
}

var _ backend = (*ioctlBackend)(nil)

func newIoctl() (*ioctlBackend, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ethtool ioctl socket: %w", err)
	}
	return &ioctlBackend{fd: fd}, nil
}

func (b *ioctlBackend) name() string { return "ioctl" }
func (b *ioctlBackend) close() error { return unix.Close(b.fd) }

// ifreq is struct ifreq with ifr_data.
type ifreq struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// do runs SIOCETHTOOL with buf (starting with the u32 command) for dev.
func (b *ioctlBackend) do(dev string, buf []byte) error {
	if len(dev) >= unix.IFNAMSIZ || dev == "" {
		return &kernelError{ErrNoDevice, fmt.Errorf("invalid device name %q", dev)}
	}
	var ifr ifreq
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(&buf[0])
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(b.fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return mapErr(fmt.Errorf("SIOCETHTOOL: %w", errno))
	}
	return nil
}

func cmdBuf(cmd uint32, size int) []byte {
	buf := make([]byte, size)
	binary.NativeEndian.PutUint32(buf, cmd)
	return buf
}

func (b *ioctlBackend) featureNames(dev string) ([]string, error) {
	if b.names != nil {
		return b.names, nil
	}
	// struct ethtool_sset_info: cmd, reserved, u64 sset_mask, u32 data[].
	info := cmdBuf(ethtoolGSsetInfo, 20)
	binary.NativeEndian.PutUint64(info[8:], 1<<ssFeatures)
	if err := b.do(dev, info); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSSET_INFO: %w", err)
	}
	if binary.NativeEndian.Uint64(info[8:]) == 0 {
		return nil, &kernelError{ErrNotSupported, errors.New("no feature strings (ETHTOOL_GSSET_INFO)")}
	}
	n := int(binary.NativeEndian.Uint32(info[16:]))
	// struct ethtool_gstrings: cmd, string_set, len, data[len*32].
	gs := cmdBuf(ethtoolGStrings, 12+n*ethGStringLen)
	binary.NativeEndian.PutUint32(gs[4:], ssFeatures)
	binary.NativeEndian.PutUint32(gs[8:], uint32(n))
	if err := b.do(dev, gs); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GSTRINGS: %w", err)
	}
	names := make([]string, n)
	for i := range names {
		s := gs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		if j := bytes.IndexByte(s, 0); j >= 0 {
			s = s[:j]
		}
		names[i] = string(s)
	}
	b.names = names
	return names, nil
}

func (b *ioctlBackend) features(dev string) (*rawFeatures, error) {
	names, err := b.featureNames(dev)
	if err != nil {
		return nil, err
	}
	words := (len(names) + 31) / 32
	// struct ethtool_gfeatures: cmd, size, blocks{available, requested,
	// active, never_changed}.
	buf := cmdBuf(ethtoolGFeatures, 8+16*words)
	binary.NativeEndian.PutUint32(buf[4:], uint32(words))
	if err := b.do(dev, buf); err != nil {
		return nil, fmt.Errorf("ETHTOOL_GFEATURES: %w", err)
	}
	r := &rawFeatures{names: names, hw: newBitmap(len(names)), wanted: newBitmap(len(names)), active: newBitmap(len(names)), nochange: newBitmap(len(names))}
	for w := 0; w < words; w++ {
		blk := buf[8+16*w:]
		r.hw[w] = binary.NativeEndian.Uint32(blk)
		r.wanted[w] = binary.NativeEndian.Uint32(blk[4:])
		r.active[w] = binary.NativeEndian.Uint32(blk[8:])
		r.nochange[w] = binary.NativeEndian.Uint32(blk[12:])
	}
	return r, nil
}

func (b *ioctlBackend) setFeatures(dev string, nbits int, mask, value bitmap) error {
	cur, err := b.features(dev)
	if err != nil {
		return err
	}
	words := (len(cur.names) + 31) / 32
	// struct ethtool_sfeatures: cmd, size, blocks{valid, requested}. The
	// kernel refuses valid bits outside the changeable set.
	buf := cmdBuf(ethtoolSFeatures, 8+8*words)
	binary.NativeEndian.PutUint32(buf[4:], uint32(words))
	for w := 0; w < words; w++ {
		var m, v uint32
		if w < len(mask) {
			m = mask[w] & cur.hw[w] &^ cur.nochange[w]
		}
		if w < len(value) {
			v = value[w]
		}
		binary.NativeEndian.PutUint32(buf[8+8*w:], m)
		binary.NativeEndian.PutUint32(buf[12+8*w:], v&m)
	}
	if err := b.do(dev, buf); err != nil {
		return fmt.Errorf("ETHTOOL_SFEATURES: %w", err)
	}
	return nil
}

func (b *ioctlBackend) getStruct(dev string, cmd uint32, fields []string) (Params, error) {
	buf := cmdBuf(cmd, 4+4*len(fields))
	if err := b.do(dev, buf); err != nil {
		return nil, err
	}
	p := Params{}
	for i, f := range fields {
		p[f] = binary.NativeEndian.Uint32(buf[4+4*i:])
	}
	return p, nil
}

func (b *ioctlBackend) coalesce(dev string) (Coalesce, error) {
	p, err := b.getStruct(dev, ethtoolGCoalesce, ioctlCoalesce)
	if err != nil {
		return nil, fmt.Errorf("ETHTOOL_GCOALESCE: %w", err)
	}
	return p, nil
}

func (b *ioctlBackend) setCoalesce(dev string, c Coalesce) error {
	cur, err := b.coalesce(dev)
	if err != nil {
		return err
	}
	buf := cmdBuf(ethtoolSCoalesce, 4+4*len(ioctlCoalesce))
	for i, f := range ioctlCoalesce {
		v := cur[f]
		if nv, ok := c[f]; ok {
			v = nv
		}
		binary.NativeEndian.PutUint32(buf[4+4*i:], v)
	}
	for k := range c {
		if !contains(ioctlCoalesce, k) {
			return fmt.Errorf("%s: %w by the ethtool ioctl", k, ErrNotSupported)
		}
	}
	if err := b.do(dev, buf); err != nil {
		return fmt.Errorf("ETHTOOL_SCOALESCE: %w", err)
	}
	return nil
}

func (b *ioctlBackend) rings(dev string) (Rings, error) {
	p, err := b.getStruct(dev, ethtoolGRingParam, ioctlRings)
	if err != nil {
		return nil, fmt.Errorf("ETHTOOL_GRINGPARAM: %w", err)
	}
	return p, nil
}

func (b *ioctlBackend) channels(dev string) (Channels, error) {
	p, err := b.getStruct(dev, ethtoolGChannels, ioctlChannels)
	if err != nil {
		return nil, fmt.Errorf("ETHTOOL_GCHANNELS: %w", err)
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
