package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Labels latlab puts on what it creates.
const (
	// LabelRun marks every container and network of one run.
	LabelRun = "io.latlab.run"
	// LabelBinary marks latlab's image with the SHA-256 of the binary in it.
	LabelBinary = "io.latlab.binary"
	// ImageRepo is the repository of latlab's local image; the tag is
	// "bin-" + the first 16 hex digits of the binary's SHA-256.
	ImageRepo = "latlab"
)

// ErrUnreachable is wrapped by the errors of a daemon that could not be
// reached (no socket, nothing answering): what it ran may still exist, so
// a journal naming it must stay.
var ErrUnreachable = errors.New("docker daemon unreachable")

// Engine is a connection to one Docker daemon.
type Engine struct {
	c *client.Client
	// Host is the daemon address ("unix:///var/run/docker.sock").
	Host string
}

// Open connects to the daemon at host (a unix:// or tcp:// address; ""
// means $DOCKER_HOST, else the default socket) and checks it answers.
func Open(ctx context.Context, host string) (*Engine, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The ping negotiates the API version (the daemon's, capped at the
	// client's); a daemon older than client.MinAPIVersion is refused here.
	if _, err := c.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		if cerrdefs.IsInvalidArgument(err) {
			// It answered, with an API version this client cannot speak.
			return nil, fmt.Errorf("docker daemon at %s: %w", c.DaemonHost(), err)
		}
		return nil, fmt.Errorf("docker daemon at %s: %w: %w", c.DaemonHost(), ErrUnreachable, err)
	}
	return &Engine{c: c, Host: c.DaemonHost()}, nil
}

// Close releases the connection.
func (e *Engine) Close() error { return e.c.Close() }

// ResolveHost returns the daemon address Open(host) would connect to
// ("" means $DOCKER_HOST, else the default socket), without connecting.
func ResolveHost(host string) (string, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return "", fmt.Errorf("docker client for %q: %w", host, err)
	}
	defer c.Close()
	return c.DaemonHost(), nil
}

// Client is the underlying API client.
func (e *Engine) Client() *client.Client { return e.c }

// Network is a network to create.
type Network struct {
	Name   string
	Driver string // "bridge", "macvlan"
	// Subnet and Gateway (optional) for IPAM.
	Subnet, Gateway string
	// Options are driver options ("parent", "macvlan_mode", ...).
	Options map[string]string
	RunID   string
}

// CreateNetwork creates a labelled network and returns its ID.
func (e *Engine) CreateNetwork(ctx context.Context, n Network) (string, error) {
	opts := client.NetworkCreateOptions{Driver: n.Driver, Options: n.Options, Labels: map[string]string{LabelRun: n.RunID}}
	if n.Subnet != "" {
		subnet, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			return "", fmt.Errorf("create %s network %s: subnet: %w", n.Driver, n.Name, err)
		}
		cfg := network.IPAMConfig{Subnet: subnet}
		if n.Gateway != "" {
			if cfg.Gateway, err = netip.ParseAddr(n.Gateway); err != nil {
				return "", fmt.Errorf("create %s network %s: gateway: %w", n.Driver, n.Name, err)
			}
		}
		opts.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{cfg}}
	}
	r, err := e.c.NetworkCreate(ctx, n.Name, opts)
	if err != nil {
		return "", fmt.Errorf("create %s network %s: %w", n.Driver, n.Name, err)
	}
	return r.ID, nil
}

// Gateway returns the IPv4 gateway of a network ("bridge" is the default
// bridge, docker0).
func (e *Engine) Gateway(ctx context.Context, name string) (string, error) {
	r, err := e.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect network %s: %w", name, err)
	}
	for _, c := range r.Network.IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway.String(), nil
		}
	}
	return "", fmt.Errorf("network %s has no IPv4 gateway", name)
}

// Container is a container to run.
type Container struct {
	Name  string
	Image string
	Cmd   []string
	// Network is "host", "bridge" (the default bridge) or a network name.
	Network string
	// Publish maps a container port to the same host port number for TCP
	// and UDP (docker run -p HOSTPORT:PORT/tcp -p HOSTPORT:PORT/udp).
	Publish map[int]int
	// HostIP restricts published ports to one host address ("" = all).
	HostIP string
	RunID  string
}

