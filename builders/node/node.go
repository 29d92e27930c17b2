// Package node is the builder for [layer.NAME.node]: the production node_modules
// of a project with a lockfile, for one Lambda architecture.
//
// With build = "auto" (the default) the package manager installs on the host,
// for the target platform (npm --os=linux --cpu=x64|arm64 --libc=glibc) and
// without install scripts; then the packages that need a native build (install
// scripts that compile, binding.gyp, no prebuilt binary for the target) are
// built in the build container of the target architecture: their install
// scripts run there as npm would run them (node-gyp rebuild when there is only a
// binding.gyp), from source when they would download a prebuilt binary.
// "container" runs the whole install there, "host" never uses a container.
//
// The tree is then made reproducible and small: package-manager bookkeeping and
// native build intermediates (config.gypi, Makefiles, object files) go, only the
// built shared objects stay; "safe" pruning removes docs, tests, source maps and
// TypeScript sources, never licences. It lands in nodejs/node_modules, or
// nodejs/nodeNN/node_modules per runtime major with layout = "versioned".
package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/layerpack/layerpack/internal/bytesize"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
)

// recipe names this builder's rules; change it when the output for the same
// inputs changes (it is part of every cache key).
const recipe = "node-builder 1"

// Builder installs Node.js dependencies.
type Builder struct {
	tools   *tools
	getenv  func(string) string
	environ func() []string
}

// New returns the Node.js builder.
func New() *Builder { return &Builder{tools: newTools(), getenv: os.Getenv, environ: os.Environ} }

// env is the environment whose npm_config_* registry variables steps get.
func (b *Builder) env() []string {
	if b.environ == nil {
		return os.Environ()
	}
	return b.environ()
}

func (*Builder) Name() string                 { return "node" }
func (*Builder) Applies(l *config.Layer) bool { return l.Node != nil }

// Build modes.
const (
	modeAuto      = "auto"
	modeHost      = "host"
	modeContainer = "container"
)

func mode(n *config.Node) string {
	if n.Build == "" {
		return modeAuto
	}
	return n.Build
}

// Engine: always for "container", never for "host"; for "auto" always when the
// lockfile has a package with install scripts for the target (it may need a native
// build, so the image's digest is keyed), else maybe.
func (b *Builder) Engine(l *config.Layer, t builders.Target) builders.EngineNeeds {
	switch mode(l.Node) {
	case modeContainer:
		return builders.EngineNeeds{Use: builders.UsesEngine}
	case modeHost:
		return builders.EngineNeeds{Use: builders.NoEngine}
	}
	p, err := loadProject(l.Node.AbsDir, l.Node.Dir)
	if err != nil {
		return builders.EngineNeeds{Use: builders.MaybeEngine} // Inputs reports it, before anything needs a daemon
	}
	if may, err := p.mayRunScripts(targetPlatform(t.Arch)); err != nil || may {
		return builders.EngineNeeds{Use: builders.UsesEngine}
	}
	return builders.EngineNeeds{Use: builders.MaybeEngine}
}

// Inputs are the project files an install reads, local dependencies, the host
// tools' versions and this builder's recipe. .npmrc and the variables it refers
// to are only ever hashed; the user's npm config and npm_config_* registry
// variables enter with their credentials masked (npmConfig.keyText).
func (b *Builder) Inputs(l *config.Layer, t builders.Target) ([]builders.Input, error) {
	n := l.Node
	p, err := loadProject(n.AbsDir, n.Dir)
	if err != nil {
		return nil, err
	}
	if err := checkLocalDeps(p, n); err != nil {
		return nil, err
	}
	var in []builders.Input
	for _, f := range p.sources() {
		in = append(in, builders.Input{Name: "file:" + f, Path: filepath.Join(p.Dir, filepath.FromSlash(f))})
	}
	rc, err := loadNpmConfig(p, n.Dir, b.getenv, b.env())
	if err != nil {
		return nil, err
	}
	if rc != nil {
		for _, name := range rc.Refs {
			v := "unset"
			if s := b.getenv(name); s != "" {
				v = "sha256:" + sha256Hex(s)
			}
			in = append(in, builders.Input{Name: "env:" + name + " (from .npmrc)", Value: v})
		}
		// The user's and the environment's registry settings, credentials masked
		// (a lockfile pins what is installed; these say where it comes from).
		if t := rc.keyText(); t != "" {
			in = append(in, builders.Input{Name: "npm config (user, environment; credentials masked)", Value: t})
		}
	}
	for _, d := range p.LocalDeps {
		abs := d
		if !filepath.IsAbs(d) {
			abs = filepath.Join(p.Dir, filepath.FromSlash(d))
		}
		in = append(in, builders.Input{Name: "local:" + d, Path: abs})
	}
	if mode(n) == modeContainer {
		if p.Manager != npm {
			return nil, fmt.Errorf("build = \"container\" installs with npm in the build image; %s (%s) needs build = \"auto\" or \"host\" with %s on this machine",
				p.Lockfile, p.Manager, p.Manager)
		}
	} else {
		for _, tool := range []string{p.Manager, "node"} {
			_, v, err := b.tools.version(tool)
			if err != nil {
				return nil, fmt.Errorf("%s (for %s in %s)", err, p.Lockfile, n.Dir)
			}
			in = append(in, builders.Input{Name: "tool:" + tool, Value: v})
		}
	}
	in = append(in, builders.Input{Name: "recipe", Value: recipe + " " + sha256Hex(rebuildScript+installScript)})
	return in, nil
}

