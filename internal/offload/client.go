package offload

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// backend is one way of talking to the kernel: ethtool netlink, or the
// legacy ioctl. Errors carry ErrNoDevice / ErrNotSupported where they apply.
type backend interface {
	name() string
	features(dev string) (*rawFeatures, error)
	// setFeatures sets the wanted state of the bits in mask to value.
	setFeatures(dev string, nbits int, mask, value bitmap) error
	coalesce(dev string) (Coalesce, error)
	setCoalesce(dev string, c Coalesce) error
	rings(dev string) (Rings, error)
	channels(dev string) (Channels, error)
	close() error
}

// Client reads and changes devices in one network namespace. It is not
// safe for concurrent use.
type Client struct {
	netns string
	b     backend
}

// Close releases the client's socket.
func (c *Client) Close() error { return c.b.close() }

// NetNS returns the namespace path the client works in ("" for the
// caller's own).
func (c *Client) NetNS() string { return c.netns }

// Backend returns "netlink" or "ioctl".
func (c *Client) Backend() string { return c.b.name() }

func (c *Client) where(dev string) string { return where(c.netns, dev) }

// Features reads a device's features (ethtool -k).
func (c *Client) Features(dev string) (Features, error) {
	r, err := c.b.features(dev)
	if err != nil {
		return nil, fmt.Errorf("read features of %s: %w", c.where(dev), err)
	}
	return r.features(), nil
}

// Set applies settings (ethtool -K), then re-reads the device and reports
// what changed, what was refused and what moved along. Unknown names are
// refused before anything is changed.
func (c *Client) Set(dev string, settings []Setting) (*SetResult, error) {
	if len(settings) == 0 {
		return nil, fmt.Errorf("set features of %s: nothing to set", c.where(dev))
	}
	before, err := c.b.features(dev)
	if err != nil {
		return nil, fmt.Errorf("read features of %s: %w", c.where(dev), err)
	}
	req, err := resolve(before.names, settings)
	if err != nil {
		return nil, fmt.Errorf("set features of %s: %w", c.where(dev), err)
	}
	n := len(before.names)
	mask, value := newBitmap(n), newBitmap(n)
	for i, on := range req {
		mask.set(i, true)
		value.set(i, on)
	}
	if err := c.b.setFeatures(dev, n, mask, value); err != nil {
		return nil, fmt.Errorf("set features of %s: %w", c.where(dev), err)
	}
	after, err := c.b.features(dev)
	if err != nil {
		return nil, fmt.Errorf("re-read features of %s: %w", c.where(dev), err)
	}
	res := classify(before, after, req)
	res.NetNS, res.Dev = c.netns, dev
	return res, nil
}

// Coalesce reads interrupt coalescing (ethtool -c).
func (c *Client) Coalesce(dev string) (Coalesce, error) {
	p, err := c.b.coalesce(dev)
	if err != nil {
		return nil, fmt.Errorf("read coalescing of %s: %w", c.where(dev), err)
	}
	return p, nil
}

// SetCoalesce sets the given coalescing parameters (ethtool -C); the
// others keep their values.
func (c *Client) SetCoalesce(dev string, p Coalesce) error {
	if err := checkCoalesce(p); err != nil {
		return fmt.Errorf("set coalescing of %s: %w", c.where(dev), err)
	}
	if len(p) == 0 {
		return nil
	}
	if err := c.b.setCoalesce(dev, p); err != nil {
		return fmt.Errorf("set coalescing of %s: %w", c.where(dev), err)
	}
	return nil
}

// Rings reads ring sizes (ethtool -g).
func (c *Client) Rings(dev string) (Rings, error) {
	p, err := c.b.rings(dev)
	if err != nil {
		return nil, fmt.Errorf("read rings of %s: %w", c.where(dev), err)
	}
	return p, nil
}

