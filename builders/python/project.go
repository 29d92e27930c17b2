package python

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// A project ([python] project = "DIR") is a folder with pyproject.toml. The layer
// gets the project's run-time dependencies, not the project itself (its code is
// usually the function, deployed in the function's own zip; list it in a
// requirements file to ship it). When a lock is present it is honoured: the builder
// exports, for each target Python and CPU, the locked packages the target needs
// (markers evaluated for the target) as name==version lines with every hash the lock
// holds, and pip installs exactly those with --no-deps. Supported locks, first found
// wins: uv.lock, poetry.lock, pdm.lock. Without a lock, [project].dependencies (or
// Poetry's [tool.poetry.dependencies]) are resolved like a requirements file.

// LockFiles are the locks the builder reads, in order of preference.
var LockFiles = []string{"uv.lock", "poetry.lock", "pdm.lock"}

// Project is a parsed pyproject.toml with its lock, if any.
type Project struct {
	Dir  string
	Name string
	Deps []string // PEP 508 run-time dependencies
	Lock string   // file name of the lock used, "" when none
	// Files the output depends on (pyproject.toml and the lock).
	Files []string

	lock lockGraph
}

type pyproject struct {
	Project struct {
		Name         string   `toml:"name"`
		Dependencies []string `toml:"dependencies"`
	} `toml:"project"`
	Tool struct {
		Poetry struct {
			Name         string         `toml:"name"`
			Dependencies map[string]any `toml:"dependencies"`
		} `toml:"poetry"`
	} `toml:"tool"`
}

// LoadProject reads DIR/pyproject.toml and the first lock found beside it.
func LoadProject(dir string) (*Project, error) {
	pp := filepath.Join(dir, "pyproject.toml")
	var doc pyproject
	if _, err := toml.DecodeFile(pp, &doc); err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s has no pyproject.toml", dir)
		}
		return nil, fmt.Errorf("pyproject.toml: %w", err)
	}
	p := &Project{Dir: dir, Name: doc.Project.Name, Deps: doc.Project.Dependencies, Files: []string{pp}}
	if p.Name == "" {
		p.Name = doc.Tool.Poetry.Name
	}
	if len(p.Deps) == 0 && len(doc.Tool.Poetry.Dependencies) > 0 {
		for _, name := range slices.Sorted(maps.Keys(doc.Tool.Poetry.Dependencies)) {
			if strings.EqualFold(name, "python") {
				continue
			}
			for _, r := range poetryDeps(name, doc.Tool.Poetry.Dependencies[name]) {
				if !r.optional {
					p.Deps = append(p.Deps, r.pep508)
				}
			}
		}
	}
	for _, lf := range LockFiles {
		path := filepath.Join(dir, lf)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		var g lockGraph
		var err error
		switch lf {
		case "uv.lock":
			g, err = readUVLock(path, p.Name)
		case "poetry.lock":
			g, err = readPoetryLock(path)
		case "pdm.lock":
			g, err = readPDMLock(path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lf, err)
		}
		p.Lock, p.lock = lf, g
		p.Files = append(p.Files, path)
		break
	}
	return p, nil
}

// lockGraph is a lock reduced to what an export needs.
type lockGraph struct {
	roots    []lockDep // the project's own run-time dependencies ("" root: use Project.Deps)
	packages map[string][]*lockPkg
}

type lockPkg struct {
	name, version string
	url           string // for packages not from an index: a direct URL
	hashes        []string
	deps          []lockDep
	extras        map[string][]lockDep
}

type lockDep struct {
	name    string
	version string // when the lock names one version among several
	marker  *Marker
	extras  []string
}