// Steps describes the build for `layerpack plan`.
func (b *Builder) Steps(l *config.Layer, t builders.Target) []string {
	n := l.Node
	tp := targetPlatform(t.Arch)
	p, err := loadProject(n.AbsDir, n.Dir)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var s []string
	src := fmt.Sprintf("%s/%s", n.Dir, p.Lockfile)
	switch mode(n) {
	case modeContainer:
		s = append(s, fmt.Sprintf("npm ci --omit=dev in the build container for %s, install scripts included, from %s (native code compiled from source)", t.Arch.Platform(), src))
		s = append(s, "drop packages whose os/cpu/libc exclude "+tp.String())
	default:
		_, v, verr := b.tools.version(p.Manager)
		var line string
		if c, err := hostCommand(p, v, tp); verr == nil && err == nil {
			line = fmt.Sprintf("%s on the host (%s %s), from %s", c, p.Manager, v, src)
		} else if verr != nil {
			line = "error: " + verr.Error()
		} else {
			line = "error: " + err.Error()
		}
		s = append(s, line, "drop packages whose os/cpu/libc exclude "+tp.String())
		if mode(n) == modeHost {
			s = append(s, "fail if a package needs a native build (build = \"host\" never uses a container)")
		} else {
			s = append(s, fmt.Sprintf("run the install scripts (node-gyp rebuild, ...) of the packages that need a native build "+
				"(install scripts that compile, binding.gyp, no prebuilt for %s) in the build container for %s; prebuilt downloads become source builds", tp, t.Arch.Platform()))
		}
	}
	if mode(n) != modeHost {
		switch rc, err := loadNpmConfig(p, n.Dir, b.getenv, b.env()); {
		case err != nil:
			s = append(s, "error: "+err.Error())
		case rc != nil:
			s = append(s, rc.describe()...)
		}
	}
	s = append(s, "keep only the built .node/.so files of native builds (drop build/ intermediates, build-tmp-*)",
		"remove package-manager files (.package-lock.json, .cache, ...) and links that leave the tree")
	if n.Prune == "safe" {
		what := "*.md (not licences), *.map, *.ts (not .d.ts), test/tests/__tests__/example(s)/docs/.github folders"
		if n.PruneTypes {
			what = "*.md (not licences), *.map, *.ts and *.d.ts, test/tests/__tests__/example(s)/docs/.github folders"
		}
		s = append(s, "prune (safe): "+what)
	}
	s = append(s, "place in "+strings.Join(destinations(n, t.Runtimes), ", "))
	return s
}

// destinations are the folders of the layer that receive node_modules.
func destinations(n *config.Node, runtimes []lambda.Runtime) []string {
	if n.Layout != "versioned" {
		return []string{"nodejs/node_modules"}
	}
	var out []string
	for _, m := range majors(runtimes) {
		out = append(out, fmt.Sprintf("nodejs/node%d/node_modules", m))
	}
	return out
}

