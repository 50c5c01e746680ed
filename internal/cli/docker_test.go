package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/docker/dockertest"
	"github.com/latlab/latlab/internal/experiment"
)

func runCmd(t *testing.T, cmd interface {
	SetArgs([]string)
	ExecuteContext(context.Context) error
}, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	return cmd.ExecuteContext(context.Background())
}

// TestDockerLabCommand runs `latlab docker lab` on a private dockerd,
// records it, and checks the JSON summary; then `latlab bench --netns
// CONTAINER` measures inside an existing container's namespace.
func TestDockerLabCommand(t *testing.T) {
	d := dockertest.Start(t)
	bin := dockertest.Latlab(t)
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr}
	db := filepath.Join(t.TempDir(), "latlab.db")
	jdir := t.TempDir()
	err := runCmd(t, newDockerCmd(e), "lab", "--db", db, "--host", d.Host, "--binary", bin, "--modes", "bridge,user-bridge,published",
		"--workloads", "tcp_rr,udp_rr", "--trials", "2", "--duration", "100ms", "--warmup", "20ms", "--journal-dir", jdir, "--json")
	if err != nil {
		t.Fatalf("docker lab: %v\nstderr: %s\n%s", err, stderr.String(), d.Log())
	}
	var sum experiment.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout.String())
	}
	got := map[string]bool{}
	for _, r := range sum.Results {
		if r.Status != "ok" || r.Failed > 0 || r.Trials != 2 {
			t.Errorf("%s %s: status %s, %d trials, %d failed: %s", r.Mode, r.Workload, r.Status, r.Trials, r.Failed, r.Reason)
		}
		got[r.Mode+"/"+r.Workload] = true
	}
	for _, m := range []string{"host", "bridge", "user-bridge", "published"} {
		for _, w := range []string{"tcp_rr", "udp_rr"} {
			if !got[m+"/"+w] {
				t.Errorf("no result for %s %s", m, w)
			}
		}
	}
	if !strings.Contains(stderr.String(), "recorded as run 1") {
		t.Errorf("run not recorded: %s", stderr.String())
	}
	st, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := experiment.LoadOutcome(context.Background(), st, 1)
	st.Close()
	if err != nil || len(o.Trials) != 4*2*2 {
		t.Fatalf("stored run: %v, %d trials", err, len(o.Trials))
	}

	// bench --netns CONTAINER: a server container on the default bridge;
	// the client enters its namespace and dials its loopback.
	ctx := context.Background()
	eng, err := docker.Open(ctx, d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if c, n, err := eng.Labelled(ctx, docker.LabelRun); err != nil || c+n != 0 {
		t.Errorf("after docker lab: %d labelled containers, %d networks (%v)", c, n, err)
	}
	img, err := eng.EnsureImage(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	id := "latlab-t-netns"
	t.Cleanup(func() { eng.Cleanup(context.Background(), id) })
	if _, err := eng.Run(ctx, docker.Container{Name: id, Image: img, Network: "bridge", RunID: id,
		Cmd: []string{"serve", "--listen", ":7707"}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_HOST", d.Host)
	for _, ref := range []string{id, "/proc/self/ns/net"} {
		stdout.Reset()
		target := "127.0.0.1"
		if ref != id {
			// The caller's namespace cannot see the container's loopback:
			// dial the container's bridge address from the daemon's side.
			ref = d.NetNSPath
			target = containerIP(t, eng, id)
		}
		var err error
		for try := 0; try < 20; try++ { // the server may still be starting
			stdout.Reset()
			if err = runCmd(t, newBenchCmd(e), "--netns", ref, "--target", target, "-d", "200ms", "--warmup", "0s", "--json"); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("bench --netns %s: %v", ref, err)
		}
		var res struct {
			Transactions int64 `json:"transactions"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.Transactions == 0 {
			t.Errorf("bench --netns %s: %v, %d transactions", ref, err, res.Transactions)
		}
	}
	if _, err := resolveNetNS(ctx, "latlab-no-such-container"); err == nil {
		t.Errorf("--netns of an unknown container resolved")
	}
}

func containerIP(t *testing.T, eng *docker.Engine, id string) string {
	r, err := eng.Client().ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Container.NetworkSettings.Networks["bridge"].IPAddress.String()
}