// Running is a started container.
type Running struct {
	ID, Name string
	// Pid is the container's init process in the daemon's PID namespace.
	Pid int
	// IP is its IPv4 address on its network ("" on the host network).
	IP string
}

// NetNS is the path of the container's network namespace.
func (r *Running) NetNS() string { return fmt.Sprintf("/proc/%d/ns/net", r.Pid) }

// Run creates and starts a labelled container and waits until it runs.
func (e *Engine) Run(ctx context.Context, c Container) (*Running, error) {
	cfg := &container.Config{Image: c.Image, Cmd: c.Cmd, Labels: map[string]string{LabelRun: c.RunID}}
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(c.Network), AutoRemove: false}
	if len(c.Publish) > 0 {
		var hostIP netip.Addr // zero: every host address
		if c.HostIP != "" {
			var err error
			if hostIP, err = netip.ParseAddr(c.HostIP); err != nil {
				return nil, fmt.Errorf("create container %s: host IP: %w", c.Name, err)
			}
		}
		cfg.ExposedPorts = network.PortSet{}
		hc.PortBindings = network.PortMap{}
		for cport, hport := range c.Publish {
			for _, proto := range []string{"tcp", "udp"} {
				p, err := network.ParsePort(fmt.Sprintf("%d/%s", cport, proto))
				if err != nil {
					return nil, fmt.Errorf("create container %s: publish %d: %w", c.Name, cport, err)
				}
				cfg.ExposedPorts[p] = struct{}{}
				hc.PortBindings[p] = []network.PortBinding{{HostIP: hostIP, HostPort: fmt.Sprint(hport)}}
			}
		}
	}
	r, err := e.c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: c.Name})
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", c.Name, err)
	}
	if _, err := e.c.ContainerStart(ctx, r.ID, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.Name, err)
	}
	in, err := e.inspect(ctx, r.ID)
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", c.Name, err)
	}
	if in.State == nil || !in.State.Running || in.State.Pid == 0 {
		return nil, fmt.Errorf("container %s is not running: %s", c.Name, e.tail(ctx, r.ID))
	}
	run := &Running{ID: r.ID, Name: c.Name, Pid: in.State.Pid}
	if in.NetworkSettings != nil {
		for name, ep := range in.NetworkSettings.Networks {
			if ep != nil && ep.IPAddress.IsValid() && (name == c.Network || run.IP == "") {
				run.IP = ep.IPAddress.String()
			}
		}
	}
	return run, nil
}

// inspect returns a container's details.
func (e *Engine) inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	r, err := e.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return r.Container, err
}

// Alive reports whether the container still runs, with the end of its log
// when it does not.
func (e *Engine) Alive(ctx context.Context, id string) error {
	in, err := e.inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("inspect container %s: %w", id[:min(12, len(id))], err)
	}
	if in.State == nil || !in.State.Running {
		return fmt.Errorf("container %s exited: %s", strings.TrimPrefix(in.Name, "/"), e.tail(ctx, id))
	}
	return nil
}

// tail returns the last lines of a container's log.
func (e *Engine) tail(ctx context.Context, id string) string {
	rc, err := e.c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "5"})
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 4096))
	// Strip the 8-byte multiplexing headers.
	var out []string
	for len(b) >= 8 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out = append(out, strings.TrimSpace(string(b[:n])))
		b = b[n:]
	}
	return strings.Join(out, " | ")
}

// Cleanup removes (forcibly) every container and then every network
// labelled LabelRun=runID.
func (e *Engine) Cleanup(ctx context.Context, runID string) error {
	return e.CleanupLabel(ctx, LabelRun+"="+runID)
}

