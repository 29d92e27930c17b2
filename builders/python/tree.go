package python

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// A tree is a folder pip or uv installed into with --target: top-level packages and
// modules, one NAME-VERSION.dist-info folder per distribution, maybe bin/. This file
// reads and rewrites such trees: distributions and their RECORD, removing packages,
// normalising install metadata, pruning.

// Dist is one installed distribution.
type Dist struct {
	Name     string // as in METADATA
	Version  string
	DistInfo string // tree-relative folder, slash-separated
	Files    []RecordEntry
	Requires []*Requirement // Requires-Dist
}

// Key is the normalised name.
func (d *Dist) Key() string { return Normalize(d.Name) }

// RecordEntry is one RECORD line, its path relative to the tree root.
type RecordEntry struct {
	Path string // slash-separated, relative to the tree
	Hash string // "sha256=..." ("" for RECORD itself)
	Size string
}

// TopLevel are the tree's top-level names the distribution writes into ("numpy",
// "bin", "six.py"), dist-info excluded.
func (d *Dist) TopLevel() []string {
	seen := map[string]bool{}
	for _, f := range d.Files {
		top, _, _ := strings.Cut(f.Path, "/")
		if top != d.DistInfo {
			seen[top] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// ReadTree reads every distribution in a tree.
func ReadTree(root string) ([]*Dist, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var dists []*Dist
	for _, e := range ents {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".dist-info") {
			continue
		}
		d, err := readDist(root, e.Name())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		dists = append(dists, d)
	}
	sort.Slice(dists, func(i, j int) bool { return dists[i].Key() < dists[j].Key() })
	return dists, nil
}

func readDist(root, distInfo string) (*Dist, error) {
	d := &Dist{DistInfo: distInfo}
	meta, err := os.ReadFile(filepath.Join(root, distInfo, "METADATA"))
	if err != nil {
		return nil, err
	}
	hdr := parseHeaders(meta)
	d.Name, d.Version = first(hdr["name"]), first(hdr["version"])
	if d.Name == "" {
		return nil, fmt.Errorf("METADATA has no Name")
	}
	for _, s := range hdr["requires-dist"] {
		r, err := ParseRequirement(s)
		if err != nil {
			return nil, fmt.Errorf("METADATA Requires-Dist: %w", err)
		}
		d.Requires = append(d.Requires, r)
	}
	rec, err := os.ReadFile(filepath.Join(root, distInfo, "RECORD"))
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(bytes.NewReader(rec)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("RECORD: %w", err)
	}
	seen := map[string]bool{}
	for _, row := range rows {
		if len(row) == 0 || row[0] == "" {
			continue
		}
		p, ok := treePath(root, row[0])
		if !ok || seen[p] {
			continue
		}
		seen[p] = true
		e := RecordEntry{Path: p}
		if len(row) > 1 {
			e.Hash = row[1]
		}
		if len(row) > 2 {
			e.Size = row[2]
		}
		d.Files = append(d.Files, e)
	}
	return d, nil
}

// treePath maps a RECORD path to a path in the tree. pip --target installs into a
// temporary home and moves lib/python/* and bin/ to the target, so scripts are
// recorded as ../../bin/NAME; any leading ../ is dropped when what remains exists.
func treePath(root, p string) (string, bool) {
	p = path.Clean(strings.ReplaceAll(p, `\`, "/"))
	if strings.HasPrefix(p, "/") {
		return "", false
	}
	for strings.HasPrefix(p, "../") {
		p = strings.TrimPrefix(p, "../")
	}
	if p == ".." || p == "." {
		return "", false
	}
	if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
		return "", false
	}
	return p, true
}

// parseHeaders reads RFC 822 style headers (METADATA, WHEEL) up to the body.
func parseHeaders(b []byte) map[string][]string {
	out := map[string][]string{}
	var key string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && key != "" {
			vs := out[key]
			vs[len(vs)-1] += "\n" + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(k))
		out[key] = append(out[key], strings.TrimSpace(v))
	}
	return out
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// Closure returns the normalised names to keep: everything reachable from roots
// through Requires-Dist evaluated for env (with the extras asked for), not going
// through the excluded names. roots maps a name to the extras it is asked with.
func Closure(dists []*Dist, roots map[string][]string, exclude map[string]bool, env Env) map[string]bool {
	byKey := map[string]*Dist{}
	for _, d := range dists {
		byKey[d.Key()] = d
	}
	type state struct{ name, extra string }
	keep := map[string]bool{}
	seen := map[state]bool{}
	var queue []state
	push := func(name string, extras []string) {
		if exclude[name] {
			return
		}
		for _, x := range append([]string{""}, extras...) {
			s := state{name, x}
			if !seen[s] {
				seen[s] = true
				queue = append(queue, s)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(roots)) {
		push(name, roots[name])
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		d := byKey[s.name]
		if d == nil {
			continue
		}
		keep[s.name] = true
		for _, r := range d.Requires {
			if r.Marker.Eval(env, s.extra) {
				push(r.Key(), r.Extras)
			}
		}
	}
	return keep
}

// ExcludedClosure is what exclude_packages removes: the excluded distributions and
// every distribution reachable from them that nothing kept needs. A distribution
// reachable from neither (the builder's marker evaluation and the installer's could
// disagree) is kept: only what exclusion makes unneeded is removed.
func ExcludedClosure(dists []*Dist, roots map[string][]string, exclude map[string]bool, env Env) []string {
	if len(exclude) == 0 {
		return nil
	}
	keep := Closure(dists, roots, exclude, env)
	from := map[string][]string{}
	for name := range exclude {
		from[name] = roots[name]
	}
	reach := Closure(dists, from, nil, env)
	var out []string
	for _, d := range dists {
		if exclude[d.Key()] || (reach[d.Key()] && !keep[d.Key()]) {
			out = append(out, d.Key())
		}
	}
	return out
}

// Roots that nobody else requires: used, with the top-level requirements, so a
// requirement the builder could not name (a bare URL) still counts as asked for.
func sources(dists []*Dist, env Env) map[string][]string {
	required := map[string]bool{}
	for _, d := range dists {
		for _, r := range d.Requires {
			if r.Marker.Eval(env, "") || r.Marker.UsesExtra() {
				required[r.Key()] = true
			}
		}
	}
	out := map[string][]string{}
	for _, d := range dists {
		if !required[d.Key()] {
			out[d.Key()] = nil
		}
	}
	return out
}

// RemoveDist deletes a distribution's files and its dist-info, then the folders
// left empty. It returns the bytes freed.
func RemoveDist(root string, d *Dist) (int64, error) {
	var freed int64
	dirs := map[string]bool{}
	for _, f := range d.Files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if st, err := os.Lstat(p); err == nil && !st.IsDir() {
			freed += st.Size()
			if err := os.Remove(p); err != nil {
				return freed, err
			}
		}
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			dirs[dir] = true
		}
	}
	n, err := dirSize(filepath.Join(root, d.DistInfo))
	freed += n
	if err != nil {
		return freed, err
	}
	if err := os.RemoveAll(filepath.Join(root, d.DistInfo)); err != nil {
		return freed, err
	}
	removeEmptyDirs(root, dirs)
	return freed, nil
}

// removeEmptyDirs removes the given tree-relative folders that are empty, deepest
// first, along with any __pycache__ folder left alone in them.
func removeEmptyDirs(root string, dirs map[string]bool) {
	list := slices.Sorted(maps.Keys(dirs))
	sort.Slice(list, func(i, j int) bool { return strings.Count(list[i], "/") > strings.Count(list[j], "/") })
	for _, d := range list {
		p := filepath.Join(root, filepath.FromSlash(d))
		if ents, err := os.ReadDir(p); err == nil && len(ents) == 1 && ents[0].Name() == "__pycache__" {
			os.RemoveAll(filepath.Join(p, "__pycache__"))
		}
		os.Remove(p) // fails when not empty
	}
}

func dirSize(p string) (int64, error) {
	var n int64
	err := filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}

// installMetadata are dist-info files that record how and from where a package was
// installed on this machine: they differ between machines and installers (pip
// writes "pip", uv "uv"; direct_url.json holds local paths; uv_cache.json is uv's
// cache bookkeeping) and nothing needs them at run time.
var installMetadata = []string{"INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json"}

// NormalizeTree makes a tree the same on every machine: no install metadata, no
// compiled bytecode, bin/ scripts with a portable shebang, and each RECORD listing
// exactly the files shipped with their hashes.
func NormalizeTree(root string) error {
	// Bytecode first: pip was told not to compile, but a package's own install
	// step or a build may have left some.
	if err := removeBytecode(root); err != nil {
		return err
	}
	for _, name := range installMetadata {
		matches, _ := filepath.Glob(filepath.Join(root, "*.dist-info", name))
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				return err
			}
		}
	}
	changed := map[string]bool{}
	if err := fixShebangs(root, changed); err != nil {
		return err
	}
	return RewriteRecords(root, changed)
}

// removeBytecode deletes __pycache__ folders and stray .pyc/.pyo files.
func removeBytecode(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			dirs = append(dirs, p)
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".pyc") || strings.HasSuffix(p, ".pyo")) {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

// Shebang is what bin/ scripts start with in a layer: the host interpreter path pip
// writes would not exist in Lambda, where python3 is found on PATH (/var/lang/bin).
const Shebang = "#!/usr/bin/env python3"

// fixShebangs rewrites the first line of bin/ scripts that start with a Python
// shebang. pip also writes a "#!/bin/sh" + exec trampoline when the interpreter
// path is long or has spaces; those are rewritten too.
func fixShebangs(root string, changed map[string]bool) error {
	bin := filepath.Join(root, "bin")
	ents, err := os.ReadDir(bin)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(bin, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		nb, ok := portableScript(b)
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, nb, info.Mode().Perm()); err != nil {
			return err
		}
		changed["bin/"+e.Name()] = true
	}
	return nil
}

// portableScript returns the script with a portable Python shebang, and whether it
// changed.
func portableScript(b []byte) ([]byte, bool) {
	if !bytes.HasPrefix(b, []byte("#!")) {
		return b, false
	}
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	if bytes.HasPrefix(line, []byte("#!/bin/sh")) && bytes.HasPrefix(rest, []byte("'''exec' ")) {
		// pip's trampoline: "#!/bin/sh\n'''exec' /long/path/python3 "$0" "$@"\n' '''\n"
		_, after, ok := bytes.Cut(rest, []byte("' '''\n"))
		if !ok {
			return b, false
		}
		rest = after
	} else if !bytes.Contains(line, []byte("python")) {
		return b, false
	}
	out := append([]byte(Shebang+"\n"), rest...)
	return out, !bytes.Equal(out, b)
}

// RewriteRecords rewrites every RECORD in the tree so it lists exactly the files
// that exist, with tree-relative paths, the hashes of files in changed recomputed,
// and RECORD itself last with no hash, as the wheel spec wants.
func RewriteRecords(root string, changed map[string]bool) error {
	dists, err := ReadTree(root)
	if err != nil {
		return err
	}
	for _, d := range dists {
		if err := writeRecord(root, d, changed); err != nil {
			return fmt.Errorf("%s/RECORD: %w", d.DistInfo, err)
		}
	}
	return nil
}

func writeRecord(root string, d *Dist, changed map[string]bool) error {
	recName := d.DistInfo + "/RECORD"
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	for _, f := range d.Files {
		if f.Path == recName {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		st, err := os.Lstat(p)
		if err != nil || st.IsDir() {
			continue // removed: no longer shipped
		}
		if changed[f.Path] || f.Hash == "" {
			h, n, err := fileHash(p)
			if err != nil {
				return err
			}
			f.Hash, f.Size = h, fmt.Sprint(n)
		}
		if err := w.Write([]string{f.Path, f.Hash, f.Size}); err != nil {
			return err
		}
	}
	if err := w.Write([]string{recName, "", ""}); err != nil {
		return err
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, filepath.FromSlash(recName)), buf.Bytes(), 0o644)
}

// fileHash is a RECORD hash: "sha256=" + urlsafe base64 without padding.
func fileHash(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return "sha256=" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)), n, nil
}

// testsAllowlist are distributions whose tests/ and test/ folders are never imported
// at run time (their test suites run only through pytest or pkg.test()), so prune =
// "safe" removes them. The list is short on purpose: some packages do import their
// tests package at run time (numba's, for one), so nothing is removed by pattern alone.
var testsAllowlist = map[string]bool{
	"numpy": true, "pandas": true, "scipy": true, "scikit-learn": true, "matplotlib": true,
	"pyarrow": true, "networkx": true, "sympy": true, "statsmodels": true, "shapely": true,
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Files int
	Bytes int64
}

// Prune removes what a layer does not need at run time, and updates RECORD: the
// tests/ and test/ folders of allowlisted distributions and, with stubs, *.pyi
// files. Bytecode is never there at this point (NormalizeTree removed it).
func Prune(root string, stubs bool) (PruneResult, error) {
	var res PruneResult
	dists, err := ReadTree(root)
	if err != nil {
		return res, err
	}
	removed := false
	for _, d := range dists {
		dirs := map[string]bool{}
		for _, f := range d.Files {
			if strings.HasPrefix(f.Path, d.DistInfo+"/") {
				continue
			}
			drop := stubs && strings.HasSuffix(f.Path, ".pyi")
			if testsAllowlist[d.Key()] && inTestsFolder(f.Path) {
				drop = true
			}
			if !drop {
				continue
			}
			p := filepath.Join(root, filepath.FromSlash(f.Path))
			st, err := os.Lstat(p)
			if err != nil || st.IsDir() {
				continue
			}
			if err := os.Remove(p); err != nil {
				return res, err
			}
			res.Files++
			res.Bytes += st.Size()
			removed = true
			for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
				dirs[dir] = true
			}
		}
		removeEmptyDirs(root, dirs)
	}
	if !removed {
		return res, nil
	}
	return res, RewriteRecords(root, nil)
}

// inTestsFolder reports whether a path is inside a package's tests/ or test/ folder
// (not at the top of the tree, where it would be a package of its own).
func inTestsFolder(p string) bool {
	parts := strings.Split(p, "/")
	for _, dir := range parts[1 : len(parts)-1] {
		if dir == "tests" || dir == "test" {
			return true
		}
	}
	return false
}

// distIdentity is what makes two installs of a distribution the same: name,
// version and every file with its hash. Used to share identical distributions
// between the trees of several Python versions.
func distIdentity(d *Dist) string {
	var b strings.Builder
	b.WriteString(d.Key() + "==" + d.Version + "\n")
	files := append([]RecordEntry(nil), d.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		if f.Path == d.DistInfo+"/RECORD" {
			continue
		}
		b.WriteString(f.Path + " " + f.Hash + "\n")
	}
	return b.String()
}
