package node

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// pruneStats is what prune removed.
type pruneStats struct {
	Files int
	Bytes int64
}

// pruneDirs are folders "safe" pruning removes inside a package (never a package
// root itself: a package may be named "test" or "docs").
var pruneDirs = map[string]bool{
	"test": true, "tests": true, "__tests__": true,
	"example": true, "examples": true,
	".github": true, "docs": true,
}

// isLicence reports whether a file name is a licence or notice, which pruning
// never removes (README.md can go; LICENSE.md, NOTICE.md, COPYING stay).
func isLicence(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"licen", "notice", "copying", "copyright", "patents"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// prunedFile reports whether "safe" pruning removes a file: Markdown (not
// licences), source maps, TypeScript sources, and declarations with types.
func prunedFile(name string, types bool) bool {
	if isLicence(name) {
		return false
	}
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".md"), strings.HasSuffix(n, ".markdown"), strings.HasSuffix(n, ".map"):
		return true
	case strings.HasSuffix(n, ".d.ts"), strings.HasSuffix(n, ".d.mts"), strings.HasSuffix(n, ".d.cts"):
		return types
	case strings.HasSuffix(n, ".ts"), strings.HasSuffix(n, ".mts"), strings.HasSuffix(n, ".cts"):
		return true
	}
	return false
}

// prune applies "safe" pruning to the packages of the tree at root. Folders in
// pruneDirs go, except licence files in them and except a folder that holds the
// package's main file or one of its bin files.
func prune(root string, pkgs []*pkg, types bool) (pruneStats, error) {
	var st pruneStats
	roots := map[string]*pkg{}
	for _, p := range pkgs {
		roots[p.Path] = p
	}
	remove := func(p string, d fs.DirEntry) error {
		info, err := d.Info()
		if err != nil {
			return err
		}
		st.Files++
		st.Bytes += info.Size()
		return os.Remove(p)
	}
	for _, p := range pkgs {
		dir := filepath.Join(root, filepath.FromSlash(p.Path))
		keep := map[string]bool{} // package-relative folders holding an entry point
		for _, f := range append([]string{p.Main}, p.Bins...) {
			if f == "" {
				continue
			}
			for d := path.Dir(path.Clean(f)); d != "." && d != "/" && !strings.HasPrefix(d, ".."); d = path.Dir(d) {
				keep[d] = true
			}
		}
		err := filepath.WalkDir(dir, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, fp)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				if rel == "." {
					return nil
				}
				if d.Name() == "node_modules" {
					return filepath.SkipDir // nested packages are pruned on their own
				}
				if pruneDirs[strings.ToLower(d.Name())] && !keep[rel] {
					if err := pruneAll(fp, remove); err != nil {
						return err
					}
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || !prunedFile(d.Name(), types) {
				return nil
			}
			return remove(fp, d)
		})
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// pruneAll removes everything under dir but licence files, then the folders
// left empty.
func pruneAll(dir string, remove func(string, fs.DirEntry) error) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || isLicence(d.Name()) {
			return nil
		}
		return remove(p, d)
	})
	if err != nil {
		return err
	}
	return removeEmptyDirs(dir)
}
