// Package python is the builder for [layer.NAME.python]: it installs a requirements
// file or a pyproject.toml project into the layer for each target Python version and
// CPU, without emulation where it can.
//
// How a build goes, per architecture and per Python version of the layer's runtimes
// (see Steps for the words `layerpack plan` prints):
//
//  1. build = "auto" (the default) or "host": the host's pip (or uv) installs wheels
//     for the target - platform tags from the runtime's glibc and the CPU, the
//     runtime's CPython version and ABI, wheels only - into a folder. Environment
//     markers are evaluated for the target, not for the host (pip's own --platform
//     mode would evaluate them for the host). Nothing runs under QEMU.
//  2. If some requirement has no wheel for the target, "host" fails naming them;
//     "auto" finds them (a dry-run resolution that may pick sdists), downloads their
//     sdists on the host, builds wheels from them with `pip wheel` inside the build
//     container for the target architecture (QEMU for a foreign one), and installs
//     the rest as wheels from the host plus the built wheels.
//  3. build = "container" runs `pip install --target` inside the build container.
//  4. The installed tree is made the same on every machine (tree.go), then
//     exclude_packages, prune, strip and compile apply, and the trees are laid out
//     under python/ (layout.go).
package python

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/internal/bytesize"
	"github.com/layerpack/layerpack/internal/redact"
	"github.com/layerpack/layerpack/lambda"
)

// Builder installs Python packages.
type Builder struct {
	// Python is the host interpreter whose pip runs the host steps ("" = python3).
	Python string
	// UV is the uv binary for installer = "uv" ("" = look up uv on PATH).
	UV string
	// Getenv and Environ read the environment (nil = the process's).
	Getenv  func(string) string
	Environ func() []string

	probeOnce sync.Once
	probe     hostTools
}

// New returns a builder that uses the host's python3 and uv.
func New() *Builder { return &Builder{} }

func (*Builder) Name() string                 { return "python" }
func (*Builder) Applies(l *config.Layer) bool { return l.Python != nil }

// Engine: always for build = "container", never for "host". With "auto" a
// container is used only when some requirement has no wheel for the target, which
// is not known before resolving: maybe; but bytecode (compile, on by default) is
// always compiled in the build image, so then always. Each Python version of the
// layer has its own image (the one of its first runtime), for the target's
// architecture and, for bytecode, for this machine's.
func (*Builder) Engine(l *config.Layer, t builders.Target) builders.EngineNeeds {
	use := builders.MaybeEngine
	switch buildMode(l.Python) {
	case "container":
		use = builders.UsesEngine
	case "host":
		return builders.EngineNeeds{Use: builders.NoEngine}
	}
	compile := compileOn(l.Python)
	why := ""
	if compile {
		if use != builders.UsesEngine {
			why = fmt.Sprintf("layer.%s.python: bytecode (compile, on by default) is compiled by the runtime's CPython in its build image; compile = false builds a layer of wheels without a daemon", l.Name)
		}
		use = builders.UsesEngine
	}
	var need []builders.ImageNeed
	for _, tg := range Targets(t.Runtimes, t.Arch) {
		need = append(need, builders.ImageNeed{Runtime: tg.Runtimes[0], Arch: t.Arch})
	}
	if compile && t.Arch != hostArch() {
		for _, tg := range Targets(t.Runtimes, t.Arch) {
			need = append(need, builders.ImageNeed{Runtime: tg.Runtimes[0], Arch: hostArch()})
		}
	}
	return builders.EngineNeeds{Use: use, Images: need, Why: why}
}

func buildMode(p *config.Python) string {
	if p.Build == "" {
		return "auto"
	}
	return p.Build
}

func installer(p *config.Python) string {
	if p.Installer == "" {
		return "pip"
	}
	return p.Installer
}

func layout(p *config.Python) string {
	if p.Layout == "" {
		return "site-packages"
	}
	return p.Layout
}

func (b *Builder) getenv(k string) string {
	if b.Getenv != nil {
		return b.Getenv(k)
	}
	return os.Getenv(k)
}

func (b *Builder) environ() []string {
	if b.Environ != nil {
		return b.Environ()
	}
	return os.Environ()
}

// recipe names the builder's own behaviour in the cache key: bump it when a change
// here changes the trees it produces.
const recipe = "python-builder/2"

