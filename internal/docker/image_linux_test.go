package docker_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/docker/dockertest"
)

// TestDockerImageDynamicBinary builds latlab with cgo, as a plain `go
// build` does where a C compiler is installed, makes the image of it on a
// private dockerd and runs `latlab version` in a container: the bundled
// interpreter and libraries must be enough for it to run.
func TestDockerImageDynamicBinary(t *testing.T) {
	d := dockertest.Start(t)
	bin := dockertest.LatlabCgo(t)
	files, err := docker.RootFiles(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs := 0
	for _, f := range files {
		if f.Kind == docker.KindLibrary {
			libs++
		}
	}
	if libs == 0 || files[1].Kind != docker.KindInterpreter {
		t.Fatalf("RootFiles of a cgo build: %+v, want an interpreter and libraries", files)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := docker.Open(ctx, d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	img, err := e.EnsureImage(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := e.EnsureImage(ctx, bin); err != nil || again != img {
		t.Fatalf("EnsureImage again: %q %v, want the same %q", again, err, img)
	}
	const run = "latlab-t-dynimg"
	t.Cleanup(func() {
		if err := e.Cleanup(context.Background(), run); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	c := e.Client()
	cr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: run,
		Config:     &container.Config{Image: img, Cmd: []string{"version"}, Labels: map[string]string{docker.LabelRun: run}},
		HostConfig: &container.HostConfig{NetworkMode: "none"}})
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	if _, err := c.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start container: %v\n%s", err, d.Log())
	}
	w := c.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case r := <-w.Result:
		code = r.StatusCode
	case err := <-w.Error:
		t.Fatalf("wait for container: %v", err)
	}
	rc, err := c.ContainerLogs(ctx, cr.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("container logs: %v", err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if code != 0 || !strings.Contains(string(out), "latlab ") || !strings.Contains(string(out), "protocol") {
		t.Fatalf("latlab version in the image of a cgo build: exit %d, output %q", code, out)
	}
}
