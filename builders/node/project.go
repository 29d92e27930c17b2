package node

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Package managers.
const (
	npm  = "npm"
	pnpm = "pnpm"
	yarn = "yarn"
)

// lockfiles in the order a package manager prefers them (npm reads
// npm-shrinkwrap.json before package-lock.json).
var lockfiles = []struct{ file, manager string }{
	{"npm-shrinkwrap.json", npm},
	{"package-lock.json", npm},
	{"pnpm-lock.yaml", pnpm},
	{"yarn.lock", yarn},
}

// configFiles are project files, beside package.json, that change what a package
// manager installs. They are copied into the install folder and are cache inputs.
// .npmrc is handled on its own: it can hold credentials.
var configFiles = map[string][]string{
	npm:  nil,
	pnpm: {"pnpm-workspace.yaml", ".pnpmfile.cjs", "patches"},
	yarn: {".yarnrc", ".yarnrc.yml", ".yarn/releases", ".yarn/plugins", ".yarn/patches", "patches"},
}

// project is the folder named by [layer.NAME.node] dir, as read before installing.
type project struct {
	Dir      string // absolute
	Manager  string // npm, pnpm or yarn
	Lockfile string // base name of the lockfile used
	Pkg      packageJSON
	// Config lists the configFiles present (slash paths relative to Dir).
	Config []string
	// Npmrc is true when Dir has a .npmrc.
	Npmrc bool
	// NpmrcEnv are the variables .npmrc refers to as ${NAME}, sorted.
	NpmrcEnv []string
	// LocalDeps are the local folders and tarballs the lockfile installs from
	// ("file:" specs and links), as slash paths relative to Dir, sorted.
	LocalDeps []string
}

type packageJSON struct {
	Name           string `json:"name"`
	PackageManager string `json:"packageManager"`
}

// loadProject reads package.json and finds the lockfile and the package manager.
// shown is the folder as the user wrote it, for messages.
func loadProject(dir, shown string) (*project, error) {
	p := &project{Dir: dir}
	raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no package.json in %s", shown)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &p.Pkg); err != nil {
		return nil, fmt.Errorf("%s: %v", path.Join(shown, "package.json"), err)
	}
	found := map[string]string{} // manager -> lockfile
	var names []string
	for _, l := range lockfiles {
		if _, ok := found[l.manager]; ok {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, l.file)); err == nil && st.Mode().IsRegular() {
			found[l.manager] = l.file
			names = append(names, l.file)
		}
	}
	want := ""
	if pm := p.Pkg.PackageManager; pm != "" {
		want, _, _ = strings.Cut(pm, "@")
		if _, ok := configFiles[want]; !ok {
			return nil, fmt.Errorf("%s: packageManager %q: layerpack installs with npm, pnpm or yarn", path.Join(shown, "package.json"), pm)
		}
	}
	switch {
	case len(found) == 0:
		return nil, missingLockfile(shown, want)
	case want != "":
		lf, ok := found[want]
		if !ok {
			return nil, fmt.Errorf("%s says packageManager %q but %s has no %s lockfile (found %s)",
				path.Join(shown, "package.json"), p.Pkg.PackageManager, shown, want, strings.Join(names, ", "))
		}
		p.Manager, p.Lockfile = want, lf
	case len(found) > 1:
		return nil, fmt.Errorf("%s has several lockfiles (%s): set packageManager in package.json to choose, or delete the stale one",
			shown, strings.Join(names, ", "))
	default:
		for m, lf := range found {
			p.Manager, p.Lockfile = m, lf
		}
	}
	for _, c := range configFiles[p.Manager] {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(c))); err == nil {
			p.Config = append(p.Config, c)
		}
	}
	if rc, err := os.ReadFile(filepath.Join(dir, ".npmrc")); err == nil {
		p.Npmrc = true
		p.NpmrcEnv = npmrcEnvRefs(string(rc))
	}
	lock, err := os.ReadFile(filepath.Join(dir, p.Lockfile))
	if err != nil {
		return nil, err
	}
	p.LocalDeps = localDeps(p.Lockfile, lock)
	return p, nil
}