// majors are the Node.js majors of the layer's Node.js runtimes, sorted.
func majors(runtimes []lambda.Runtime) []int {
	seen := map[int]bool{}
	var out []int
	for _, r := range runtimes {
		if r.Language != lambda.Node {
			continue
		}
		var m int
		if _, err := fmt.Sscan(r.Version, &m); err == nil && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Ints(out)
	return out
}

func moduleABIs(ms []int) []int {
	var out []int
	for _, m := range ms {
		if v, ok := moduleVersions[m]; ok {
			out = append(out, v)
		}
	}
	return out
}

// Build installs, builds, cleans, prunes and places node_modules.
func (b *Builder) Build(ctx context.Context, j *builders.Job) error {
	n := j.Layer.Node
	log := j.Log
	if log == nil {
		log = io.Discard
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(log, "%s (%s): node: %s\n", j.Layer.Name, j.Target.Arch, fmt.Sprintf(format, a...))
	}
	p, err := loadProject(n.AbsDir, n.Dir)
	if err != nil {
		return err
	}
	if err := checkLocalDeps(p, n); err != nil {
		return err
	}
	t := targetPlatform(j.Target.Arch)
	ms := majors(j.Target.Runtimes)
	var root string // the folder holding node_modules
	var pkgs []*pkg
	switch mode(n) {
	case modeContainer:
		if root, err = b.containerInstall(ctx, j, p, ms, logf); err != nil {
			return err
		}
		if pkgs, err = scanTree(root); err != nil {
			return err
		}
		if pkgs, err = dropForeignLogged(root, pkgs, t, logf); err != nil {
			return err
		}
	default:
		if root, pkgs, err = b.hostInstall(ctx, j, p, t, ms, logf); err != nil {
			return err
		}
	}
	if n.Prune == "safe" {
		st, err := prune(root, pkgs, n.PruneTypes)
		if err != nil {
			return fmt.Errorf("pruning: %w", err)
		}
		logf("prune (safe) removed %d files, %s saved", st.Files, bytesize.Format(st.Bytes))
	}
	if _, err := cleanTree(root, pkgs); err != nil {
		return fmt.Errorf("cleaning node_modules: %w", err)
	}
	return place(root, j, n)
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

// rebuild runs the install scripts of the packages in need in the build
// container, on a copy of them and their dependencies, and lays the results
// over root.
func (b *Builder) rebuild(ctx context.Context, j *builders.Job, p *project, root string, pkgs []*pkg, need []*decision,
	ms []int, logf func(string, ...any)) ([]*pkg, error) {
	var roots []*pkg
	var paths []string
	for _, d := range need {
		roots = append(roots, d.Pkg)
		paths = append(paths, d.Pkg.Path)
	}
	sub := filepath.Join(j.Work, "native")
	for _, q := range closure(pkgs, roots) {
		if err := copyTree(filepath.Join(root, filepath.FromSlash(q.Path)), filepath.Join(sub, filepath.FromSlash(q.Path)), true, true); err != nil {
			return nil, err
		}
	}
	if err := copyBinLinks(root, sub, pkgs); err != nil {
		return nil, err
	}
	script := lifecycleScript(workDir, buildOrder(pkgs, need), p.optional())
	if err := os.WriteFile(filepath.Join(sub, buildFile), []byte(script), 0o644); err != nil {
		return nil, err
	}
	secs, env, err := b.secrets(p, j.Layer.Node.Dir, j.Work, logf)
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = map[string]string{}
	}
	env["LAYERPACK_REBUILD"] = strings.Join(paths, "\n")
	dest := filepath.Join(j.Work, "native-out")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	step := j.Step(stepName(j, "native build"), j.Target.Arch, j.Image, engine.Step{
		Script:  rebuildScript,
		Dir:     "/",
		Env:     stepEnv(env),
		Mounts:  []engine.Mount{{Source: sub, Target: treeMount}},
		Caches:  []engine.Cache{{Key: "npm", Target: npmCache}},
		Secrets: secs,
		Output:  outDir,
		Dest:    dest,
	})
	if err := j.Engine.Run(ctx, step); err != nil {
		return nil, err
	}
	major, err := readNodeInfo(dest)
	if err != nil {
		return nil, err
	}
	failed := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dest, "failed-optional")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			failed[l] = true
		}
	}
	var built []*pkg
	for _, q := range roots {
		if failed[q.Path] {
			logf("%s: optional dependency failed to build; left out, as npm does", q.Path)
			if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(q.Path))); err != nil {
				return nil, err
			}
			continue
		}
		out := filepath.Join(dest, "tree", filepath.FromSlash(q.Path))
		if _, err := os.Stat(out); err != nil {
			return nil, fmt.Errorf("the native build step did not export %s: %w", q.Path, err)
		}
		if err := copyTree(out, filepath.Join(root, filepath.FromSlash(q.Path)), false, false); err != nil {
			return nil, err
		}
		built = append(built, q)
	}
	if err := fixBuilt(root, built, major, ms, j.Image, logf); err != nil {
		return nil, err
	}
	return built, nil
}

