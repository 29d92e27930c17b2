package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/internal/fsutil"
	"github.com/layerpack/layerpack/internal/hostcmd"
)

// tools finds and versions the host's node and package managers, once each.
type tools struct {
	lookPath func(string) (string, error)
	run      func(ctx context.Context, name string, args ...string) (string, error)

	mu       sync.Mutex
	versions map[string]versionResult
}

type versionResult struct {
	path, version string
	err           error
}

func newTools() *tools {
	return &tools{
		lookPath: exec.LookPath,
		run: func(ctx context.Context, name string, args ...string) (string, error) {
			out, err := exec.CommandContext(ctx, name, args...).Output()
			return strings.TrimSpace(string(out)), err
		},
		versions: map[string]versionResult{},
	}
}

// version returns the path and `NAME --version` of a host tool.
func (t *tools) version(name string) (string, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.versions[name]; ok {
		return r.path, r.version, r.err
	}
	var r versionResult
	r.path, r.err = t.lookPath(name)
	if r.err != nil {
		r.err = fmt.Errorf("%s is not on PATH", name)
	} else if v := scriptVersion(r.path, name); v != "" {
		r.version = v // no process: `npm --version` takes 0.4 s, most of a cached build
	} else {
		r.version, r.err = t.run(context.Background(), r.path, "--version")
		if r.err != nil {
			r.err = fmt.Errorf("%s --version: %w", name, r.err)
		}
		r.version = strings.TrimPrefix(r.version, "v")
	}
	t.versions[name] = r
	return r.path, r.version, r.err
}

// scriptVersion reads the version of a package manager installed as a Node.js
// package (npm, pnpm, yarn): the package.json of the package its command links
// to. "" when the command is not such a link.
func scriptVersion(cmd, name string) string {
	real, err := filepath.EvalSymlinks(cmd)
	if err != nil || !strings.HasSuffix(real, ".js") && !strings.HasSuffix(real, ".cjs") {
		return ""
	}
	dir := filepath.Dir(real)
	for range 3 {
		b, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err == nil {
			var m struct{ Name, Version string }
			if json.Unmarshal(b, &m) == nil && m.Name == name && semverRe.MatchString(m.Version) {
				return m.Version
			}
		}
		dir = filepath.Dir(dir)
	}
	return ""
}

var semverRe = regexp.MustCompile(`^(\d+)\.(\d+)`)

