package microvm

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// cpioWriter writes an initramfs archive in the "newc" format the kernel
// unpacks (SVR4 with no CRC: "070701" headers, names and data padded to 4
// bytes). Archives concatenate: the kernel unpacks one after the other, so
// a cached base and a per-run part are written separately.
//
// Equivalent to: find . | cpio -o -H newc
type cpioWriter struct {
	w   io.Writer
	ino uint32
	off int64
	err error
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.off += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.off % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// entry writes one file, directory or symlink. mode carries the file type
// bits (S_IFREG 0100000, S_IFDIR 040000, S_IFLNK 0120000).
func (c *cpioWriter) entry(name string, mode uint32, data []byte) {
	c.ino++
	nlink := 1
	if mode&0170000 == 040000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) dir(name string)             { c.entry(name, 040755, nil) }
func (c *cpioWriter) file(name string, b []byte)  { c.entry(name, 0100755, b) }
func (c *cpioWriter) symlink(name, target string) { c.entry(name, 0120777, []byte(target)) }
func (c *cpioWriter) close() error                { c.entry("TRAILER!!!", 0, nil); return c.err }

// tree adds every file under root, named relative to it (with prefix),
// directories before what they hold.
func (c *cpioWriter) tree(root, prefix string) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk %s: %w", root, err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		name := strings.TrimPrefix(filepath.Join(prefix, strings.TrimPrefix(p, root)), "/")
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			c.dir(name)
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			c.symlink(name, t)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			c.file(name, b)
		}
	}
	return c.err
}