// missingLockfile is the error for a project without a lockfile.
func missingLockfile(shown, manager string) error {
	hint := `"npm install --package-lock-only" writes package-lock.json`
	switch manager {
	case pnpm:
		hint = `"pnpm install --lockfile-only" writes pnpm-lock.yaml`
	case yarn:
		hint = `"yarn install" writes yarn.lock`
	}
	return fmt.Errorf("no lockfile in %s: layerpack installs exactly what a lockfile pins; "+
		"add package-lock.json, npm-shrinkwrap.json, pnpm-lock.yaml or yarn.lock (%s) and keep it with package.json", shown, hint)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// npmrcEnvRefs lists the ${NAME} variables an .npmrc uses (npm expands them).
func npmrcEnvRefs(rc string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range envRef.FindAllStringSubmatch(rc, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

// fileSpec finds "file:PATH" specs in any lockfile format.
var fileSpec = regexp.MustCompile(`file:([^\s"',()#{}]+)`)

// localDeps lists the local paths a lockfile installs from, relative to the
// project, sorted: "file:" tarballs and folders, and npm's links.
func localDeps(lockfile string, data []byte) []string {
	seen := map[string]bool{}
	add := func(p string) {
		p = strings.TrimSuffix(strings.TrimPrefix(p, "file:"), "/")
		if p == "" || strings.Contains(p, "://") {
			return
		}
		if !path.IsAbs(p) {
			p = path.Clean(p)
		}
		seen[p] = true
	}
	if lockfile == "package-lock.json" || lockfile == "npm-shrinkwrap.json" {
		var l npmLock
		if json.Unmarshal(data, &l) == nil {
			for k, e := range l.Packages {
				switch {
				case e.Link:
					add(e.Resolved)
				case strings.HasPrefix(e.Resolved, "file:"):
					add(e.Resolved)
				case k != "" && !strings.HasPrefix(k, "node_modules/") && !strings.Contains(k, "/node_modules/"):
					add(k) // the target of a link
				}
			}
			var walk func(map[string]npmLockV1Dep)
			walk = func(deps map[string]npmLockV1Dep) {
				for _, d := range deps {
					if strings.HasPrefix(d.Version, "file:") {
						add(d.Version)
					}
					walk(d.Dependencies)
				}
			}
			walk(l.Dependencies)
		}
	} else {
		for _, m := range fileSpec.FindAllSubmatch(data, -1) {
			add(strings.TrimRight(string(m[1]), ":")) // a YAML key ends with one
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// npmLock is the part of package-lock.json (v1 to v3) layerpack reads.
type npmLock struct {
	LockfileVersion int                     `json:"lockfileVersion"`
	Packages        map[string]npmLockEntry `json:"packages"`
	Dependencies    map[string]npmLockV1Dep `json:"dependencies"`
}

type npmLockEntry struct {
	Version          string   `json:"version"`
	Resolved         string   `json:"resolved"`
	Link             bool     `json:"link"`
	Dev              bool     `json:"dev"`
	Optional         bool     `json:"optional"`
	HasInstallScript bool     `json:"hasInstallScript"`
	OS               []string `json:"os"`
	CPU              []string `json:"cpu"`
	Libc             []string `json:"libc"`
}

type npmLockV1Dep struct {
	Version      string                  `json:"version"`
	Dev          bool                    `json:"dev"`
	Requires     map[string]string       `json:"requires"`
	Dependencies map[string]npmLockV1Dep `json:"dependencies"`
}

// mayRunScripts reports whether installing the lockfile for target can run an
// install script: whether "auto" may need the build container. It errs on the
// side of yes when the lockfile does not say.
func (p *project) mayRunScripts(t platform) (bool, error) {
	data, err := os.ReadFile(filepath.Join(p.Dir, p.Lockfile))
	if err != nil {
		return false, err
	}
	switch p.Manager {
	case npm:
		var l npmLock
		if err := json.Unmarshal(data, &l); err != nil {
			return false, fmt.Errorf("%s: %v", p.Lockfile, err)
		}
		if l.Packages == nil {
			return true, nil // lockfile v1 does not record install scripts
		}
		for k, e := range l.Packages {
			if k == "" || e.Dev || !t.accepts(e.OS, e.CPU, e.Libc) {
				continue
			}
			if e.HasInstallScript {
				return true, nil
			}
			// A lockfile written with --package-lock-only does not record the
			// implicit node-gyp script of local packages: look at them.
			local := ""
			switch {
			case e.Link:
				local = e.Resolved
			case strings.HasPrefix(e.Resolved, "file:"):
				local = strings.TrimPrefix(e.Resolved, "file:")
			}
			if local != "" && localHasScripts(filepath.Join(p.Dir, filepath.FromSlash(local))) {
				return true, nil
			}
		}
		return false, nil
	}
	// pnpm-lock.yaml and yarn.lock do not reliably record install scripts.
	return true, nil
}

// localHasScripts reports whether a local package (a folder or a tarball from
// npm pack) has install scripts or a binding.gyp. Unreadable means yes.
func localHasScripts(p string) bool {
	st, err := os.Stat(p)
	if err != nil {
		return true
	}
	var manifest []byte
	gyp := false
	if st.IsDir() {
		_, err := os.Stat(filepath.Join(p, "binding.gyp"))
		gyp = err == nil
		if manifest, err = os.ReadFile(filepath.Join(p, "package.json")); err != nil {
			return true
		}
	} else {
		f, err := os.Open(p)
		if err != nil {
			return true
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return true
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			// npm pack puts everything under package/; other tools use other roots.
			_, name, _ := strings.Cut(h.Name, "/")
			switch name {
			case "binding.gyp":
				gyp = true
			case "package.json":
				if manifest, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
					return true
				}
			}
		}
		if manifest == nil {
			return true
		}
	}
	var m struct {
		Scripts map[string]string `json:"scripts"`
	}
	if json.Unmarshal(manifest, &m) != nil {
		return true
	}
	for _, s := range installScripts {
		if m.Scripts[s] != "" {
			return true
		}
	}
	return gyp
}

// optional lists the packages the lockfile marks optional (npm only), by path:
// npm leaves out an optional package whose build fails.
func (p *project) optional() map[string]bool {
	out := map[string]bool{}
	if p.Manager != npm {
		return out
	}
	data, err := os.ReadFile(filepath.Join(p.Dir, p.Lockfile))
	if err != nil {
		return out
	}
	var l npmLock
	if json.Unmarshal(data, &l) != nil {
		return out
	}
	for k, e := range l.Packages {
		if e.Optional {
			out[k] = true
		}
	}
	return out
}

// sources lists the project files an install reads, as slash paths relative to
// Dir, sorted: package.json, the lockfile, the manager's config files and .npmrc.
func (p *project) sources() []string {
	s := []string{"package.json", p.Lockfile}
	s = append(s, p.Config...)
	if p.Npmrc {
		s = append(s, ".npmrc")
	}
	sort.Strings(s)
	return s
}
