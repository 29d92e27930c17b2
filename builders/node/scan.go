package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// pkg is one installed package.
type pkg struct {
	Path    string // slash path from the project root: node_modules/a/node_modules/@s/b
	Name    string
	Version string
	Scripts map[string]string
	GypFile *bool // package.json "gypfile"
	HasGyp  bool  // binding.gyp at the package root
	OS      []string
	CPU     []string
	Libc    []string
	Main    string
	Bins    []string // files named by "bin"
	Deps    []string // dependencies and optionalDependencies, by name
}

// manifest is the part of an installed package.json layerpack reads. Published
// manifests are not always well typed ("main": false, a number as a script):
// fields of an unexpected type are ignored, as npm and Node.js do.
type manifest struct {
	Name                 lenientString    `json:"name"`
	Version              lenientString    `json:"version"`
	Scripts              lenientStringMap `json:"scripts"`
	GypFile              json.RawMessage  `json:"gypfile"`
	OS                   stringList       `json:"os"`
	CPU                  stringList       `json:"cpu"`
	Libc                 stringList       `json:"libc"`
	Main                 lenientString    `json:"main"`
	Bin                  json.RawMessage  `json:"bin"`
	Dependencies         lenientStringMap `json:"dependencies"`
	OptionalDependencies lenientStringMap `json:"optionalDependencies"`
}

// lenientString is a string field that is empty when it is not a string.
type lenientString string

func (s *lenientString) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = lenientString(v)
	}
	return nil
}

// lenientStringMap keeps the string values of an object.
type lenientStringMap map[string]string

func (m *lenientStringMap) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if json.Unmarshal(b, &raw) != nil {
		return nil
	}
	*m = map[string]string{}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			(*m)[k] = s
		}
	}
	return nil
}

// stringList accepts a string or a list of strings (os, cpu and libc allow both).
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return nil // malformed: npm ignores it too
	}
	*s = many
	return nil
}

// scanTree lists the packages under root/node_modules, nested ones included,
// sorted by path. A folder without package.json is not a package.
func scanTree(root string) ([]*pkg, error) {
	var out []*pkg
	var walk func(nm string) error
	walk = func(nm string) error {
		ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(nm)))
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue // .bin, .package-lock.json, .cache ...
			}
			if strings.HasPrefix(name, "@") && e.IsDir() {
				if err := walk(nm + "/" + name); err != nil {
					return err
				}
				continue
			}
			rel := nm + "/" + name
			if e.Type()&os.ModeSymlink != 0 {
				target, _ := os.Readlink(filepath.Join(root, filepath.FromSlash(rel)))
				return fmt.Errorf("%s is a link to %s (a local folder dependency): a layer needs real files; "+
					"depend on a tarball (npm pack) or let the package manager copy it (npm does with --install-links)", rel, target)
			}
			if !e.IsDir() {
				continue
			}
			p, err := readPkg(root, rel)
			if err != nil {
				return err
			}
			if p == nil {
				continue
			}
			out = append(out, p)
			if err := walk(rel + "/node_modules"); err != nil {
				return err
			}
		}
		return nil
	}
	// Scoped folders are walked as part of their node_modules.
	if err := walk("node_modules"); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func readPkg(root, rel string) (*pkg, error) {
	dir := filepath.Join(root, filepath.FromSlash(rel))
	raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil { // not JSON at all
		return nil, fmt.Errorf("%s/package.json: %v", rel, err)
	}
	p := &pkg{Path: rel, Name: string(m.Name), Version: string(m.Version), Scripts: m.Scripts,
		OS: m.OS, CPU: m.CPU, Libc: m.Libc, Main: string(m.Main)}
	if p.Name == "" {
		p.Name = strings.TrimPrefix(rel[strings.LastIndex(rel, "node_modules/")+len("node_modules/"):], "/")
	}
	var gyp bool
	if json.Unmarshal(m.GypFile, &gyp) == nil {
		p.GypFile = &gyp
	}
	if st, err := os.Stat(filepath.Join(dir, "binding.gyp")); err == nil && st.Mode().IsRegular() {
		p.HasGyp = true
	}
	if len(m.Bin) > 0 {
		var one string
		var many map[string]string
		if json.Unmarshal(m.Bin, &one) == nil {
			p.Bins = []string{one}
		} else if json.Unmarshal(m.Bin, &many) == nil {
			for _, b := range many {
				p.Bins = append(p.Bins, b)
			}
			sort.Strings(p.Bins)
		}
	}
	for d := range m.Dependencies {
		p.Deps = append(p.Deps, d)
	}
	for d := range m.OptionalDependencies {
		if _, dup := m.Dependencies[d]; !dup {
			p.Deps = append(p.Deps, d)
		}
	}
	sort.Strings(p.Deps)
	return p, nil
}

// installScripts are the lifecycle scripts npm runs when it installs a package.
var installScripts = []string{"preinstall", "install", "postinstall"}

// scriptText joins a package's install scripts, npm's implicit "node-gyp rebuild"
// included (binding.gyp and no install or preinstall script).
func (p *pkg) scriptText() string {
	var parts []string
	for _, s := range installScripts {
		if v := p.Scripts[s]; v != "" {
			parts = append(parts, s+": "+v)
		}
	}
	if p.implicitGyp() {
		parts = append(parts, "install: node-gyp rebuild (implicit, binding.gyp)")
	}
	return strings.Join(parts, "; ")
}

func (p *pkg) implicitGyp() bool {
	return p.HasGyp && (p.GypFile == nil || *p.GypFile) && p.Scripts["install"] == "" && p.Scripts["preinstall"] == ""
}

// resolve finds the package that require(name) from the package at from finds:
// from/node_modules/name, then each ancestor's node_modules.
func resolve(byPath map[string]*pkg, from, name string) *pkg {
	dir := from
	for {
		if p := byPath[path.Join(dir, "node_modules", name)]; p != nil {
			return p
		}
		i := strings.LastIndex(dir, "/node_modules/")
		if i < 0 {
			if dir == "" {
				return nil
			}
			dir = "" // the project root
			continue
		}
		dir = dir[:i]
	}
}

// closure is the set of packages the given ones need at install time: themselves
// and everything they depend on, transitively, by path.
func closure(all []*pkg, roots []*pkg) []*pkg {
	byPath := map[string]*pkg{}
	for _, p := range all {
		byPath[p.Path] = p
	}
	seen := map[string]bool{}
	var out []*pkg
	var visit func(p *pkg)
	visit = func(p *pkg) {
		if seen[p.Path] {
			return
		}
		seen[p.Path] = true
		out = append(out, p)
		for _, d := range p.Deps {
			if q := resolve(byPath, p.Path, d); q != nil {
				visit(q)
			}
		}
	}
	for _, r := range roots {
		visit(r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
