package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/report"
	"github.com/latlab/latlab/internal/topo"
)

// offloadOpen is how the offload commands reach the kernel; tests replace
// it.
var offloadOpen = func(netns string) (offloadClient, error) { return offload.Open(netns) }

type offloadClient interface {
	Show(dev string) (*offload.Info, error)
	Set(dev string, s []offload.Setting) (*offload.SetResult, error)
	Coalesce(dev string) (offload.Coalesce, error)
	SetCoalesce(dev string, p offload.Coalesce) error
	Close() error
}

func newOffloadCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offload",
		Short: "Show and change a device's offloads and interrupt coalescing",
		Long: `Offload shows and changes what the kernel and the NIC do on a packet's
behalf, like ethtool -k/-K/-c/-g/-l, inside any network namespace. These
settings trade CPU for latency, so they are an axis of latlab experiments:

  tso, gso   TCP/generic segmentation offload: the stack builds segments of
             up to 64 KB and the NIC (tso) or the last moment before the
             driver (gso) cuts them into MTU-sized packets. Cheaper per
             byte; a large response leaves as one back-to-back burst.
  gro, lro   generic/large receive offload: packets of one flow are merged
             into a large one before the stack sees them (gro in software
             during the NAPI poll, lro in the NIC). Cheaper per byte; the
             merge can hold packets until the poll ends. On veth, gro=on
             also switches the peer to NAPI receive, another code path.
  tx, rx     checksum offload. tx=off forces software checksums and takes
             the segmentation offloads that need them down with it.
  sg         scatter-gather: send from several buffers without copying;
             needed by tso.

Coalescing (rx-usecs, rx-frames, adaptive-rx...) makes the NIC wait up to N
microseconds or N frames before it interrupts: fewer interrupts, more
latency at low load. Rings are the NIC queues' sizes (bigger absorbs bursts,
adds queueing delay); channels are the number of queues (and interrupts).
veth has no coalescing or ring settings; it reports its channels.

Feature names are the kernel's (tx-tcp-segmentation, rx-gro-hw,
tx-checksum-ip-generic...) or ethtool's (generic-receive-offload, and the
short aliases tso gso gro lro tx rx sg ufo rxvlan txvlan ntuple rxhash,
which expand as ethtool -K expands them: tso is every tx-tcp*-segmentation).`,
		Example: `  latlab offload show --netns lab1 veth0
  latlab offload show --netns lab1 veth0 --json
  latlab offload set --netns lab1 veth0 tso=off gro=on
  latlab offload set --netns /run/netns/lab1 veth0 tx=off --json
  latlab offload set eth0 gro=off --allow-host-nic     # the host's own NIC`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown offload command %q (want show or set)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	cmd.AddCommand(newOffloadShowCmd(e), newOffloadSetCmd(e), newOffloadCoalesceCmd(e))
	return cmd
}

// usageArgs makes an argument validator's errors usage errors (root.go
// does this for top-level commands only).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func newOffloadShowCmd(e *env) *cobra.Command {
	var (
		netns string
		out   *outputFlags
	)
	cmd := &cobra.Command{
		Use:   "show [--netns NS] DEV [-o json]",
		Short: "Show a device's features, coalescing, rings and channels",
		Long: `Show prints every feature as ethtool -k does: on or off, "[fixed]" when the
device cannot change it, "[requested on]" when it was asked for but the
kernel holds it back (TSO without tx checksumming, for instance). Then
coalescing, rings and channels, or "not supported" where the driver has
none.

--json prints {"features": {NAME: {"active", "fixed", "requested"}},
"coalesce": {...}, "rings": {...}, "channels": {...}} with ethtool's
feature names and ethtool -C/-G/-L parameter names; null where the driver
does not support the query.`,
		Example: `  latlab offload show --netns lab1 veth0
  latlab offload show --netns lab1 veth0 --json | jq .features`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			ns, err := netnsPath(netns)
			if err != nil {
				return err
			}
			c, err := offloadOpen(ns)
			if err != nil {
				return fmt.Errorf("read features of %s: %w", report.OffloadWhere(ns, args[0]), err)
			}
			defer c.Close()
			info, err := c.Show(args[0])
			if err != nil {
				return err
			}
			return report.WriteOffloadShow(e.stdout, output, info)
		},
	}
	f := cmd.Flags()
	f.StringVar(&netns, "netns", "", "the device's network namespace (a name under /var/run/netns or a path); default: latlab's own")
	out = addOutput(cmd, report.FormatTable, report.FormatJSON)
	cmd.RegisterFlagCompletionFunc("netns", netnsCompletion)
	return cmd
}