// atLeast reports whether version v (1.2.3) is at least major.minor.
func atLeast(v string, major, minor int) bool {
	m := semverRe.FindStringSubmatch(v)
	if m == nil {
		return false
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	return a > major || a == major && b >= minor
}

// hostInstall is one package-manager run on the host.
type hostInstall struct {
	Tool string   // npm, pnpm or yarn
	Args []string // after the tool
	Env  []string // added to the host environment
	// Foreign is true when the command installs packages for every platform and
	// relies on dropForeign to remove the others (no target selection).
	Foreign bool
	// YarnRC is appended to the install folder's .yarnrc.yml (yarn berry).
	YarnRC string
}

// hostCommand builds the host install for a project and target: a clean, frozen
// install of production dependencies only, without install scripts, for target.
func hostCommand(p *project, version string, t platform) (*hostInstall, error) {
	cross := t.CPU != hostCPU()
	switch p.Manager {
	case npm:
		c := &hostInstall{Tool: npm, Args: []string{"ci", "--omit=dev", "--ignore-scripts", "--install-links",
			"--no-audit", "--no-fund", "--no-update-notifier"}}
		if atLeast(version, 10, 1) {
			c.Args = append(c.Args, t.npmFlags()...)
		} else if cross {
			return nil, fmt.Errorf("npm %s on this host cannot pick packages for %s: --os/--cpu/--libc need npm 10.1 or later "+
				"(npm install -g npm@10), or set build = \"container\"", version, t)
		} else {
			c.Foreign = true // musl builds are removed afterwards
		}
		return c, nil
	case pnpm:
		c := &hostInstall{Tool: pnpm, Args: []string{"install", "--frozen-lockfile", "--prod", "--ignore-scripts",
			"--config.node-linker=hoisted", "--config.package-import-method=copy"}}
		if atLeast(version, 10, 14) {
			c.Args = append(c.Args, t.npmFlags()...)
		} else if cross {
			return nil, fmt.Errorf("pnpm %s on this host cannot pick packages for %s: --os/--cpu/--libc need pnpm 10.14 or later", version, t)
		} else {
			c.Foreign = true
		}
		return c, nil
	case yarn:
		if atLeast(version, 2, 0) {
			return &hostInstall{Tool: yarn, Args: []string{"workspaces", "focus", "--all", "--production"},
				Env: []string{"YARN_NODE_LINKER=node-modules", "YARN_ENABLE_SCRIPTS=false",
					"YARN_ENABLE_IMMUTABLE_INSTALLS=true", "YARN_ENABLE_TELEMETRY=false", "YARN_ENABLE_GLOBAL_CACHE=true"},
				YarnRC: fmt.Sprintf("supportedArchitectures:\n  os: [%s]\n  cpu: [%s]\n  libc: [%s]\n", t.OS, t.CPU, t.Libc),
			}, nil
		}
		// Yarn 1 has no target selection: install every platform's packages,
		// then drop the others.
		return &hostInstall{Tool: yarn, Foreign: true, Args: []string{"install", "--frozen-lockfile", "--production",
			"--ignore-scripts", "--ignore-platform", "--ignore-engines", "--non-interactive", "--no-progress"}}, nil
	}
	return nil, fmt.Errorf("unknown package manager %q", p.Manager)
}

// String is the command line, for plan and logs.
func (c *hostInstall) String() string {
	return c.Tool + " " + strings.Join(c.Args, " ")
}

// prepareSource copies what an install reads into a fresh folder under work: the
// project files (package.json, lockfile, config, .npmrc when withNpmrc) and the
// local dependencies at the same relative places, so "file:../x.tgz" still
// resolves. It returns the folder that stands for the project and its path
// relative to the returned root.
func prepareSource(p *project, work string, withNpmrc bool) (root, rel string, err error) {
	up := 0
	for _, d := range p.LocalDeps {
		if path.IsAbs(d) {
			continue
		}
		n := 0
		for _, part := range strings.Split(d, "/") {
			if part == ".." {
				n++
			} else {
				break
			}
		}
		up = max(up, n)
	}
	root = filepath.Join(work, "src")
	rel = "project"
	for range up {
		rel = "p/" + rel // room for ".." to stay inside root
	}
	dir := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	for _, f := range p.sources() {
		if f == ".npmrc" && !withNpmrc {
			continue
		}
		if err := copyAny(filepath.Join(p.Dir, filepath.FromSlash(f)), filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			return "", "", err
		}
	}
	for _, d := range p.LocalDeps {
		if path.IsAbs(d) {
			continue // found where it is
		}
		src := filepath.Join(p.Dir, filepath.FromSlash(d))
		if _, err := os.Stat(src); err != nil {
			return "", "", fmt.Errorf("%s names a local dependency %s: %w", p.Lockfile, d, err)
		}
		if err := copyAny(src, filepath.Join(dir, filepath.FromSlash(d))); err != nil {
			return "", "", err
		}
	}
	return root, rel, nil
}

// copyAny copies a file or a folder (without node_modules and .git), following
// symlinks to files.
func copyAny(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return fsutil.CopyFile(src, dst, st.Mode().Perm())
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && rel != "." && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := os.Stat(p)
		if err != nil || info.IsDir() {
			return err
		}
		return fsutil.CopyFile(p, target, info.Mode().Perm())
	})
}

