package docker

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// BinaryPath is where the image holds latlab.
const BinaryPath = "/latlab"

// CheckStatic returns an error unless path is a statically linked ELF
// executable (no program interpreter), which is all the image holds.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: the image holds nothing but latlab, so build it with CGO_ENABLED=0 (go build -o latlab ./cmd/latlab) and pass --binary", path)
		}
	}
	return nil
}

// SelfBinary is the running latlab when it is static.
func SelfBinary() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	if err := CheckStatic(p); err != nil {
		return "", err
	}
	return p, nil
}

// ImageRef names the image for a binary hash.
func ImageRef(sum string) string { return ImageRepo + ":bin-" + sum[:16] }

// EnsureImage returns latlab's image for the static binary at path,
// importing it first when the daemon does not have it: a root filesystem
// of one file, /latlab, built in memory as a tar stream (docker import
// equivalent). Images are shared across runs, keyed by the binary's hash,
// and never carry a run label. After an import the older latlab images
// (other binaries) are pruned, so every rebuild does not leave one more
// behind; a failed prune does not fail the run (latlab cleanup --orphans
// tries again).
func (e *Engine) EnsureImage(ctx context.Context, path string) (string, error) {
	if err := CheckStatic(path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	sum := hex.EncodeToString(h[:])
	ref := ImageRef(sum)
	if _, err := e.c.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !client.IsErrNotFound(err) {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootFS(pw, b)) }()
	rc, err := e.c.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref, image.ImportOptions{
		Message: "latlab " + sum[:16],
		Changes: []string{"LABEL " + LabelBinary + "=" + sum, "ENTRYPOINT [\"" + BinaryPath + "\"]"},
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

// PruneImages removes latlab's images (those carrying LabelBinary) except
// keep (a reference; "" keeps the newest) and returns the references it
// removed. An image a container still uses (even a stopped one) is left:
// the daemon refuses to remove it without force, and latlab never forces.
// Only latlab's own tags are removed; an image someone tagged otherwise
// as well keeps that tag.
func (e *Engine) PruneImages(ctx context.Context, keep string) ([]string, error) {
	imgs, err := e.c.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelBinary))})
	if err != nil {
		return nil, fmt.Errorf("list latlab images: %w", err)
	}
	// Newest first; the first is kept when keep is "".
	slices.SortFunc(imgs, func(a, b image.Summary) int {
		if c := cmp.Compare(b.Created, a.Created); c != 0 {
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
			if _, err := e.c.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil {
				if errdefs.IsConflict(err) || client.IsErrNotFound(err) {
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

// writeRootFS writes the image's root filesystem: the latlab binary and
// the empty directories a container expects.
func writeRootFS(w io.Writer, bin []byte) error {
	tw := tar.NewWriter(w)
	now := time.Unix(0, 0)
	for _, d := range []string{"etc/", "tmp/", "proc/", "sys/", "dev/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: BinaryPath[1:], Mode: 0o755, Size: int64(len(bin)), ModTime: now}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	return tw.Close()
}