func newOffloadSetCmd(e *env) *cobra.Command {
	var (
		netns        string
		out          *outputFlags
		allowHostNIC bool
	)
	cmd := &cobra.Command{
		Use:   "set [--netns NS] DEV NAME=on|off...",
		Short: "Change features and report what really changed",
		Long: `Set changes features (like ethtool -K), then reads the device back and
reports what it did:

  changed     requested, and now in the requested state
  refused     requested, but not in that state afterwards: the feature is
              fixed on this device, or the kernel holds it back because a
              feature it needs is off (the request stays pending and takes
              effect when that changes)
  dependent   not requested, but moved with the request (tx=off takes the
              segmentation offloads down)
  unchanged   requested, already in that state

An unknown name changes nothing and is reported with the closest valid
names. Without --netns the device is in latlab's own namespace, usually the
host's real NIC; that is refused unless --allow-host-nic is given, and so is
a --netns that is the same namespace under another name (/proc/1/ns/net, a
name under /var/run/netns bind-mounted from it): namespaces are compared by
identity, not by name.

Exit codes: 0 everything applied, 1 something refused or failed, 2 bad
usage (unknown feature, bad value).`,
		Example: `  latlab offload set --netns lab1 veth0 tso=off gro=off
  latlab offload set --netns lab1 veth0 generic-receive-offload=on rx-gro-list=on
  latlab offload set --netns lab1 veth0 tx off --json     # ethtool -K syntax works too`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			dev := args[0]
			settings, err := offload.ParseSettings(args[1:])
			if err != nil {
				return usagef("%v", err)
			}
			c, ns, err := openToChange(netns, dev, allowHostNIC, "set features")
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Set(dev, settings)
			if errors.Is(err, offload.ErrUnknownFeature) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if err := report.WriteOffloadSet(e.stdout, output, res); err != nil {
				return err
			}
			if n := len(res.Refused); n > 0 {
				var names []string
				for _, r := range res.Refused {
					names = append(names, r.Name)
				}
				return fmt.Errorf("set features of %s: %d refused: %s", report.OffloadWhere(ns, dev), n, strings.Join(names, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&netns, "netns", "", "the device's network namespace (a name under /var/run/netns or a path)")
	out = addOutput(cmd, report.FormatTable, report.FormatJSON) // json: changed, unchanged, refused, dependent
	cmd.RegisterFlagCompletionFunc("netns", netnsCompletion)
	f.BoolVar(&allowHostNIC, "allow-host-nic", false, "allow changing a device in latlab's own or the host's namespace (no --netns, or a --netns that is one of them)")
	return cmd
}

// openToChange opens the offload client for a command that changes dev
// (what: "set features"), refusing latlab's own namespace — likely a real
// NIC — unless allowHostNIC. It returns the resolved namespace path.
func openToChange(netns, dev string, allowHostNIC bool, what string) (offloadClient, string, error) {
	ns, err := netnsPath(netns)
	if err != nil {
		return nil, "", err
	}
	if !allowHostNIC {
		// By identity, not by string: --netns /proc/1/ns/net, or a name
		// bind-mounted from the host's namespace, is the host too.
		host, err := topo.IsHostNetNS(ns)
		if err != nil {
			return nil, "", fmt.Errorf("%s of %s: cannot tell whether the namespace is the host's, refused: %w", what, report.OffloadWhere(ns, dev), err)
		}
		if host && ns == "" {
			return nil, "", usagef("refusing to change %s in latlab's own network namespace (likely a real NIC): give --netns NS, or --allow-host-nic if you mean it", dev)
		}
		if host {
			return nil, "", usagef("refusing to change %s: netns %s is the host's (or latlab's own) network namespace (likely a real NIC): --allow-host-nic if you mean it", dev, ns)
		}
	}
	c, err := offloadOpen(ns)
	if err != nil {
		return nil, "", fmt.Errorf("%s of %s: %w", what, report.OffloadWhere(ns, dev), err)
	}
	return c, ns, nil
}

func newOffloadCoalesceCmd(e *env) *cobra.Command {
	var (
		netns        string
		out          *outputFlags
		allowHostNIC bool
	)
	cmd := &cobra.Command{
		Use:   "coalesce [--netns NS] DEV PARAM=VALUE...",
		Short: "Change interrupt coalescing (ethtool -C), then report what the device took",
		Long: `Coalesce sets interrupt coalescing parameters through ethtool netlink, like
ethtool -C, then re-reads the device and prints each parameter before and
after. Coalescing trades latency for fewer interrupts: rx-usecs=0 and
rx-frames=1 interrupt for every packet (lowest latency, most CPU);
adaptive-rx=on lets the driver choose. Parameter names are ethtool's
(rx-usecs, rx-frames, tx-usecs, tx-frames, adaptive-rx, adaptive-tx, ...);
on/off are accepted for the adaptive ones. Drivers without coalescing (veth)
answer "not supported". Without --netns the device is in latlab's own
namespace; that (or a --netns that is the same namespace, or PID 1's) is
refused unless --allow-host-nic is given.`,
		Example: `  latlab offload coalesce --netns lab1 eth0 rx-usecs=0 rx-frames=1
  latlab offload coalesce --netns lab1 eth0 adaptive-rx=on --json`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			output, err := out.result()
			if err != nil {
				return err
			}
			jsonOut := output.Format == report.FormatJSON
			dev := args[0]
			want := offload.Coalesce{}
			for _, a := range args[1:] {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return usagef("%q: want PARAM=VALUE, e.g. rx-usecs=50", a)
				}
				switch strings.ToLower(v) {
				case "on", "true", "yes":
					v = "1"
				case "off", "false", "no":
					v = "0"
				}
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return usagef("%q: %s wants a non-negative number (or on/off)", a, k)
				}
				want[k] = uint32(n)
			}
			c, ns, err := openToChange(netns, dev, allowHostNIC, "set coalescing")
			if err != nil {
				return err
			}
			defer c.Close()
			before, err := c.Coalesce(dev)
			if err != nil {
				return fmt.Errorf("read coalescing of %s: %w", report.OffloadWhere(ns, dev), err)
			}
			if err := c.SetCoalesce(dev, want); err != nil {
				if errors.Is(err, offload.ErrUnknownFeature) {
					return usageError{err}
				}
				return err
			}
			after, err := c.Coalesce(dev)
			if err != nil {
				return fmt.Errorf("re-read coalescing of %s: %w", report.OffloadWhere(ns, dev), err)
			}
			changes := report.CoalesceChanges(want, before, after)
			if err := report.WriteCoalesce(e.stdout, output, changes); err != nil || jsonOut {
				return err
			}
			if refused := report.CoalesceNotTaken(changes); len(refused) > 0 {
				return fmt.Errorf("set coalescing of %s: not taken: %s", report.OffloadWhere(ns, dev), strings.Join(refused, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&netns, "netns", "", "the device's network namespace (a name under /var/run/netns or a path)")
	out = addOutput(cmd, report.FormatTable, report.FormatJSON) // json: each parameter's before, requested and after
	cmd.RegisterFlagCompletionFunc("netns", netnsCompletion)
	f.BoolVar(&allowHostNIC, "allow-host-nic", false, "allow changing a device in latlab's own or the host's namespace (no --netns, or a --netns that is one of them)")
	return cmd
}