// CleanupLabel removes every container and network carrying label
// ("key=value" or "key"). Objects already gone are not errors.
func (e *Engine) CleanupLabel(ctx context.Context, label string) error {
	f := make(client.Filters).Add("label", label)
	var errs []error
	cs, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers %s: %w", label, err)
	}
	for _, c := range cs.Items {
		if err := e.removeContainer(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
		}
	}
	ns, err := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks %s: %w", label, err))...)
	}
	for _, n := range ns.Items {
		if _, err := e.c.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// removeWait bounds the wait for a removal already under way.
const removeWait = 30 * time.Second

// removeContainer removes a container forcibly (docker rm -f). A removal
// already in progress (409: the latlab that asked for it was killed, the
// daemon carries on) is waited for, so the networks after it can go too.
func (e *Engine) removeContainer(ctx context.Context, id string) error {
	_, err := e.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	if !cerrdefs.IsConflict(err) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, removeWait)
	defer cancel()
	for {
		if _, ierr := e.inspect(ctx, id); cerrdefs.IsNotFound(ierr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still there after %v)", err, removeWait)
		case <-time.After(100 * time.Millisecond):
		}
		// The daemon may have given up on its removal: ask again.
		if _, rerr := e.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); rerr == nil || cerrdefs.IsNotFound(rerr) {
			return nil
		}
	}
}

// Labelled counts the containers and networks carrying label.
func (e *Engine) Labelled(ctx context.Context, label string) (containers, networks int, err error) {
	f := make(client.Filters).Add("label", label)
	cs, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return 0, 0, fmt.Errorf("list containers %s: %w", label, err)
	}
	ns, err := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return 0, 0, fmt.Errorf("list networks %s: %w", label, err)
	}
	return len(cs.Items), len(ns.Items), nil
}

// ContainerNetNS resolves a container (name or ID) to the path of its
// network namespace, /proc/PID/ns/net, without touching the container.
func (e *Engine) ContainerNetNS(ctx context.Context, nameOrID string) (string, error) {
	in, err := e.inspect(ctx, nameOrID)
	if err != nil {
		return "", fmt.Errorf("inspect container %s: %w", nameOrID, err)
	}
	if in.State == nil || !in.State.Running || in.State.Pid == 0 {
		return "", fmt.Errorf("container %s is not running", nameOrID)
	}
	p := fmt.Sprintf("/proc/%d/ns/net", in.State.Pid)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("container %s: %w (is the daemon on another machine or in another PID namespace?)", nameOrID, err)
	}
	return p, nil
}

// CleanupLabel connects to host and removes everything labelled label.
// A daemon that cannot be reached — its socket gone, nothing answering —
// is an error wrapping ErrUnreachable, never "nothing to do": a stopped
// dockerd still has its containers and networks, and the journal that
// names them must stay until they are removed.
func CleanupLabel(ctx context.Context, host, label string) error {
	e, err := Open(ctx, host)
	if err != nil {
		return fmt.Errorf("remove objects labelled %s: %w", label, err)
	}
	defer e.Close()
	return e.CleanupLabel(ctx, label)
}

// Object is a container or network latlab created, found by its label.
type Object struct {
	Kind string // "container" or "network"
	ID   string
	Name string
	// Run is the run id of its LabelRun.
	Run string
}

// Objects lists every container and network carrying LabelRun (any run),
// containers first: what a label sweep finds even when the journal that
// named them is lost.
func (e *Engine) Objects(ctx context.Context) ([]Object, error) {
	f := make(client.Filters).Add("label", LabelRun)
	cs, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list labelled containers on %s: %w", e.Host, err)
	}
	var out []Object
	for _, c := range cs.Items {
		name := c.ID[:min(12, len(c.ID))]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Object{Kind: "container", ID: c.ID, Name: name, Run: c.Labels[LabelRun]})
	}
	ns, err := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list labelled networks on %s: %w", e.Host, err)
	}
	for _, n := range ns.Items {
		out = append(out, Object{Kind: "network", ID: n.ID, Name: n.Name, Run: n.Labels[LabelRun]})
	}
	return out, nil
}

// JournalKind is the kind of journal entry that names a run's label: its
// undo removes every container and network carrying it.
const JournalKind = "docker"
