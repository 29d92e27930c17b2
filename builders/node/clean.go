package node

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// managerFiles are what package managers write into node_modules for their own
// bookkeeping: not needed to load anything, and several hold local paths or times.
var managerFiles = map[string]bool{
	".package-lock.json":    true, // npm's hidden lockfile
	".yarn-integrity":       true, // yarn 1
	".yarn-state.yml":       true, // yarn berry's node-modules linker
	".modules.yaml":         true, // pnpm: absolute store path
	".pnpm-debug.log":       true,
	".cache":                true, // tools' caches (babel, esbuild, ...)
	".staging":              true, // an interrupted npm install
	".pnpm-workspace-state": true,
}

// cleanTree removes package-manager files from every node_modules folder,
// symlinks that point outside the tree or nowhere, and what native builds leave behind
// besides their binaries. It returns what it removed, as slash paths, sorted.
func cleanTree(root string, pkgs []*pkg) ([]string, error) {
	var removed []string
	rm := func(rel string) error {
		removed = append(removed, rel)
		return os.RemoveAll(filepath.Join(root, filepath.FromSlash(rel)))
	}
	// Bookkeeping files in every node_modules folder.
	dirs := []string{"node_modules"}
	for _, p := range pkgs {
		dirs = append(dirs, p.Path+"/node_modules")
	}
	for _, nm := range dirs {
		ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(nm)))
		if err != nil {
			continue
		}
		for _, e := range ents {
			n := e.Name()
			if managerFiles[n] || strings.HasPrefix(n, ".pnpm-workspace-state") {
				if err := rm(nm + "/" + n); err != nil {
					return nil, err
				}
			}
		}
	}
	// Native build leftovers.
	for _, p := range pkgs {
		if !p.HasGyp {
			continue
		}
		r, err := cleanBuildOutput(root, p.Path)
		if err != nil {
			return nil, err
		}
		removed = append(removed, r...)
	}
	// Symlinks that cannot be in a layer (absolute, or leaving the tree).
	err := filepath.WalkDir(filepath.Join(root, "node_modules"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		joined := path.Join(path.Dir(filepath.ToSlash(rel)), target)
		if path.IsAbs(target) || !strings.HasPrefix(joined, "node_modules/") {
			return rm(filepath.ToSlash(rel))
		}
		if _, err := os.Stat(p); err != nil {
			return rm(filepath.ToSlash(rel)) // dangling: its package was left out
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	sort.Strings(removed)
	return removed, nil
}

// cleanBuildOutput keeps, of a package's native build, only what loads at run
// time. node-gyp writes build/ (config.gypi with absolute paths, Makefiles,
// object files, a node_gyp_bins link to python) and node-pre-gyp build-tmp-*/
// beside the binary it places; only the shared objects (.node and .so files)
// outside obj.target and .deps are kept. A build/ folder without config.gypi was
// not made by node-gyp and is left alone.
func cleanBuildOutput(root, pkgPath string) ([]string, error) {
	dir := filepath.Join(root, filepath.FromSlash(pkgPath))
	var removed []string
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "build-tmp-") {
			removed = append(removed, pkgPath+"/"+e.Name())
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	build := filepath.Join(dir, "build")
	if _, err := os.Stat(filepath.Join(build, "config.gypi")); err != nil {
		return removed, nil
	}
	err = filepath.WalkDir(build, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		slash := filepath.ToSlash(rel)
		if d.IsDir() {
			if n := d.Name(); n == "obj.target" || n == ".deps" || n == "obj" || n == "node_gyp_bins" {
				removed = append(removed, pkgPath+"/"+slash)
				if err := os.RemoveAll(p); err != nil {
					return err
				}
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && isSharedObject(p) {
			return nil
		}
		removed = append(removed, pkgPath+"/"+slash)
		return os.Remove(p)
	})
	if err != nil {
		return nil, err
	}
	return removed, removeEmptyDirs(build)
}

// isSharedObject reports whether a file is an ELF shared object (what .node
// addons and their .so libraries are).
func isSharedObject(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, []byte(elf.ELFMAG)) {
		return false
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return false
	}
	return ef.Type == elf.ET_DYN
}

// removeEmptyDirs removes the empty folders under dir, dir included.
func removeEmptyDirs(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeEmptyDirs(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if ents, err = os.ReadDir(dir); err == nil && len(ents) == 0 {
		return os.Remove(dir)
	}
	return nil
}

// dropForeign removes the packages whose os, cpu or libc fields exclude the
// target (npm before 10.1, yarn 1 with --ignore-platform and npm 9 in a build
// image install them all). It returns the removed paths and the packages left.
func dropForeign(root string, pkgs []*pkg, t platform) ([]string, []*pkg, error) {
	var removed []string
	var kept []*pkg
	for _, p := range pkgs {
		gone := false
		for _, r := range removed {
			if strings.HasPrefix(p.Path, r+"/") {
				gone = true
			}
		}
		if gone {
			continue
		}
		if t.accepts(p.OS, p.CPU, p.Libc) {
			kept = append(kept, p)
			continue
		}
		removed = append(removed, p.Path)
		if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(p.Path))); err != nil {
			return nil, nil, err
		}
	}
	return removed, kept, nil
}
