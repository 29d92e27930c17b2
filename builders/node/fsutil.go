package node

import (
	"io/fs"
	"path/filepath"

	"github.com/layerpack/layerpack/internal/fsutil"
)

// copyTree copies src into dst (merged with what dst holds: existing files are
// replaced), keeping symlinks as symlinks. With skipNodeModules, node_modules
// folders below src are left out. With hardlink, files are linked rather than
// copied when the file system allows it (for trees nobody writes to afterwards).
func copyTree(src, dst string, skipNodeModules, hardlink bool) error {
	o := fsutil.TreeOptions{Hardlink: hardlink}
	if skipNodeModules {
		o.Skip = func(_ string, d fs.DirEntry) bool { return d.IsDir() && d.Name() == "node_modules" }
	}
	return fsutil.CopyTree(src, dst, o)
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
