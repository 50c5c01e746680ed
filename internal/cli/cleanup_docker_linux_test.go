package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/docker/dockertest"
	"github.com/latlab/latlab/internal/journal"
)

// Cleanup and Docker, on a private dockerd: a journal naming a daemon that
// cannot be reached stays (and cleanup says so); containers and networks
// carrying latlab's run label are found without any journal (listed, and
// removed with --orphans) unless a live journal owns them; a new latlab
// image prunes the older ones no container uses, and cleanup --orphans
// keeps only the newest.
func TestCleanupDockerLabelSweepAndImages(t *testing.T) {
	d := dockertest.Start(t)
	bin := dockertest.Latlab(t)
	ctx := context.Background()
	e, err := docker.Open(ctx, d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	img, err := e.EnsureImage(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	jdir := t.TempDir()
	leave := func(run string) {
		t.Helper()
		if _, err := e.CreateNetwork(ctx, docker.Network{Name: run + "-br", Driver: "bridge", RunID: run}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Run(ctx, docker.Container{Name: run + "-c", Image: img, Network: run + "-br", RunID: run,
			Cmd: []string{"serve", "--listen", "127.0.0.1:0"}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(run string) int {
		t.Helper()
		c, n, err := e.Labelled(ctx, docker.LabelRun+"="+run)
		if err != nil {
			t.Fatal(err)
		}
		return c + n
	}

	// 1. The engine cannot be reached: the journal stays, and cleanup
	// says why and fails. Pointed at another daemon, cleanup refuses the
	// journal (issue 37: it undoes only on the daemon it is configured
	// with) and keeps it too.
	goneHost := "unix://" + filepath.Join(t.TempDir(), "gone.sock")
	gone := journalDocker(t, jdir, "latlab-dgone0001", goneHost)
	code, out, stderr := runCLI(t, "cleanup", "--journal-dir", jdir, "--docker-host", d.Host)
	if code == ExitOK || !strings.Contains(out, "kept:") || !strings.Contains(out, "refusing docker entry for daemon") {
		t.Errorf("journal of another daemon: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "cleanup", "--journal-dir", jdir, "--docker-host", goneHost)
	if code == ExitOK || !strings.Contains(out, "kept:") || !strings.Contains(out, "could not be reached") {
		t.Errorf("unreachable engine: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := os.Stat(gone.Path()); err != nil {
		t.Fatalf("the journal of an unreachable engine was dropped: %v", err)
	}
	os.Remove(gone.Path())

	// 2. The journal was lost (tmpfs, reboot): the label sweep finds the
	// run's objects; a run whose journal is live is left alone.
	leave("latlab-dlost0001")
	leave("latlab-dlive0001")
	live, err := journal.Create(jdir, "latlab-dlive0001", "test")
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "cleanup", "--journal-dir", jdir, "--docker-host", d.Host)
	if code != ExitOK || !strings.Contains(out, "orphan docker container latlab-dlost0001-c") || !strings.Contains(out, "orphan docker network latlab-dlost0001-br") {
		t.Errorf("label sweep: exit %d\n%s%s", code, out, stderr)
	}
	if strings.Contains(out, "orphan docker container latlab-dlive0001") {
		t.Errorf("a live run's objects were listed as orphans:\n%s", out)
	}
	if n := count("latlab-dlost0001"); n != 2 {
		t.Errorf("without --orphans %d of 2 objects remain", n)
	}
	// The removal half of --orphans, Docker only: `cleanup --orphans`
	// itself would also delete every latlab-* namespace no journal here
	// lists, other tests' included.
	out, err = dockerOrphans(t, d.Host, jdir)
	if err != nil || !strings.Contains(out, "removed orphan docker containers and networks of run latlab-dlost0001") {
		t.Errorf("--orphans: %v\n%s", err, out)
	}
	if n := count("latlab-dlost0001"); n != 0 {
		t.Errorf("after --orphans %d objects of the lost run remain", n)
	}
	if n := count("latlab-dlive0001"); n != 2 {
		t.Errorf("--orphans removed a live run's objects: %d of 2 remain", n)
	}
	live.Remove()

	// 3. Images: another binary's image prunes the first (no container
	// uses it any more after the sweep of the live run's objects).
	if err := e.Cleanup(ctx, "latlab-dlive0001"); err != nil {
		t.Fatal(err)
	}
	bin2 := variant(t, bin)
	img2, err := e.EnsureImage(ctx, bin2)
	if err != nil || img2 == img {
		t.Fatalf("second image %q (first %q): %v", img2, img, err)
	}
	if !hasImage(t, e, img2) || hasImage(t, e, img) {
		t.Errorf("after importing %s: old %s present %v, new present %v; want the old one pruned", img2, img, hasImage(t, e, img), hasImage(t, e, img2))
	}
	// An image a container uses is never pruned.
	img = img2
	leave("latlab-duse00001")
	img3, err := e.EnsureImage(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	if !hasImage(t, e, img2) || !hasImage(t, e, img3) {
		t.Errorf("an image in use was pruned: %s %v, %s %v", img2, hasImage(t, e, img2), img3, hasImage(t, e, img3))
	}
	// cleanup --orphans removes the container, then keeps the newest image.
	out, err = dockerOrphans(t, d.Host, jdir)
	if err != nil || !strings.Contains(out, "removed old image "+img2) {
		t.Errorf("cleanup --orphans of images: %v\n%s", err, out)
	}
	if hasImage(t, e, img2) || !hasImage(t, e, img3) {
		t.Errorf("after cleanup --orphans: %s %v (want gone), %s %v (want kept, the newest)", img2, hasImage(t, e, img2), img3, hasImage(t, e, img3))
	}
}

// dockerOrphans runs what `latlab cleanup --orphans` does on the daemon at
// host (and nothing else: no namespace is touched), against the journals
// in jdir.
func dockerOrphans(t *testing.T, host, jdir string) (string, error) {
	t.Helper()
	ids, err := remainingJournals(jdir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_, err = cleanupDockerOrphans(context.Background(), &cleanupLog{w: &b}, host, true, ids, true)
	return b.String(), err
}

// journalDocker leaves a kept journal with a docker entry for run on host.
func journalDocker(t *testing.T, dir, run, host string) *journal.Journal {
	t.Helper()
	j, err := journal.Create(dir, run, "test")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]string{"host": host, "label": docker.LabelRun + "=" + run})
	if err := j.Record(journal.Entry{Kind: docker.JournalKind, Name: run, Data: data}); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkKept(); err != nil {
		t.Fatal(err)
	}
	return j
}

// variant copies the static binary with one byte appended: still a static
// ELF, another hash, so another image.
func variant(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "latlab")
	if err := os.WriteFile(p, append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func hasImage(t *testing.T, e *docker.Engine, ref string) bool {
	t.Helper()
	_, err := e.Client().ImageInspect(context.Background(), ref)
	return err == nil
}
