package node

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/layerpack/layerpack/internal/fsutil"
)

// copyTree copies src into dst (merged with what dst holds: existing files are
// replaced), keeping symlinks as symlinks. With skipNodeModules, node_modules
// folders below src are left out. With hardlink, files are linked rather than
// copied when the file system allows it (for trees nobody writes to afterwards).
func copyTree(src, dst string, skipNodeModules, hardlink bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if skipNodeModules && d.IsDir() && rel != "." && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
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
			if hardlink && os.Link(p, target) == nil {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return fsutil.CopyFile(p, target, info.Mode().Perm())
		}
		return nil // sockets, devices: nothing a package needs
	})
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) (files int, bytes int64) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				files++
				bytes += info.Size()
			}
		}
		return nil
	})
	return files, bytes
}