// RequirementsFor exports the lock for a target: pinned lines with hashes.
// Without a lock it returns the project's dependencies as written.
func (p *Project) RequirementsFor(env Env) ([]string, error) {
	if p.Lock == "" {
		return append([]string(nil), p.Deps...), nil
	}
	roots := p.lock.roots
	if roots == nil {
		for _, d := range p.Deps {
			r, err := ParseRequirement(d)
			if err != nil {
				return nil, fmt.Errorf("pyproject.toml: %w", err)
			}
			roots = append(roots, lockDep{name: r.Key(), marker: r.Marker, extras: r.Extras})
		}
	}
	type state struct{ name, version, extra string }
	seen := map[state]bool{}
	chosen := map[string]*lockPkg{}
	var walk func(d lockDep) error
	walk = func(d lockDep) error {
		if !d.marker.Eval(env, "") {
			return nil
		}
		pkg := p.lock.find(d.name, d.version)
		if pkg == nil {
			return fmt.Errorf("%s: %s is required but not in the lock (run the lock command again)", p.Lock, d.name)
		}
		if prev := chosen[pkg.name]; prev != nil && prev != pkg {
			return fmt.Errorf("%s: two versions of %s (%s and %s) apply to the same target", p.Lock, pkg.name, prev.version, pkg.version)
		}
		chosen[pkg.name] = pkg
		for _, x := range append([]string{""}, d.extras...) {
			s := state{pkg.name, pkg.version, x}
			if seen[s] {
				continue
			}
			seen[s] = true
			deps := pkg.deps
			if x != "" {
				deps = pkg.extras[x]
			}
			for _, c := range deps {
				if err := walk(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, r := range roots {
		if err := walk(r); err != nil {
			return nil, err
		}
	}
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(chosen)) {
		pkg := chosen[name]
		line := pkg.name + "==" + pkg.version
		if pkg.url != "" {
			line = pkg.name + " @ " + pkg.url
		}
		for _, h := range pkg.hashes {
			line += " --hash=" + h
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// find picks the locked package for a name: the one with the version asked (uv
// names the version when a lock forks), else the first.
func (g lockGraph) find(name, version string) *lockPkg {
	cands := g.packages[Normalize(name)]
	for _, c := range cands {
		if version == "" || c.version == version {
			return c
		}
	}
	return nil
}

// RootNames are the lock's names for the project's direct dependencies (for
// exclude_packages).
func (p *Project) RootNames(env Env) map[string][]string {
	out := map[string][]string{}
	if p.lock.roots != nil {
		for _, r := range p.lock.roots {
			if r.marker.Eval(env, "") {
				out[Normalize(r.name)] = append(out[Normalize(r.name)], r.extras...)
			}
		}
		return out
	}
	for _, d := range p.Deps {
		if r, err := ParseRequirement(d); err == nil && r.Marker.Eval(env, "") {
			out[r.Key()] = append(out[r.Key()], r.Extras...)
		}
	}
	return out
}

// --- uv.lock

type uvLock struct {
	Package []struct {
		Name         string             `toml:"name"`
		Version      string             `toml:"version"`
		Source       map[string]string  `toml:"source"`
		Dependencies []uvDep            `toml:"dependencies"`
		Optional     map[string][]uvDep `toml:"optional-dependencies"`
		Sdist        *uvFile            `toml:"sdist"`
		Wheels       []uvFile           `toml:"wheels"`
	} `toml:"package"`
}

type uvDep struct {
	Name    string   `toml:"name"`
	Version string   `toml:"version"`
	Marker  string   `toml:"marker"`
	Extra   []string `toml:"extra"`
}

type uvFile struct {
	URL  string `toml:"url"`
	Hash string `toml:"hash"`
}

func readUVLock(path, project string) (lockGraph, error) {
	var doc uvLock
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		return lockGraph{}, err
	}
	g := lockGraph{packages: map[string][]*lockPkg{}}
	conv := func(ds []uvDep) ([]lockDep, error) {
		var out []lockDep
		for _, d := range ds {
			ld := lockDep{name: Normalize(d.Name), version: d.Version}
			for _, x := range d.Extra {
				ld.extras = append(ld.extras, Normalize(x))
			}
			if d.Marker != "" {
				m, err := ParseMarker(d.Marker)
				if err != nil {
					return nil, err
				}
				ld.marker = m
			}
			out = append(out, ld)
		}
		return out, nil
	}
	rootFound := false
	for _, p := range doc.Package {
		deps, err := conv(p.Dependencies)
		if err != nil {
			return g, fmt.Errorf("package %s: %w", p.Name, err)
		}
		if p.Source["virtual"] == "." || p.Source["editable"] == "." {
			g.roots, rootFound = deps, true
			if g.roots == nil {
				g.roots = []lockDep{}
			}
			continue
		}
		pkg := &lockPkg{name: Normalize(p.Name), version: p.Version, deps: deps, extras: map[string][]lockDep{}}
		for x, ds := range p.Optional {
			if pkg.extras[Normalize(x)], err = conv(ds); err != nil {
				return g, fmt.Errorf("package %s: %w", p.Name, err)
			}
		}
		switch {
		case p.Source["registry"] != "":
		case p.Source["url"] != "":
			pkg.url = p.Source["url"]
		case p.Source["git"] != "":
			pkg.url = "git+" + p.Source["git"]
		default:
			return g, fmt.Errorf("package %s comes from %v: only index, URL and git packages can go into a layer", p.Name, p.Source)
		}
		if p.Sdist != nil && p.Sdist.Hash != "" {
			pkg.hashes = append(pkg.hashes, p.Sdist.Hash)
		}
		for _, w := range p.Wheels {
			if w.Hash != "" {
				pkg.hashes = append(pkg.hashes, w.Hash)
			}
		}
		g.packages[pkg.name] = append(g.packages[pkg.name], pkg)
	}
	if !rootFound {
		return g, fmt.Errorf("no package with source = { virtual = \".\" } or { editable = \".\" }: is this the project's lock?")
	}
	return g, nil
}

// --- poetry.lock

type poetryLock struct {
	Package []struct {
		Name         string              `toml:"name"`
		Version      string              `toml:"version"`
		Files        []poetryFile        `toml:"files"`
		Dependencies map[string]any      `toml:"dependencies"`
		Extras       map[string][]string `toml:"extras"`
		Source       map[string]any      `toml:"source"`
	} `toml:"package"`
	Metadata struct {
		Files map[string][]poetryFile `toml:"files"` // lock-version 1.x
	} `toml:"metadata"`
}

type poetryFile struct {
	File string `toml:"file"`
	Hash string `toml:"hash"`
}

func readPoetryLock(path string) (lockGraph, error) {
	var doc poetryLock
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		return lockGraph{}, err
	}
	g := lockGraph{packages: map[string][]*lockPkg{}}
	for _, p := range doc.Package {
		pkg := &lockPkg{name: Normalize(p.Name), version: p.Version, extras: map[string][]lockDep{}}
		if t, _ := p.Source["type"].(string); t != "" && t != "legacy" {
			u, _ := p.Source["url"].(string)
			switch t {
			case "url":
				pkg.url = u
			case "git":
				pkg.url = "git+" + u
				if ref, _ := p.Source["resolved_reference"].(string); ref != "" {
					pkg.url += "@" + ref
				}
			default:
				return g, fmt.Errorf("package %s comes from a %s source: only index, URL and git packages can go into a layer", p.Name, t)
			}
		}
		files := p.Files
		if len(files) == 0 {
			files = doc.Metadata.Files[p.Name]
		}
		for _, f := range files {
			if f.Hash != "" {
				pkg.hashes = append(pkg.hashes, f.Hash)
			}
		}
		optional := map[string]lockDep{}
		for _, name := range slices.Sorted(maps.Keys(p.Dependencies)) {
			for _, d := range poetryDeps(name, p.Dependencies[name]) {
				ld, err := d.lockDep()
				if err != nil {
					return g, fmt.Errorf("package %s: %w", p.Name, err)
				}
				if d.optional {
					optional[ld.name] = ld
					continue
				}
				pkg.deps = append(pkg.deps, ld)
			}
		}
		for x, reqs := range p.Extras {
			for _, s := range reqs {
				// "PySocks (>=1.5.6,!=1.5.7)" or a PEP 508 string.
				name := Normalize(strings.TrimSpace(strings.FieldsFunc(s, func(r rune) bool {
					return r == ' ' || r == '(' || r == '[' || r == '<' || r == '>' || r == '=' || r == ';'
				})[0]))
				ld, ok := optional[name]
				if !ok {
					ld = lockDep{name: name}
				}
				pkg.extras[Normalize(x)] = append(pkg.extras[Normalize(x)], ld)
			}
		}
		g.packages[pkg.name] = append(g.packages[pkg.name], pkg)
	}
	return g, nil
}

// poetryDep is one Poetry dependency constraint.
type poetryDep struct {
	name, pep508 string
	marker       string
	extras       []string
	optional     bool
}

func (d poetryDep) lockDep() (lockDep, error) {
	ld := lockDep{name: Normalize(d.name), extras: d.extras}
	if d.marker != "" {
		m, err := ParseMarker(d.marker)
		if err != nil {
			return ld, err
		}
		ld.marker = m
	}
	return ld, nil
}

// poetryDeps reads a Poetry dependency value: "^1.2", {version, markers, python,
// extras, optional}, or a list of such tables.
func poetryDeps(name string, v any) []poetryDep {
	switch t := v.(type) {
	case string:
		return []poetryDep{{name: name, pep508: name + poetrySpec(t)}}
	case map[string]any:
		d := poetryDep{name: name}
		ver, _ := t["version"].(string)
		var markers []string
		if m, _ := t["markers"].(string); m != "" {
			markers = append(markers, "("+m+")")
		}
		if py, _ := t["python"].(string); py != "" {
			if m := poetryPythonMarker(py); m != "" {
				markers = append(markers, m)
			}
		}
		d.marker = strings.Join(markers, " and ")
		if xs, ok := t["extras"].([]any); ok {
			for _, x := range xs {
				if s, ok := x.(string); ok {
					d.extras = append(d.extras, Normalize(s))
				}
			}
		}
		d.optional, _ = t["optional"].(bool)
		extras := ""
		if len(d.extras) > 0 {
			extras = "[" + strings.Join(d.extras, ",") + "]"
		}
		d.pep508 = name + extras + poetrySpec(ver)
		if d.marker != "" {
			d.pep508 += "; " + d.marker
		}
		return []poetryDep{d}
	case []any:
		var out []poetryDep
		for _, e := range t {
			out = append(out, poetryDeps(name, e)...)
		}
		return out
	case []map[string]any:
		var out []poetryDep
		for _, e := range t {
			out = append(out, poetryDeps(name, e)...)
		}
		return out
	}
	return nil
}

var caretRe = regexp.MustCompile(`^([\^~])\s*(\d+(?:\.\d+)*)$`)

// poetrySpec turns a Poetry constraint into a PEP 440 specifier (^ and ~ included).
func poetrySpec(c string) string {
	c = strings.TrimSpace(c)
	if c == "" || c == "*" {
		return ""
	}
	if m := caretRe.FindStringSubmatch(c); m != nil {
		parts := strings.Split(m[2], ".")
		nums := make([]int, len(parts))
		for i, p := range parts {
			fmt.Sscan(p, &nums[i])
		}
		upper := make([]int, len(nums))
		copy(upper, nums)
		var i int
		if m[1] == "^" {
			i = 0
			for i < len(upper)-1 && upper[i] == 0 {
				i++
			}
		} else {
			i = min(1, len(upper)-1)
			if len(upper) == 1 {
				i = 0
			}
		}
		upper = upper[:i+1]
		upper[i]++
		us := make([]string, len(upper))
		for k, n := range upper {
			us[k] = fmt.Sprint(n)
		}
		return ">=" + m[2] + ",<" + strings.Join(us, ".")
	}
	if c[0] >= '0' && c[0] <= '9' {
		return "==" + c
	}
	return strings.ReplaceAll(c, " ", "")
}

// poetryPythonMarker turns a python = "..." constraint into a marker.
func poetryPythonMarker(c string) string {
	spec := poetrySpec(c)
	if spec == "" {
		return ""
	}
	var parts []string
	for _, s := range strings.Split(spec, ",") {
		i := strings.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' })
		if i <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("python_version %s %q", s[:i], s[i:]))
	}
	return strings.Join(parts, " and ")
}

// --- pdm.lock

type pdmLock struct {
	Package []struct {
		Name         string       `toml:"name"`
		Version      string       `toml:"version"`
		Extras       []string     `toml:"extras"`
		Dependencies []string     `toml:"dependencies"`
		Files        []poetryFile `toml:"files"`
		Marker       string       `toml:"marker"`
	} `toml:"package"`
}

func readPDMLock(path string) (lockGraph, error) {
	var doc pdmLock
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		return lockGraph{}, err
	}
	g := lockGraph{packages: map[string][]*lockPkg{}}
	byName := map[string]*lockPkg{}
	for _, p := range doc.Package {
		name := Normalize(p.Name)
		pkg := byName[name]
		if pkg == nil {
			pkg = &lockPkg{name: name, version: p.Version, extras: map[string][]lockDep{}}
			byName[name] = pkg
			g.packages[name] = append(g.packages[name], pkg)
			for _, f := range p.Files {
				if f.Hash != "" {
					pkg.hashes = append(pkg.hashes, f.Hash)
				}
			}
		}
		var deps []lockDep
		for _, s := range p.Dependencies {
			r, err := ParseRequirement(s)
			if err != nil {
				return g, fmt.Errorf("package %s: %w", p.Name, err)
			}
			// pdm lists "name[extra]==version" entries for extras; they depend on
			// the package itself, which needs no second visit.
			if r.Key() == name {
				continue
			}
			deps = append(deps, lockDep{name: r.Key(), marker: r.Marker, extras: r.Extras})
		}
		if len(p.Extras) == 0 {
			pkg.deps = append(pkg.deps, deps...)
		} else {
			for _, x := range p.Extras {
				pkg.extras[Normalize(x)] = append(pkg.extras[Normalize(x)], deps...)
			}
		}
	}
	for _, ps := range g.packages {
		for _, p := range ps {
			sort.Strings(p.hashes)
		}
	}
	return g, nil
}
