package docker

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
)

// BinaryPath is where the image holds latlab.
const BinaryPath = "/latlab"

// CheckBinary returns an error unless path is an ELF executable the image
// can hold: a static one, or a dynamically linked one whose program
// interpreter and shared libraries are all found on this machine (see
// RootFiles).
func CheckBinary(path string) error {
	_, err := RootFiles(path)
	return err
}

// SelfBinary is the running latlab, when CheckBinary accepts it.
func SelfBinary() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find latlab's own executable: %w", err)
	}
	if err := CheckBinary(p); err != nil {
		return "", err
	}
	return p, nil
}

// ImageRef names the image for a binary hash.
func ImageRef(sum string) string { return ImageRepo + ":bin-" + sum[:16] }

// imageFile is one regular file of the image's root filesystem.
type imageFile struct {
	path string // absolute, in the image
	data []byte
	lib  bool // a shared library, found through LD_LIBRARY_PATH
}

// readRootFS reads what the image for the binary at path holds (RootFiles)
// and returns it with its hash: the SHA-256 of the binary alone when it is
// static, else of the binary followed by every bundled file's path and
// content, so a changed library makes another image.
func readRootFS(bin string) ([]imageFile, string, error) {
	rfs, err := RootFiles(bin)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	files := make([]imageFile, 0, len(rfs))
	for k, f := range rfs {
		b, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, "", fmt.Errorf("read %s for the image: %w", f.Source, err)
		}
		if k > 0 {
			fmt.Fprintf(h, "\x00%s\x00%d\x00", f.Path, len(b))
		}
		h.Write(b)
		files = append(files, imageFile{path: f.Path, data: b, lib: f.Kind == KindLibrary})
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// EnsureImage returns latlab's image for the binary at path, importing it
// first when the daemon does not have it: a root filesystem built in
// memory as a tar stream (docker import equivalent) holding the binary as
// /latlab and, for a dynamically linked binary, its program interpreter
// and shared libraries at the paths they have here (RootFiles), with
// LD_LIBRARY_PATH naming their directories. Images are shared across
// runs, keyed by the hash of what they hold, and never carry a run label.
// After an import the older latlab images (other binaries) are pruned, so
// every rebuild does not leave one more behind; a failed prune does not
// fail the run (latlab cleanup --orphans tries again).
func (e *Engine) EnsureImage(ctx context.Context, path string) (string, error) {
	files, sum, err := readRootFS(path)
	if err != nil {
		return "", err
	}
	ref := ImageRef(sum)
	if _, err := e.c.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	changes := []string{"LABEL " + LabelBinary + "=" + sum, "ENTRYPOINT [\"" + BinaryPath + "\"]"}
	if dirs := libDirs(files); len(dirs) > 0 {
		// The image has no /etc/ld.so.cache: name where the libraries are.
		changes = append(changes, "ENV LD_LIBRARY_PATH="+strings.Join(dirs, ":"))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootFS(pw, files)) }()
	rc, err := e.c.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref, client.ImageImportOptions{
		Message: "latlab " + sum[:16],
		Changes: changes,
	})
	if err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("import image %s: %w", ref, err)
	}
	defer rc.Close()
	// The import's progress stream ends when the image is stored.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return "", fmt.Errorf("import image %s: %w", ref, err)
	}
	if _, err := e.c.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("import image %s: not there afterwards: %w", ref, err)
	}
	e.PruneImages(ctx, ref)
	return ref, nil
}

// libDirs lists, in order of first appearance, the directories of the
// shared libraries among files (the interpreter is loaded by its path).
func libDirs(files []imageFile) []string {
	var dirs []string
	for _, f := range files {
		if !f.lib {
			continue
		}
		if d := path.Dir(f.path); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// PruneImages removes latlab's images (those carrying LabelBinary) except
// keep (a reference; "" keeps the newest) and returns the references it
// removed. An image a container still uses (even a stopped one) is left:
// the daemon refuses to remove it without force, and latlab never forces.
// Only latlab's own tags are removed; an image someone tagged otherwise
// as well keeps that tag.
func (e *Engine) PruneImages(ctx context.Context, keep string) ([]string, error) {
	res, err := e.c.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", LabelBinary)})
	if err != nil {
		return nil, fmt.Errorf("list latlab images: %w", err)
	}
	imgs := res.Items
	// Newest first; the first is kept when keep is "". The list gives
	// whole seconds, so two images imported in one second would tie:
	// order by the creation time inspect gives (nanoseconds).
	created := make(map[string]time.Time, len(imgs))
	for _, im := range imgs {
		created[im.ID] = time.Unix(im.Created, 0)
		if ins, err := e.c.ImageInspect(ctx, im.ID); err == nil {
			if t, err := time.Parse(time.RFC3339Nano, ins.Created); err == nil {
				created[im.ID] = t
			}
		}
	}
	slices.SortFunc(imgs, func(a, b image.Summary) int {
		if c := created[b.ID].Compare(created[a.ID]); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var removed []string
	var errs []error
	for k, im := range imgs {
		ours := slices.DeleteFunc(slices.Clone(im.RepoTags), func(t string) bool { return !strings.HasPrefix(t, ImageRepo+":bin-") })
		if (keep == "" && k == 0) || slices.Contains(ours, keep) {
			continue
		}
		for _, ref := range ours {
			if _, err := e.c.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
				if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
					continue // in use by a container, or gone already
				}
				errs = append(errs, fmt.Errorf("remove image %s: %w", ref, err))
				continue
			}
			removed = append(removed, ref)
		}
	}
	return removed, errors.Join(errs...)
}

// writeRootFS writes the image's root filesystem: the empty directories
// a container expects, then every file (the first is the binary), each
// after the directories above it.
func writeRootFS(w io.Writer, files []imageFile) error {
	tw := tar.NewWriter(w)
	now := time.Unix(0, 0)
	dirs := []string{"etc/", "tmp/", "proc/", "sys/", "dev/"}
	for _, f := range files {
		for d := path.Dir(f.path); d != "/" && d != "."; d = path.Dir(d) {
			if name := d[1:] + "/"; !slices.Contains(dirs, name) {
				dirs = append(dirs, name)
			}
		}
	}
	// Parents before children: a shorter prefix sorts first.
	slices.Sort(dirs)
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: now}); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.path[1:], Mode: 0o755, Size: int64(len(f.data)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}
