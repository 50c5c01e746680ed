package chaos_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/docker/dockertest"
	"github.com/latlab/latlab/internal/topo"
)

// TestKill9DockerLab kills `latlab docker lab` with SIGKILL at random
// moments (a private dockerd in its own namespace, two container modes)
// and after every kill runs `latlab cleanup --docker-host` on the run's
// journal directory: no latlab container or network may be left on the
// engine, no journal, no namespace, and the host's links and nft tables
// are as they were. The first run is not killed: it builds the image and
// times a whole run, so the kills spread over one; kills go on until three
// caught containers or networks up.
func TestKill9DockerLab(t *testing.T) {
	d := dockertest.Start(t)
	bin := dockertest.Latlab(t)
	rng, _, jdir, db := setup(t)
	hostBefore := hostState(t)
	ctx := context.Background()
	eng, err := docker.Open(ctx, d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	args := []string{"docker", "lab", "--host", d.Host, "--binary", bin, "--modes", "bridge,user-bridge",
		"--workloads", "tcp_rr", "--trials", "2", "-d", "60ms", "--warmup", "0s", "--cpu", "0", "--server-cpu", "0",
		"--journal-dir", jdir, "--db", db, "-q"}
	start := time.Now()
	if code, out := run(t, bin, args...); code != 0 {
		t.Fatalf("docker lab (not killed): exit %d\n%s\n%s", code, out, d.Log())
	}
	whole := time.Since(start)
	t.Logf("a whole docker lab run takes %v", whole.Round(time.Millisecond))
	check := func(what, tail string) {
		t.Helper()
		code, out := run(t, bin, "cleanup", "--journal-dir", jdir, "--docker-host", d.Host)
		if code != 0 || strings.Contains(out, "kept:") {
			t.Fatalf("%s: cleanup exit %d:\n%s\nrun's output:\n%s", what, code, out, tail)
		}
		if c, n, err := eng.Labelled(ctx, docker.LabelRun); err != nil || c+n != 0 {
			t.Errorf("%s: %d latlab containers and %d networks left (%v)", what, c, n, err)
		}
		if left, _ := filepath.Glob(filepath.Join(jdir, "*.journal")); len(left) > 0 {
			t.Errorf("%s: journals left after cleanup: %v", what, left)
		}
		if now := hostState(t); !reflect.DeepEqual(now, hostBefore) {
			t.Errorf("%s: host namespace changed:\nbefore %v\nafter  %v", what, hostBefore, now)
		}
		checkStore(t, what, db)
	}
	check("the whole run", "")

	// Kill until three kills caught latlab's objects up (at most 20).
	const maxKills, wantUp = 20, 3
	kills, up := 0, 0
	for i := 0; i < maxKills && up < wantUp; i++ {
		kills++
		delay := time.Duration(rng.Int64N(int64(whole + whole/10)))
		ids, exited, tail := killAt(t, bin, args, jdir, delay, func([]string) {
			if c, n, err := eng.Labelled(ctx, docker.LabelRun); err == nil && c+n > 0 {
				up++
			}
		})
		check(fmt.Sprintf("#%d killed at %v (finished first %v)", i, delay.Round(time.Millisecond), exited), tail)
		for _, p := range ids {
			if left := topo.NetNSNames(p + "-"); len(left) > 0 {
				t.Errorf("#%d: namespaces of %s left after cleanup: %v", i, p, left)
			}
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
			break
		}
	}
	t.Logf("%d kills, %d with latlab containers or networks up", kills, up)
	if up == 0 {
		t.Errorf("no kill of %d caught a container or network up: the test proves nothing", kills)
	}
}