// Channels reads queue counts (ethtool -l).
func (c *Client) Channels(dev string) (Channels, error) {
	p, err := c.b.channels(dev)
	if err != nil {
		return nil, fmt.Errorf("read channels of %s: %w", c.where(dev), err)
	}
	return p, nil
}

// Show reads features, coalescing, rings and channels. What the driver
// does not support is left nil; any other failure is an error.
func (c *Client) Show(dev string) (*Info, error) {
	fs, err := c.Features(dev)
	if err != nil {
		return nil, err
	}
	info := &Info{NetNS: c.netns, Dev: dev, Backend: c.b.name(), Features: fs}
	if info.Coalesce, err = optional(c.Coalesce(dev)); err != nil {
		return nil, err
	}
	if info.Rings, err = optional(c.Rings(dev)); err != nil {
		return nil, err
	}
	if info.Channels, err = optional(c.Channels(dev)); err != nil {
		return nil, err
	}
	return info, nil
}

func optional(p Params, err error) (Params, error) {
	if errors.Is(err, ErrNotSupported) {
		return nil, nil
	}
	return p, err
}

// Snapshot captures what Restore can set back: features and coalescing.
func (c *Client) Snapshot(dev string) (*Snapshot, error) {
	r, err := c.b.features(dev)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: read features: %w", c.where(dev), err)
	}
	s := &Snapshot{Version: SnapshotVersion, NetNS: c.netns, Dev: dev, Taken: time.Now().UTC(), Features: map[string]State{}}
	for i, k := range r.names {
		if k != "" {
			s.Features[k] = r.state(i)
		}
	}
	if s.Coalesce, err = optional(c.b.coalesce(dev)); err != nil {
		return nil, fmt.Errorf("snapshot %s: read coalescing: %w", c.where(dev), err)
	}
	return s, nil
}

// Restore sets back, feature by feature, what differs from the snapshot,
// then verifies against it. It returns what was restored and what still
// differs; the error is for failures to talk to the device at all. The
// client must be in the snapshot's namespace.
func (c *Client) Restore(s *Snapshot) (*RestoreResult, error) {
	res := &RestoreResult{Restored: []string{}, Failed: []Mismatch{}}
	w := c.where(s.Dev)
	cur, err := c.b.features(s.Dev)
	if err != nil {
		return nil, fmt.Errorf("restore %s: read features: %w", w, err)
	}
	names := make([]string, 0, len(s.Features))
	for k := range s.Features {
		names = append(names, k)
	}
	sort.Strings(names)

	// What differs in the wanted state of changeable features.
	diff := func(r *rawFeatures) []int {
		var idx []int
		for _, k := range names {
			i := r.index(k)
			if i >= 0 && !r.fixed(i) && r.wanted.get(i) != s.Features[k].Requested {
				idx = append(idx, i)
			}
		}
		return idx
	}
	set := func(idx []int) error {
		n := len(cur.names)
		mask, value := newBitmap(n), newBitmap(n)
		for _, i := range idx {
			mask.set(i, true)
			value.set(i, s.Features[cur.names[i]].Requested)
		}
		return c.b.setFeatures(s.Dev, n, mask, value)
	}
	var setErrs []error
	if idx := diff(cur); len(idx) > 0 {
		// All at once first (dependencies such as TSO on checksumming
		// settle together), then one by one for whatever is left.
		if err := set(idx); err != nil {
			setErrs = append(setErrs, err)
		}
		now, err := c.b.features(s.Dev)
		if err != nil {
			return nil, fmt.Errorf("restore %s: re-read features: %w", w, err)
		}
		for _, i := range diff(now) {
			if err := set([]int{i}); err != nil {
				setErrs = append(setErrs, fmt.Errorf("%s: %w", cur.names[i], err))
			}
		}
	}
	final, err := c.b.features(s.Dev)
	if err != nil {
		return nil, fmt.Errorf("restore %s: re-read features: %w", w, err)
	}
	for _, k := range names {
		want := s.Features[k]
		i := final.index(k)
		if i < 0 {
			res.Failed = append(res.Failed, Mismatch{What: k, Want: stateString(want), Got: "missing"})
			continue
		}
		got := final.state(i)
		ok := got.Active == want.Active && (got.Fixed || got.Requested == want.Requested)
		if !ok {
			res.Failed = append(res.Failed, Mismatch{What: k, Want: stateString(want), Got: stateString(got)})
			continue
		}
		if j := cur.index(k); j >= 0 && cur.state(j) != got {
			res.Restored = append(res.Restored, k)
		}
	}
	if len(res.Failed) > 0 && len(setErrs) > 0 {
		res.Failed[0].Got += " (" + errors.Join(setErrs...).Error() + ")"
	}

	if s.Coalesce != nil {
		if err := c.restoreCoalesce(s, res); err != nil {
			return nil, fmt.Errorf("restore %s: %w", w, err)
		}
	}
	return res, nil
}