// Inputs are the files and values the trees depend on besides the config section.
func (b *Builder) Inputs(l *config.Layer, t builders.Target) ([]builders.Input, error) {
	p := l.Python
	in := []builders.Input{{Name: "recipe", Value: recipe + " " + hashString(pipDriver+containerInstallScript+containerWheelScript)}}
	if compileOn(p) {
		in = append(in, builders.Input{Name: "bytecode", Value: pycMode + " " + hashString(pycScript+compileScript)})
		if buildMode(p) == "host" {
			// The bytes then depend on this machine's CPython build.
			for _, tg := range Targets(t.Runtimes, t.Arch) {
				py := hostPython(tg.Version)
				if py == "" {
					return nil, fmt.Errorf("compile = true with build = \"host\" needs python%s on the host (or build = \"auto\", which compiles in the build image)", tg.Version)
				}
				v, err := hostPythonBuild(py)
				if err != nil {
					return nil, err
				}
				in = append(in, builders.Input{Name: "host-python:" + tg.Version, Value: v})
			}
		}
	}
	src, err := b.loadSource(p)
	if err != nil {
		return nil, err
	}
	for _, f := range src.files() {
		in = append(in, builders.Input{Name: "file:" + b.display(p, f), Path: f})
	}
	if src.reqs != nil {
		for _, l := range src.reqs.Locals() {
			in = append(in, builders.Input{Name: "local:" + b.display(p, l.Local), Path: l.Local})
		}
	}
	idx := b.index(p, src)
	for _, f := range idx.FindLinks {
		if !strings.Contains(f, "://") {
			if st, err := os.Stat(f); err == nil && st.IsDir() {
				in = append(in, builders.Input{Name: "find-links:" + b.display(p, f), Path: f})
			}
		}
	}
	in = append(in, builders.Input{Name: "index", Value: redact.URLs(strings.Join(idx.Args(), " "))})
	conf := readHostPipConfig(b.getenv, b.environ())
	for _, f := range conf.Files {
		in = append(in, builders.Input{Name: "pip.conf:" + f, Path: f})
	}
	var env []string
	for _, k := range slices.Sorted(maps.Keys(conf.Env)) {
		env = append(env, k+"="+redact.URLs(conf.Env[k]))
	}
	if len(env) > 0 {
		in = append(in, builders.Input{Name: "env:PIP_*", Value: strings.Join(env, "\n")})
	}
	mode := buildMode(p)
	if mode != "container" {
		tools := b.tools(installer(p) == "uv")
		in = append(in, builders.Input{Name: "host-tools", Value: tools.describe()})
	}
	if mode != "host" {
		in = append(in, builders.CompileInput(l.CrossCompile, t))
	}
	for _, tg := range Targets(t.Runtimes, t.Arch) {
		in = append(in, builders.Input{Name: "target:" + tg.Version, Value: tg.ABI() + " " + strings.Join(tg.Platforms(), " ")})
	}
	return in, nil
}

// display is a path relative to the project or requirements folder, for input names.
func (b *Builder) display(p *config.Python, f string) string {
	base := filepath.Dir(p.AbsRequirements)
	if p.AbsProject != "" {
		base = p.AbsProject
	}
	if rel, err := filepath.Rel(base, f); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return f
}