// copyBinLinks copies, from every node_modules/.bin of root to sub, the links
// whose targets sub holds: the commands install scripts call (node-pre-gyp,
// prebuild-install, node-gyp-build...).
func copyBinLinks(root, sub string, pkgs []*pkg) error {
	dirs := []string{"node_modules/.bin"}
	for _, p := range pkgs {
		dirs = append(dirs, p.Path+"/node_modules/.bin")
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(d)))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.Type()&os.ModeSymlink == 0 {
				continue
			}
			rel := filepath.Join(filepath.FromSlash(d), e.Name())
			target, err := os.Readlink(filepath.Join(root, rel))
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				continue
			}
			if _, err := os.Stat(filepath.Join(sub, filepath.Dir(rel), target)); err != nil {
				continue // its package is not needed for the build
			}
			if err := os.MkdirAll(filepath.Join(sub, filepath.Dir(rel)), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(target, filepath.Join(sub, rel)); err != nil {
				return err
			}
		}
	}
	return nil
}

// fixBuilt checks and fixes the addons the build image compiled: Debian's
// libnode dependency goes, V8-API addons must match the runtimes' Node.js.
func fixBuilt(root string, built []*pkg, imageMajor int, ms []int, image string, logf func(string, ...any)) error {
	changed, err := dropLibnodeTree(root, built)
	if err != nil {
		return err
	}
	for _, c := range changed {
		logf("%s: removed the DT_NEEDED libnode.so the build image's node-gyp adds (Lambda's node has no libnode; it exports those symbols itself)", c)
	}
	return checkABI(root, built, imageMajor, ms, image)
}

// containerInstall runs the whole install in the build container and returns
// the folder holding node_modules.
func (b *Builder) containerInstall(ctx context.Context, j *builders.Job, p *project, ms []int, logf func(string, ...any)) (string, error) {
	if p.Manager != npm {
		return "", fmt.Errorf("build = \"container\" installs with npm in the build image; %s needs build = \"auto\" or \"host\"", p.Lockfile)
	}
	for _, d := range p.LocalDeps {
		if filepath.IsAbs(d) {
			return "", fmt.Errorf("%s installs from %s, an absolute path the build container cannot see; use a path relative to %s",
				p.Lockfile, d, j.Layer.Node.Dir)
		}
	}
	srcRoot, rel, err := prepareSource(p, j.Work, false)
	if err != nil {
		return "", err
	}
	secs, env, err := b.secrets(p, j.Layer.Node.Dir, j.Work, logf)
	if err != nil {
		return "", err
	}
	if env == nil {
		env = map[string]string{}
	}
	env["LAYERPACK_PROJECT"] = rel
	dest := filepath.Join(j.Work, "install-out")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", err
	}
	step := j.Step(stepName(j, "install"), j.Target.Arch, j.Image, engine.Step{
		Script:  installScript,
		Dir:     "/",
		Env:     stepEnv(env),
		Mounts:  []engine.Mount{{Source: srcRoot, Target: srcMount}},
		Caches:  []engine.Cache{{Key: "npm", Target: npmCache}},
		Secrets: secs,
		Output:  outDir,
		Dest:    dest,
	})
	if err := j.Engine.Run(ctx, step); err != nil {
		return "", err
	}
	major, err := readNodeInfo(dest)
	if err != nil {
		return "", err
	}
	if err := os.Remove(filepath.Join(dest, nodeInfo)); err != nil {
		return "", err
	}
	pkgs, err := scanTree(dest)
	if err != nil {
		return "", err
	}
	var gyp []*pkg
	for _, q := range pkgs {
		if q.HasGyp {
			gyp = append(gyp, q)
		}
	}
	if err := fixBuilt(dest, gyp, major, ms, j.Image, logf); err != nil {
		return "", err
	}
	return dest, nil
}

// place moves root/node_modules to each destination of the layout in the stage.
func place(root string, j *builders.Job, n *config.Node) error {
	nm := filepath.Join(root, "node_modules")
	if _, err := os.Stat(nm); os.IsNotExist(err) {
		if err := os.MkdirAll(nm, 0o755); err != nil { // no production dependencies
			return err
		}
	}
	out := filepath.Join(j.Work, "opt")
	dests := destinations(n, j.Target.Runtimes)
	if len(dests) == 0 {
		return fmt.Errorf("layout = \"versioned\" needs a Node.js runtime in compatible_runtimes")
	}
	for i, d := range dests {
		target := filepath.Join(out, filepath.FromSlash(d))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if i == len(dests)-1 {
			if err := os.Rename(nm, target); err != nil {
				return err
			}
			continue
		}
		if err := copyTree(nm, target, false, true); err != nil {
			return err
		}
	}
	return builders.Merge(out, j.Stage)
}

func logOf(j *builders.Job) io.Writer {
	if j.Log == nil {
		return io.Discard
	}
	return j.Log
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var _ builders.Builder = (*Builder)(nil)