// runHost runs the install in dir with the builder's environment plus the
// command's, its output going to log.
func runHost(ctx context.Context, toolPath string, c *hostInstall, dir string, environ []string, log io.Writer) error {
	if c.YarnRC != "" {
		rc := filepath.Join(dir, ".yarnrc.yml")
		old, err := os.ReadFile(rc)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if !strings.Contains(string(old), "supportedArchitectures") {
			if len(old) > 0 && !strings.HasSuffix(string(old), "\n") {
				old = append(old, '\n')
			}
			if err := os.WriteFile(rc, append(old, c.YarnRC...), 0o644); err != nil {
				return err
			}
		}
	}
	env := append(append([]string(nil), environ...), c.Env...)
	env = append(env, "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	_, err := hostcmd.Run(ctx, hostcmd.Cmd{What: c.String(), Path: toolPath, Args: c.Args, Dir: dir, Env: env, Log: log, Tail: 25})
	return err
}

// dropForeignLogged is dropForeign that says what it left out.
func dropForeignLogged(root string, pkgs []*pkg, t platform, logf func(string, ...any)) ([]*pkg, error) {
	removed, kept, err := dropForeign(root, pkgs, t)
	if err != nil {
		return nil, err
	}
	if len(removed) > 0 {
		logf("left out %d packages for another platform than %s: %s", len(removed), t, strings.Join(removed, ", "))
	}
	return kept, nil
}

// hostInstall installs on the host and, in auto mode, builds native addons in
// the build container. It returns the folder holding node_modules and the
// packages in it.
func (b *Builder) hostInstall(ctx context.Context, j *builders.Job, p *project, t platform, ms []int,
	logf func(string, ...any)) (string, []*pkg, error) {
	toolPath, version, err := b.tools.version(p.Manager)
	if err != nil {
		return "", nil, fmt.Errorf("%s (for %s in %s)", err, p.Lockfile, j.Layer.Node.Dir)
	}
	c, err := hostCommand(p, version, t)
	if err != nil {
		return "", nil, err
	}
	srcRoot, rel, err := prepareSource(p, j.Work, true)
	if err != nil {
		return "", nil, err
	}
	root := filepath.Join(srcRoot, filepath.FromSlash(rel))
	logf("%s (%s %s)", c, p.Manager, version)
	if err := runHost(ctx, toolPath, c, root, b.env(), logOf(j)); err != nil {
		return "", nil, err
	}
	// What the install read is not part of the layer.
	for _, f := range p.sources() {
		if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(f))); err != nil {
			return "", nil, err
		}
	}
	pkgs, err := scanTree(root)
	if err != nil {
		return "", nil, err
	}
	if pkgs, err = dropForeignLogged(root, pkgs, t, logf); err != nil {
		return "", nil, err
	}
	need, skipped := decide(root, pkgs, t, moduleABIs(ms))
	for _, d := range skipped {
		logf("%s: %s", d.Pkg.Path, d.Why)
	}
	if len(need) == 0 {
		return root, pkgs, nil
	}
	var names []string
	for _, d := range need {
		names = append(names, fmt.Sprintf("%s@%s (%s)", d.Pkg.Name, d.Pkg.Version, d.Why))
	}
	if mode(j.Layer.Node) == modeHost {
		return "", nil, fmt.Errorf("build = \"host\" never compiles, but these packages need a native build for %s: %s; "+
			"set build = \"auto\" to compile them in the build container", t, strings.Join(names, "; "))
	}
	if j.Image == "" || j.Engine == nil {
		return "", nil, fmt.Errorf("these packages need a native build for %s but the lockfile did not say so when the build was planned: %s; "+
			"set build = \"container\"", t, strings.Join(names, "; "))
	}
	for _, d := range need {
		logf("native build in the container: %s@%s: %s", d.Pkg.Name, d.Pkg.Version, d.Why)
	}
	built, err := b.rebuild(ctx, j, p, root, pkgs, need, ms, logf)
	if err != nil {
		return "", nil, err
	}
	if len(built) != len(need) { // failed optional packages are gone
		if pkgs, err = scanTree(root); err != nil {
			return "", nil, err
		}
	}
	return root, pkgs, nil
}
