package python

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/lambda"
)

// tree is the installed tree of one target.
type tree struct {
	target Target
	dir    string
}

// placed is a folder of the layer holding Python packages.
type placed struct {
	dir      string   // host folder
	rel      string   // its path in the layer: "python" or "python/lib/python3.12/site-packages"
	versions []string // the Python versions that import from it
}

// layOut moves the trees into out (the future /opt).
//
// One Python version: the tree becomes python/lib/pythonX.Y/site-packages (or
// python/ with layout = "flat").
//
// Several versions (python3.11 and python3.12 runtimes): a distribution whose
// install is byte-for-byte the same for every version (pure Python, or one abi3
// wheel, at the same version) goes once into python/, which every Python runtime
// searches; the others stay in each version's site-packages folder, so a compiled
// package loads on each runtime. A shared distribution must not write into a
// top-level folder that a per-version one also writes into (a regular package split
// over two folders would not import), so such distributions stay per version too.
// layout = "flat" puts everything in python/ and so fails when some distribution
// differs between the versions.
func layOut(trees []tree, lay, out string) ([]placed, error) {
	if len(trees) == 1 {
		t := trees[0]
		rel := lambda.SitePackages(t.target.Version)
		if lay == "flat" {
			rel = "python"
		}
		dest := filepath.Join(out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return nil, err
		}
		if err := os.Rename(t.dir, dest); err != nil {
			return nil, err
		}
		return []placed{{dir: dest, rel: rel, versions: []string{t.target.Version}}}, nil
	}
	all := make([][]*Dist, len(trees))
	for i, t := range trees {
		ds, err := ReadTree(t.dir)
		if err != nil {
			return nil, err
		}
		all[i] = ds
	}
	ids := make([]map[string]string, len(trees))
	for i, ds := range all {
		ids[i] = map[string]string{}
		for _, d := range ds {
			ids[i][d.Key()] = distIdentity(d)
		}
	}
	shared := map[string]bool{}
	for k, id := range ids[0] {
		same := true
		for _, m := range ids[1:] {
			if m[k] != id {
				same = false
				break
			}
		}
		shared[k] = same
	}
	// Top-level names written by per-version distributions, or by nobody (files no
	// RECORD lists).
	perVersionTops := map[string]bool{}
	var differing []string
	for i, ds := range all {
		owned := map[string]bool{}
		for _, d := range ds {
			owned[d.DistInfo] = true
			for _, top := range d.TopLevel() {
				owned[top] = true
				if !shared[d.Key()] && top != "bin" {
					perVersionTops[top] = true
				}
			}
			if !shared[d.Key()] {
				differing = append(differing, d.Name)
			}
		}
		ents, _ := os.ReadDir(trees[i].dir)
		for _, e := range ents {
			if !owned[e.Name()] {
				perVersionTops[e.Name()] = true
			}
		}
	}
	for k := range shared {
		if !shared[k] {
			continue
		}
		var d *Dist
		for _, x := range all[0] {
			if x.Key() == k {
				d = x
			}
		}
		for _, top := range d.TopLevel() {
			if perVersionTops[top] {
				shared[k] = false
				differing = append(differing, d.Name)
				break
			}
		}
	}
	differing = dedupe(differing)
	sort.Strings(differing)
	if lay == "flat" && (len(differing) > 0 || len(perVersionTops) > 0) {
		what := strings.Join(differing, ", ")
		if what == "" {
			what = "some files"
		}
		var vs []string
		for _, t := range trees {
			vs = append(vs, t.target.Version)
		}
		return nil, fmt.Errorf("layout = \"flat\" puts every package in python/, but Python %s need different installs of %s; use layout = \"site-packages\" (one folder per version)", strings.Join(vs, " and "), what)
	}
	common := filepath.Join(out, "python")
	var res []placed
	var versions []string
	for _, t := range trees {
		versions = append(versions, t.target.Version)
	}
	for _, d := range all[0] {
		if !shared[d.Key()] {
			continue
		}
		if err := moveDist(trees[0].dir, common, d); err != nil {
			return nil, err
		}
		for i := 1; i < len(trees); i++ {
			for _, x := range all[i] {
				if x.Key() == d.Key() {
					if _, err := RemoveDist(trees[i].dir, x); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if _, err := os.Stat(common); err == nil {
		res = append(res, placed{dir: common, rel: "python", versions: versions})
	}
	for _, t := range trees {
		ents, err := os.ReadDir(t.dir)
		if err != nil {
			return nil, err
		}
		if len(ents) == 0 {
			continue
		}
		rel := lambda.SitePackages(t.target.Version)
		dest := filepath.Join(out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return nil, err
		}
		if err := os.Rename(t.dir, dest); err != nil {
			return nil, err
		}
		res = append(res, placed{dir: dest, rel: rel, versions: []string{t.target.Version}})
	}
	return res, nil
}

// moveDist moves a distribution's files and dist-info from one tree to another.
func moveDist(from, to string, d *Dist) error {
	dirs := map[string]bool{}
	for _, f := range d.Files {
		src := filepath.Join(from, filepath.FromSlash(f.Path))
		dst := filepath.Join(to, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(src, dst); err != nil && !os.IsNotExist(err) {
			return err
		}
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			dirs[dir] = true
		}
	}
	if err := os.MkdirAll(filepath.Join(to, d.DistInfo), 0o755); err != nil {
		return err
	}
	if err := mergeTree(filepath.Join(from, d.DistInfo), filepath.Join(to, d.DistInfo)); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(from, d.DistInfo)); err != nil {
		return err
	}
	removeEmptyDirs(from, dirs)
	return nil
}

// stripTree strips debug symbols from the ELF files of a tree (strip = true) with
// the host's binutils for the target CPU, and updates RECORD.
func stripTree(ctx context.Context, dir string, arch lambda.Arch) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		head := make([]byte, 4)
		n, _ := f.Read(head)
		f.Close()
		if n == 4 && string(head) == "\x7fELF" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		return err
	}
	tool, err := stripTool(arch)
	if err != nil {
		return err
	}
	changed := map[string]bool{}
	for i := 0; i < len(files); i += 100 {
		batch := files[i:min(i+100, len(files))]
		out, err := exec.CommandContext(ctx, tool, append([]string{"--strip-debug"}, batch...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s --strip-debug: %v: %s", tool, err, strings.TrimSpace(string(out)))
		}
		for _, f := range batch {
			rel, _ := filepath.Rel(dir, f)
			changed[filepath.ToSlash(rel)] = true
		}
	}
	return RewriteRecords(dir, changed)
}

// stripTool finds a strip that understands the target CPU.
func stripTool(arch lambda.Arch) (string, error) {
	cands := []string{arch.GNU() + "-linux-gnu-strip"}
	if runtime.GOARCH == arch.OCI() {
		cands = append([]string{"strip"}, cands...)
	}
	cands = append(cands, "llvm-strip")
	for _, c := range cands {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("strip = true needs a strip for %s on the host (%s): install binutils-%s-linux-gnu or llvm", arch.GNU(), strings.Join(cands, ", "), strings.ReplaceAll(arch.GNU(), "_", "-"))
}