// Steps describes the build for `layerpack plan`. URLs are shown with their
// credentials masked.
func (b *Builder) Steps(l *config.Layer, t builders.Target) []string {
	p := l.Python
	var s []string
	what := p.Requirements
	src, err := b.loadSource(p)
	if err != nil {
		src = &source{}
	}
	if p.Project != "" {
		what = "project " + p.Project
		if src.project != nil && src.project.Lock != "" {
			what += " (" + src.project.Lock + ", exported per target, installed with --no-deps)"
		} else {
			what += " (pyproject.toml dependencies, no lock)"
		}
	}
	tool := "pip"
	if installer(p) == "uv" {
		tool = "uv (pip when uv is missing)"
	}
	mode := buildMode(p)
	for _, tg := range Targets(t.Runtimes, t.Arch) {
		plats := tg.Platforms()
		tags := fmt.Sprintf("%s, abi3 or pure; %s ... %s", tg.ABI(), plats[0], plats[len(plats)-1])
		switch mode {
		case "container":
			s = append(s, fmt.Sprintf("install %s for CPython %s with pip --target in the build container (%s)", what, tg.Version, t.Arch.Platform()))
		default:
			s = append(s, fmt.Sprintf("install %s for CPython %s on %s with host %s, wheels only (%s), no emulation", what, tg.Version, t.Arch.GNU(), tool, tags))
			if mode == "auto" {
				s = append(s, fmt.Sprintf("requirements without such a wheel: download the sdist on the host, pip wheel it in the build container (%s), install the built wheel", t.Arch.Platform()))
			} else {
				s = append(s, "fail, naming them, if some requirement has no such wheel (build = \"host\")")
			}
		}
	}
	if src.reqs != nil {
		if ls := src.reqs.Locals(); len(ls) > 0 {
			var names []string
			for _, l := range ls {
				names = append(names, b.display(p, l.Local))
			}
			how := "a wheel of each built from a copy on the host; compiled ones rebuilt in the build container at a fixed folder"
			if mode == "container" {
				how = "mounted read-only, copied to a fixed folder and built in the build container"
			}
			s = append(s, "local packages "+strings.Join(names, ", ")+": "+how)
		}
	}
	if mode != "host" {
		s = append(s, "sdists built in the build container: "+builders.DescribeCompile(l.CrossCompile, t))
	}
	if idx := b.index(p, src); len(idx.Args()) > 0 {
		s = append(s, "package index: "+redact.URLs(strings.Join(idx.Args(), " ")))
	}
	if len(p.ExcludePackages) > 0 {
		s = append(s, "leave out "+strings.Join(p.ExcludePackages, ", ")+" and the dependencies only they need")
	}
	s = append(s, "normalise: no bytecode from the install, no INSTALLER/REQUESTED/direct_url.json, RECORD lists exactly what ships, bin/ shebangs -> "+Shebang)
	if p.Prune == "safe" {
		pr := "prune (safe): tests/ of " + strings.Join(slices.Sorted(maps.Keys(testsAllowlist)), ", ")
		if p.PruneStubs {
			pr += "; *.pyi"
		}
		s = append(s, pr)
	}
	if p.Strip {
		s = append(s, "strip debug symbols from extension modules (--strip-debug)")
	}
	s = append(s, "lay out: "+describeLayout(p, Targets(t.Runtimes, t.Arch)))
	if compileOn(p) {
		var vs []string
		for _, tg := range Targets(t.Runtimes, t.Arch) {
			vs = append(vs, tg.Version)
		}
		where := "the build image of each version (" + hostArch().Platform() + ", the same bytes for every architecture)"
		if buildMode(p) == "host" {
			where = "the host's pythonX.Y (the bytes depend on this machine's CPython build)"
		}
		s = append(s, fmt.Sprintf("bytecode: %s .pyc of the importable modules for CPython %s, compiled with %s; left out if the layer would exceed bytecode_budget (%s)",
			pycMode, strings.Join(vs, ", "), where, bytesize.Format(bytecodeBudget(p))))
	}
	return s
}

func describeLayout(p *config.Python, targets []Target) string {
	if layout(p) == "flat" {
		return "python/ (flat)"
	}
	if len(targets) == 1 {
		return lambda.SitePackages(targets[0].Version) + "/"
	}
	var vs []string
	for _, t := range targets {
		vs = append(vs, lambda.SitePackages(t.Version)+"/")
	}
	return "distributions identical for every Python version in python/, the others in " + strings.Join(vs, " and ")
}

// source is what is installed: a requirements file or a project.
type source struct {
	reqs    *Requirements // requirements mode
	project *Project      // project mode
}

func (s *source) files() []string {
	if s.project != nil {
		return s.project.Files
	}
	if s.reqs != nil {
		return s.reqs.Files
	}
	return nil
}

func (b *Builder) loadSource(p *config.Python) (*source, error) {
	if p.AbsProject != "" {
		pr, err := LoadProject(p.AbsProject)
		if err != nil {
			return nil, fmt.Errorf("project %s: %w", p.Project, err)
		}
		return &source{project: pr}, nil
	}
	r, err := ParseRequirements(p.AbsRequirements, b.getenv)
	if err != nil {
		return nil, fmt.Errorf("requirements %s: %w", p.Requirements, err)
	}
	return &source{reqs: r}, nil
}

