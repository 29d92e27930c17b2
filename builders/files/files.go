// Package files is the builder for [[layer.NAME.files]]: it copies local files and
// folders into the layer, with an optional forced mode. It never needs a container.
package files

import (
	"github.com/layerpack/layerpack/internal/fsutil"

	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
)

// Builder copies [[files]] entries.
type Builder struct{}

func New() Builder { return Builder{} }

func (Builder) Name() string                                    { return "files" }
func (Builder) Applies(l *config.Layer) bool                    { return len(l.Files) > 0 }
func (Builder) NeedsEngine(*config.Layer, builders.Target) bool { return false }

func (Builder) Inputs(l *config.Layer, _ builders.Target) ([]builders.Input, error) {
	var in []builders.Input
	for i, f := range l.Files {
		in = append(in, builders.Input{Name: fmt.Sprintf("files[%d]:%s", i, f.Src), Path: f.AbsSrc})
	}
	return in, nil
}

func (Builder) Steps(l *config.Layer, _ builders.Target) []string {
	var s []string
	for _, f := range l.Files {
		dest := f.Dest
		if dest == "" {
			dest = "."
		}
		line := fmt.Sprintf("copy %s -> %s", f.Src, dest)
		if f.Mode != "" {
			line += " (mode " + f.Mode + ")"
		}
		s = append(s, line)
	}
	return s
}

func (Builder) Build(ctx context.Context, j *builders.Job) error {
	for i, f := range j.Layer.Files {
		var mode fs.FileMode
		if f.Mode != "" {
			m, err := strconv.ParseUint(f.Mode, 8, 32)
			if err != nil {
				return fmt.Errorf("layer.%s.files[%d].mode: %w", j.Layer.Name, i, err)
			}
			mode = fs.FileMode(m)
		}
		dest := filepath.Join(j.Stage, filepath.FromSlash(f.Dest))
		if err := Copy(ctx, f.AbsSrc, dest, mode); err != nil {
			return fmt.Errorf("layer.%s.files[%d] (%s): %w", j.Layer.Name, i, f.Src, err)
		}
	}
	return nil
}

// Copy copies src into the folder dest: a folder's content goes into dest, a file goes
// to dest/<name>. Symlinks are kept when they point inside src and refused otherwise,
// since a layer cannot carry a link to something outside it. When mode is not zero it
// is forced on every regular file.
func Copy(ctx context.Context, src, dest string, mode fs.FileMode) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		return copyFile(src, filepath.Join(dest, filepath.Base(src)), st.Mode(), mode)
	}
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		target := filepath.Join(dest, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			resolved := link
			if !filepath.IsAbs(link) {
				resolved = filepath.Join(filepath.Dir(p), link)
			}
			if r, err := filepath.Rel(root, resolved); filepath.IsAbs(link) || err != nil || r == ".." || strings.HasPrefix(r, "../") {
				return fmt.Errorf("%s is a symlink to %s, outside %s", rel, link, src)
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode(), mode)
		}
		return fmt.Errorf("%s is not a regular file, folder or symlink", rel)
	})
}

func copyFile(src, dst string, have, force fs.FileMode) error {
	// A hard link costs nothing for large trees. It is safe because the staged tree
	// is only read from here on (files is the last builder) and the zip never
	// depends on the link's mtime or owner; a forced mode needs a real copy.
	if force == 0 {
		if err := os.Link(src, dst); err == nil {
			return nil
		}
	}
	perm := have.Perm()
	if force != 0 {
		perm = force
	}
	return fsutil.CopyFile(src, dst, perm)
}
