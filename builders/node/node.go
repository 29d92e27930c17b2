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
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/internal/bytesize"
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
	if mode(n) != modeHost {
		in = append(in, builders.CompileInput(l.CrossCompile, t))
	}
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
		s = append(s, "native builds: "+builders.DescribeCompile(l.CrossCompile, t))
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