// index merges the host pip configuration, the requirements file's index options
// and the layer's [python] settings (highest precedence last). ${VAR} in the
// layer's URLs is expanded from the environment, so tokens can stay out of the
// config file.
func (b *Builder) index(p *config.Python, src *source) Index {
	ix := readHostPipConfig(b.getenv, b.environ()).Index
	if src != nil && src.reqs != nil {
		for _, o := range src.reqs.Options {
			switch o[0] {
			case "--index-url":
				ix.URL = o[1]
			case "--extra-index-url":
				ix.Extra = append(ix.Extra, o[1])
			case "--no-index":
				ix.NoIndex = true
			case "--trusted-host":
				ix.Trusted = append(ix.Trusted, o[1])
			}
		}
	}
	expand := func(s string) string { return expandEnv(s, b.getenv) }
	if p.IndexURL != "" {
		ix.URL = expand(p.IndexURL)
	}
	for _, u := range p.ExtraIndexURLs {
		ix.Extra = append(ix.Extra, expand(u))
	}
	for _, f := range p.FindLinks {
		f = expand(f)
		if !strings.Contains(f, "://") && !filepath.IsAbs(f) {
			f = filepath.Join(configDir(p), f)
		}
		ix.FindLinks = append(ix.FindLinks, f)
	}
	if src != nil && src.reqs != nil {
		ix.FindLinks = append(ix.FindLinks, src.reqs.FindLinks...)
	}
	ix.Extra = dedupe(ix.Extra)
	ix.FindLinks = dedupe(ix.FindLinks)
	ix.Trusted = dedupe(ix.Trusted)
	return ix
}