func (c *Client) restoreCoalesce(s *Snapshot, res *RestoreResult) error {
	cur, err := c.b.coalesce(s.Dev)
	if err != nil {
		return fmt.Errorf("read coalescing: %w", err)
	}
	diff := Coalesce{}
	for k, v := range s.Coalesce {
		if got, ok := cur[k]; !ok || got != v {
			diff[k] = v
		}
	}
	var setErr error
	if len(diff) > 0 {
		setErr = c.b.setCoalesce(s.Dev, diff)
	}
	now, err := c.b.coalesce(s.Dev)
	if err != nil {
		return fmt.Errorf("re-read coalescing: %w", err)
	}
	keys := make([]string, 0, len(diff))
	for k := range diff {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want := s.Coalesce[k]
		got, ok := now[k]
		switch {
		case ok && got == want:
			res.Restored = append(res.Restored, "coalesce "+k)
		case !ok:
			res.Failed = append(res.Failed, Mismatch{What: "coalesce " + k, Want: strconv.FormatUint(uint64(want), 10), Got: "missing"})
		default:
			m := Mismatch{What: "coalesce " + k, Want: strconv.FormatUint(uint64(want), 10), Got: strconv.FormatUint(uint64(got), 10)}
			if setErr != nil {
				m.Got += " (" + setErr.Error() + ")"
			}
			res.Failed = append(res.Failed, m)
		}
	}
	return nil
}

func stateString(s State) string {
	out := onOff(s.Active)
	if s.Fixed {
		return out + " [fixed]"
	}
	if s.Requested != s.Active {
		out += " [requested " + onOff(s.Requested) + "]"
	}
	return out
}

// Show reads everything about dev in the namespace at netns ("" for the
// caller's own).
func Show(netns, dev string) (*Info, error) {
	c, err := Open(netns)
	if err != nil {
		return nil, fmt.Errorf("read features of %s: %w", where(netns, dev), err)
	}
	defer c.Close()
	return c.Show(dev)
}

// Set applies settings to dev in the namespace at netns and reports the
// outcome; see Client.Set.
func Set(netns, dev string, settings []Setting) (*SetResult, error) {
	c, err := Open(netns)
	if err != nil {
		return nil, fmt.Errorf("set features of %s: %w", where(netns, dev), err)
	}
	defer c.Close()
	return c.Set(dev, settings)
}

// TakeSnapshot captures dev's restorable state; see Client.Snapshot.
func TakeSnapshot(netns, dev string) (*Snapshot, error) {
	c, err := Open(netns)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", where(netns, dev), err)
	}
	defer c.Close()
	return c.Snapshot(dev)
}

// Restore sets dev back to the snapshot, in the snapshot's namespace; see
// Client.Restore.
func Restore(s *Snapshot) (*RestoreResult, error) {
	c, err := Open(s.NetNS)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", where(s.NetNS, s.Dev), err)
	}
	defer c.Close()
	return c.Restore(s)
}
