// Package fsutil has the file helpers several packages need.
package fsutil

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CopyFile copies src to dst (replacing it) and gives dst exactly perm, whatever
// the umask; the file is writable by its owner while it is being written.
func CopyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}

// TreeOptions say how CopyTree copies.
type TreeOptions struct {
	// Skip leaves out a path (relative to src, slash-separated) and, for a
	// folder, everything below it.
	Skip func(rel string, d fs.DirEntry) bool
	// Hardlink links files instead of copying them when the file system allows
	// it: for trees nobody writes to afterwards.
	Hardlink bool
	// DirModes gives folders their source modes (else 0755).
	DirModes bool
	// Strict makes a special file (socket, device, FIFO) an error; else it is
	// left out (nothing a package needs).
	Strict bool
	// FileMode, when not nil, decides the mode of each copied file from its own.
	FileMode func(fs.FileMode) fs.FileMode
}

// CopyTree copies the content of the folder src into dst (created if missing,
// merged with what it holds: existing files and links are replaced, never written
// through), keeping symlinks as symlinks.
func CopyTree(src, dst string, o TreeOptions) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && o.Skip != nil && o.Skip(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if o.DirModes {
				info, err := d.Info()
				if err != nil {
					return err
				}
				return os.Chmod(target, info.Mode().Perm())
			}
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(target); err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			if err := os.RemoveAll(target); err != nil {
				return err
			}
			if o.Hardlink && os.Link(p, target) == nil {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := info.Mode().Perm()
			if o.FileMode != nil {
				mode = o.FileMode(mode)
			}
			return CopyFile(p, target, mode)
		}
		if o.Strict {
			return fmt.Errorf("%s: unsupported file type %s", p, d.Type())
		}
		return nil
	})
}
