package netns_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/testutil"
)

// ino is the inode of a network namespace file: its identity (0 when it
// cannot be read, which no namespace has).
func ino(path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// threadIno is the namespace of the calling goroutine's thread.
func threadIno() uint64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return ino("/proc/thread-self/ns/net")
}

func TestPath(t *testing.T) {
	if got, want := netns.Path("latlab-x"), "/var/run/netns/latlab-x"; got != want {
		t.Fatalf("Path = %q, want %q", got, want)
	}
}

func TestDo(t *testing.T) {
	name, path := testutil.NewNetNS(t)
	if path != netns.Path(name) {
		t.Fatalf("NewNetNS path %q, netns.Path %q", path, netns.Path(name))
	}
	want, before := ino(path), threadIno()
	if want == 0 || before == 0 {
		t.Fatalf("cannot identify %s (%d) or the caller's namespace (%d)", path, want, before)
	}
	if want == before {
		t.Fatalf("fresh namespace %s is the caller's", name)
	}
	var inside uint64
	var ifaces []string
	if err := netns.Do(path, func() error {
		inside = ino("/proc/thread-self/ns/net")
		is, err := net.Interfaces()
		for _, i := range is {
			ifaces = append(ifaces, i.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside != want {
		t.Errorf("fn ran in namespace %d, want %s's %d", inside, name, want)
	}
	if strings.Join(ifaces, ",") != "lo" {
		t.Errorf("interfaces inside %s: %v, want only lo", name, ifaces)
	}
	// The caller never moves, and no thread left in the runtime's pool is
	// in the lab namespace: many unlocked goroutines all see the caller's.
	if got := threadIno(); got != before {
		t.Errorf("caller's namespace changed: %d, was %d", got, before)
	}
	for range 8 {
		done := make(chan uint64)
		go func() { done <- threadIno() }()
		if got := <-done; got != before {
			t.Fatalf("an unlocked goroutine runs in namespace %d (the lab's is %d, the caller's %d)", got, want, before)
		}
	}
}

func TestDoEmptyPathRunsHere(t *testing.T) {
	before := threadIno()
	var got uint64
	if err := netns.Do("", func() error { got = threadIno(); return nil }); err != nil {
		t.Fatal(err)
	}
	if got != before {
		t.Errorf(`Do("") ran in namespace %d, want the caller's %d`, got, before)
	}
}

func TestDoErrors(t *testing.T) {
	_, path := testutil.NewNetNS(t)
	errFn := errors.New("from fn")
	if err := netns.Do(path, func() error { return errFn }); !errors.Is(err, errFn) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	missing := netns.Path(testutil.UniqueName("latlab-t-none-"))
	err := netns.Do(missing, func() error { t.Error("fn ran for a missing namespace"); return nil })
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "open netns "+missing) {
		t.Errorf("Do(missing) = %v, want open netns %s: ...not exist", err, missing)
	}
	// A file that is not a namespace: opened, refused by setns.
	f, err := os.CreateTemp(t.TempDir(), "notns")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = netns.Do(f.Name(), func() error { t.Error("fn ran outside any namespace"); return nil })
	if err == nil || !strings.Contains(err.Error(), "enter netns "+f.Name()) {
		t.Errorf("Do(regular file) = %v, want enter netns %s: ...", err, f.Name())
	}
}

func TestEnter(t *testing.T) {
	_, path := testutil.NewNetNS(t)
	want := ino(path)
	done := make(chan error, 1)
	var got uint64
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := netns.Enter(path); err != nil {
			done <- err
			return
		}
		got = ino("/proc/thread-self/ns/net")
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got != want || want == 0 {
		t.Errorf("Enter: thread in namespace %d, want %d", got, want)
	}
}