// configDir is the folder relative find_links resolve against: the config file's.
// The config package resolves requirements and project against it, so it is
// recovered from them.
func configDir(p *config.Python) string {
	if p.AbsProject != "" {
		return strings.TrimSuffix(filepath.Clean(p.AbsProject), filepath.Clean("/"+p.Project))
	}
	return strings.TrimSuffix(filepath.Clean(p.AbsRequirements), filepath.Clean("/"+p.Requirements))
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Build fills j.Stage.
func (b *Builder) Build(ctx context.Context, j *builders.Job) error {
	p := j.Layer.Python
	targets := Targets(j.Target.Runtimes, j.Target.Arch)
	if len(targets) == 0 {
		return fmt.Errorf("compatible_runtimes has no Python runtime")
	}
	src, err := b.loadSource(p)
	if err != nil {
		return err
	}
	idx := b.index(p, src)
	log := newMaskWriter(j.Log, idx.Secrets())
	jb := &job{b: b, j: j, p: p, src: src, idx: idx, log: log, data: map[string]bool{}}
	var trees []tree
	for _, t := range targets {
		dir := filepath.Join(j.Work, "py"+t.Version)
		if err := jb.installTarget(ctx, t, dir); err != nil {
			return fmt.Errorf("CPython %s on %s: %w", t.Version, t.Arch.GNU(), err)
		}
		if err := jb.postProcess(ctx, t, dir); err != nil {
			return fmt.Errorf("CPython %s on %s: %w", t.Version, t.Arch.GNU(), err)
		}
		trees = append(trees, tree{target: t, dir: dir})
	}
	out := filepath.Join(j.Work, "opt")
	placed, err := layOut(trees, layout(p), out)
	if err != nil {
		return err
	}
	if compileOn(p) {
		if err := jb.compile(ctx, out, placed); err != nil {
			return fmt.Errorf("compile: %w", err)
		}
	}
	return builders.Merge(out, j.Stage)
}

// job is one Build call.
type job struct {
	b   *Builder
	j   *builders.Job
	p   *config.Python
	src *source
	idx Index
	log *maskWriter
	// data are the tree-relative paths of files installed from a wheel's .data
	// folders (never compiled), over every target.
	data map[string]bool

	unpinnedWarned bool
	editableWarned bool
	// localNames and pureLocal are the local packages' folder names and the
	// pure wheels built of them (the same for every target).
	localNames map[string]string
	pureLocal  map[string]string
}

func (jb *job) logf(format string, a ...any) {
	fmt.Fprintf(jb.log, "layerpack: %s (%s): python: %s\n", jb.j.Layer.Name, jb.j.Target.Arch, fmt.Sprintf(format, a...))
}

// postProcess makes a target's tree deterministic and applies exclude_packages,
// prune and strip.
func (jb *job) postProcess(ctx context.Context, t Target, dir string) error {
	if err := dataFiles(dir, jb.data); err != nil {
		return err
	}
	if err := NormalizeTree(dir); err != nil {
		return fmt.Errorf("normalising the installed tree: %w", err)
	}
	dists, err := ReadTree(dir)
	if err != nil {
		return err
	}
	if len(jb.p.ExcludePackages) > 0 {
		exclude := map[string]bool{}
		for _, e := range jb.p.ExcludePackages {
			exclude[Normalize(e)] = true
		}
		roots := jb.roots(t, dir, dists)
		var removed []string
		var freed int64
		byKey := map[string]*Dist{}
		for _, d := range dists {
			byKey[d.Key()] = d
		}
		for _, name := range ExcludedClosure(dists, roots, exclude, t.Env()) {
			n, err := RemoveDist(dir, byKey[name])
			if err != nil {
				return fmt.Errorf("leaving out %s: %w", name, err)
			}
			freed += n
			removed = append(removed, byKey[name].Name)
		}
		var absent []string
		for _, e := range jb.p.ExcludePackages {
			if byKey[Normalize(e)] == nil {
				absent = append(absent, e)
			}
		}
		if len(absent) > 0 {
			jb.logf("exclude_packages: %s not installed for CPython %s (nothing requires it)", strings.Join(absent, ", "), t.Version)
		}
		if len(removed) > 0 {
			jb.logf("left out %s for CPython %s (%s)", strings.Join(removed, ", "), t.Version, bytesize.Format(freed))
		}
		if dists, err = ReadTree(dir); err != nil {
			return err
		}
	}
	jb.warnUnpinned(dists)
	if jb.p.Prune == "safe" {
		res, err := Prune(dir, jb.p.PruneStubs)
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		jb.logf("prune saved %s in %d files for CPython %s", bytesize.Format(res.Bytes), res.Files, t.Version)
	}
	if jb.p.Strip {
		if err := stripTree(ctx, dir, t.Arch); err != nil {
			return fmt.Errorf("strip: %w", err)
		}
	}
	return nil
}

// roots are the names asked for: the top-level requirements that apply to the
// target, what the installer's report marks as requested, and any distribution
// nothing else requires (so a requirement given as a bare URL counts).
func (jb *job) roots(t Target, dir string, dists []*Dist) map[string][]string {
	roots := map[string][]string{}
	add := func(m map[string][]string) {
		for k, v := range m {
			roots[k] = append(roots[k], v...)
		}
	}
	if jb.src.project != nil {
		add(jb.src.project.RootNames(t.Env()))
	} else {
		add(jb.src.reqs.Roots(t.Env()))
	}
	if rep, err := readReport(filepath.Join(dir+".report", "report.json")); err == nil {
		for _, it := range rep.Install {
			if it.Requested {
				add(map[string][]string{Normalize(it.Metadata.Name): nil})
			}
		}
	}
	add(sources(dists, t.Env()))
	return roots
}

// warnUnpinned warns once per build when installed packages are not pinned: the
// layer then changes when new versions are published.
func (jb *job) warnUnpinned(dists []*Dist) {
	if jb.unpinnedWarned {
		return
	}
	var pinned map[string]bool
	if jb.src.project != nil {
		if jb.src.project.Lock != "" {
			return
		}
		pinned = map[string]bool{}
		for _, d := range jb.src.project.Deps {
			if r, err := ParseRequirement(d); err == nil && (r.Pin() != "" || r.URL != "") {
				pinned[r.Key()] = true
			}
		}
	} else {
		if jb.src.reqs.HasHashes() {
			return // pip required every package pinned with hashes
		}
		pinned = jb.src.reqs.Pinned()
	}
	var loose []string
	for _, d := range dists {
		if !pinned[d.Key()] {
			loose = append(loose, d.Name)
		}
	}
	if len(loose) == 0 {
		return
	}
	jb.unpinnedWarned = true
	what := jb.p.Requirements
	if jb.p.Project != "" {
		what = jb.p.Project + " (no lock)"
	}
	sort.Strings(loose)
	if len(loose) > 8 {
		loose = append(loose[:8], fmt.Sprintf("and %d more", len(loose)-8))
	}
	jb.logf("warning: %s does not pin %s to one version (name==X.Y): the layer is not reproducible over time; pin every package (pip-compile --generate-hashes, uv pip compile) or use a lock", what, strings.Join(loose, ", "))
}
