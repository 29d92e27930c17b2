// Package ruby is the builder for [layer.NAME.ruby]: Bundler installs the gems locked
// in Gemfile.lock (frozen; by default without the development and test groups) in the build
// container, with the Ruby of the build image, into ruby/gems/X.Y.0/ - the GEM_PATH
// folder of the runtime, laid out as RubyGems expects (gems/, specifications/,
// extensions/<platform>/X.Y.0/). Precompiled platform gems of the target are taken
// when the lockfile has them; other gems with C extensions are compiled for the
// target architecture. Build leftovers that hold build paths or timestamps are
// removed, so the same lockfile gives the same bytes.
//
// The build image's Ruby decides the ABI of compiled extensions, so the install step
// first asks it for its version and stops when it is not the runtime's (TestABIEnv
// is the one way around that, for tests).
package ruby

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/fsutil"
	"github.com/layerpack/layerpack/lambda"
)

// TestABIEnv names the variable that lets a build image whose Ruby has another ABI
// than the runtime's build the layer anyway. It exists for layerpack's own tests:
// the Debian test images have Ruby 3.1, which no Lambda runtime has. Its value must
// be the image's ABI exactly ("3.1.0"). The gems still go in the runtime's folder
// (ruby/gems/3.3.0 for ruby3.3), but compiled extensions land in
// extensions/<platform>/3.1.0, where only Ruby 3.1 looks: such a layer loads in the
// test image and not in Lambda.
const TestABIEnv = "LAYERPACK_TEST_RUBY_ABI"

// Builder installs gems with Bundler in the build container.
type Builder struct {
	// Getenv reads TestABIEnv; nil means os.Getenv.
	Getenv func(string) string
	// Environ is the host environment Bundler's settings are read from
	// (BUNDLE_* variables, HOME, BUNDLE_USER_CONFIG...); nil means os.Environ.
	Environ func() []string
}

func New() *Builder { return &Builder{} }

func (*Builder) Name() string                 { return "ruby" }
func (*Builder) Applies(l *config.Layer) bool { return l.Ruby != nil }

// NeedsEngine is always true: gems are installed by the Ruby of the runtime, which
// only the build image has ("host" is refused by Inputs).
func (*Builder) Engine(*config.Layer, builders.Target) builders.EngineNeeds {
	return builders.EngineNeeds{Use: builders.UsesEngine}
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

// project is what the builder reads from the config section and the Gemfile folder.
type project struct {
	gemfile  string // absolute
	lockfile string // absolute
	vendor   string // absolute vendor/cache folder, "" when there is none
	rubyVer  string // "3.3"
	runtime  string // "ruby3.3"
	without  []string
}

// gemDir is the GEM_PATH folder of the layer ("ruby/gems/3.3.0").
func (p *project) gemDir() string { return lambda.RubyGemPath(p.rubyVer) }

// abi is the Ruby ABI version the runtime loads extensions for ("3.3.0").
func (p *project) abi() string { return p.rubyVer + ".0" }

// lockName is the lockfile Bundler reads for a Gemfile: gems.rb has gems.locked.
func lockName(gemfile string) string {
	if filepath.Base(gemfile) == "gems.rb" {
		return filepath.Join(filepath.Dir(gemfile), "gems.locked")
	}
	return gemfile + ".lock"
}

// load checks the section against the files and the runtimes. Its errors are the
// ones a user sees before anything runs, so they name files and keys.
func load(l *config.Layer, t builders.Target) (*project, error) {
	r := l.Ruby
	key := "layer." + l.Name + ".ruby"
	if r.Build == "host" {
		return nil, fmt.Errorf(`%s.build = "host" is not supported: gems are installed by the Ruby of the build image, the runtime's version, for linux/%s; use "auto" or "container"`, key, t.Arch.OCI())
	}
	var rubies []lambda.Runtime
	for _, rt := range t.Runtimes {
		if rt.Language == lambda.Ruby {
			rubies = append(rubies, rt)
		}
	}
	switch len(rubies) {
	case 0:
		return nil, fmt.Errorf("%s needs a Ruby runtime in compatible_runtimes (ruby3.2, ruby3.3 or ruby3.4): it decides the folder ruby/gems/X.Y.0", key)
	case 1:
	default:
		return nil, fmt.Errorf("%s: compatible_runtimes has %s and %s; a layer's gems are for one Ruby version (ruby/gems/X.Y.0 and compiled extensions differ by version): make one layer per version",
			key, rubies[0].ID, rubies[1].ID)
	}
	p := &project{
		gemfile:  r.AbsGemfile,
		lockfile: lockName(r.AbsGemfile),
		rubyVer:  rubies[0].Version,
		runtime:  rubies[0].ID,
		without:  r.Without,
	}
	if _, err := os.Stat(p.lockfile); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is missing: a Ruby layer installs exactly what the lockfile says; run `bundle lock` next to %s and commit %s",
				rel(l, p.lockfile), filepath.Base(p.gemfile), filepath.Base(p.lockfile))
		}
		return nil, err
	}
	if err := checkLock(p.lockfile, rel(l, p.lockfile)); err != nil {
		return nil, err
	}
	vc := filepath.Join(filepath.Dir(p.gemfile), "vendor", "cache")
	if st, err := os.Stat(vc); err == nil && st.IsDir() {
		p.vendor = vc
	}
	return p, nil
}

// rel names a file of the Gemfile's folder as the config file would ("app/Gemfile.lock").
func rel(l *config.Layer, abs string) string {
	r, err := filepath.Rel(filepath.Dir(l.Ruby.AbsGemfile), abs)
	if err != nil {
		return abs
	}
	return filepath.ToSlash(filepath.Join(filepath.Dir(filepath.Clean(l.Ruby.Gemfile)), r))
}

// checkLock refuses gems from git and path sources: Bundler installs them outside
// specifications/, so only Bundler.setup could load them, not GEM_PATH.
func checkLock(path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var kind, remote string
	var bad []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line != "" && line[0] != ' ':
			kind, remote = line, ""
		case (kind == "GIT" || kind == "PATH") && strings.HasPrefix(line, "  remote: "):
			remote = strings.TrimPrefix(line, "  remote: ")
		case (kind == "GIT" || kind == "PATH") && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     "):
			spec := strings.TrimSpace(line)
			bad = append(bad, fmt.Sprintf("%s from %s %s", spec, strings.ToLower(kind), remote))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s has gems from git or path sources (%s): Bundler installs those outside specifications/, where GEM_PATH does not find them; publish them as gems (gem build) and add the .gem files to vendor/cache",
			name, strings.Join(bad, "; "))
	}
	return nil
}

// Inputs leave out the host's Bundler registry settings (registry.go) on
// purpose. Credentials never go into a key. Mirrors do not change what is
// installed: the frozen lockfile pins every gem's name, version and platform,
// and a gem server cannot serve other bytes under a published version (gems are
// immutable once pushed), so a mirror is where the same files come from, like a
// proxy. Keying on it would rebuild every Ruby layer when a user switches
// mirrors, or make a CI runner behind a mirror miss the cache a laptop filled.
func (b *Builder) Inputs(l *config.Layer, t builders.Target) ([]builders.Input, error) {
	p, err := load(l, t)
	if err != nil {
		return nil, err
	}
	in := []builders.Input{
		{Name: "file:" + rel(l, p.gemfile), Path: p.gemfile},
		{Name: "file:" + rel(l, p.lockfile), Path: p.lockfile},
	}
	for _, extra := range contextExtras(p) {
		in = append(in, builders.Input{Name: "file:" + rel(l, extra), Path: extra})
	}
	if p.vendor != "" {
		in = append(in, builders.Input{Name: "gems:" + rel(l, p.vendor), Path: p.vendor})
	}
	in = append(in,
		builders.Input{Name: "install-script", Value: installScript + cleanScript},
		builders.Input{Name: "gem-dir", Value: p.gemDir()},
		builders.CompileInput(l.CrossCompile, t),
	)
	if v := b.getenv(TestABIEnv); v != "" {
		in = append(in, builders.Input{Name: "env:" + TestABIEnv, Value: v})
	}
	return in, nil
}

// contextExtras are files beside the Gemfile that a Gemfile commonly reads.
func contextExtras(p *project) []string {
	var out []string
	for _, n := range []string{".ruby-version"} {
		f := filepath.Join(filepath.Dir(p.gemfile), n)
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			out = append(out, f)
		}
	}
	return out
}

func (b *Builder) Steps(l *config.Layer, t builders.Target) []string {
	p, err := load(l, t)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	lock := filepath.Base(p.lockfile)
	src := "the Gemfile's sources"
	copied := filepath.Base(p.gemfile) + ", " + lock
	if p.vendor != "" {
		src = "vendor/cache only (--local)"
		copied += ", vendor/cache"
	}
	without := "no groups left out"
	if len(p.without) > 0 {
		without = "without " + strings.Join(p.without, ", ")
	}
	steps := []string{
		"copy " + copied + " into the build container",
		fmt.Sprintf("check that the build image's Ruby is %s (ABI %s), the version of %s", p.rubyVer, p.abi(), p.runtime),
	}
	reg, err := b.hostRegistry(p, fileNamer(l))
	if err != nil {
		steps = append(steps, "error: "+err.Error())
	} else {
		for _, d := range reg.describe {
			steps = append(steps, "host Bundler setting, given to bundle install as a build secret: "+d)
		}
	}
	return append(steps,
		fmt.Sprintf("bundle install from %s, frozen to %s, %s, into %s for linux/%s (platform gems of the target preferred, C extensions compiled)",
			src, lock, without, p.gemDir(), t.Arch.OCI()),
		"C extensions: "+builders.DescribeCompile(l.CrossCompile, t),
		"remove build leftovers: Makefiles, object files, gem_make.out, mkmf.log, cache/, build_info/, doc/; gem executables get #!/usr/bin/env ruby",
	)
}

// fileNamer names a file for messages: relative to the config file when it is
// in the Gemfile's folder (app/.bundle/config), else its path.
func fileNamer(l *config.Layer) func(string) string {
	return func(path string) string {
		r, err := filepath.Rel(filepath.Dir(l.Ruby.AbsGemfile), path)
		if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return path
		}
		return rel(l, path)
	}
}

// Paths inside the build container.
const contextMount = "/layerpack/ruby"

func (b *Builder) Build(ctx context.Context, j *builders.Job) error {
	p, err := load(j.Layer, j.Target)
	if err != nil {
		return err
	}
	testABI := b.getenv(TestABIEnv)
	if testABI != "" && j.Log != nil {
		fmt.Fprintf(j.Log, "layerpack: warning: %s=%s: a build image with Ruby ABI %s may build the %s layer %s; its compiled extensions load only in that Ruby (tests only)\n",
			TestABIEnv, testABI, testABI, p.runtime, j.Layer.Name)
	}
	// Only the Gemfile, its lockfile and vendor/cache go into the container: they are
	// the inputs of the cache key, and the Gemfile's folder may be a whole app.
	stageCtx := filepath.Join(j.Work, "context")
	if err := stageContext(p, stageCtx); err != nil {
		return fmt.Errorf("preparing the Bundler context: %w", err)
	}
	out := filepath.Join(j.Work, "opt")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	local := "0"
	if p.vendor != "" {
		local = "1"
	}
	reg, err := b.hostRegistry(p, fileNamer(j.Layer))
	if err != nil {
		return err
	}
	secret, secretFile, err := reg.writeSecret(filepath.Join(j.Work, "secrets"))
	if err != nil {
		return fmt.Errorf("preparing Bundler's settings for the build: %w", err)
	}
	if secretFile != "" {
		// The engine has read it once the step ran; nothing should keep it longer.
		defer os.Remove(secretFile)
	}
	step := j.Step(fmt.Sprintf("%s: bundle install (%s)", j.Layer.Name, j.Target.Arch), j.Target.Arch, j.Image, engine.Step{
		Script: installScript,
		Dir:    "/",
		Env: map[string]string{
			"LAYERPACK_CONTEXT":   contextMount,
			"LAYERPACK_GEMFILE":   filepath.Base(p.gemfile),
			"LAYERPACK_GEM_HOME":  "/opt/" + p.gemDir(),
			"LAYERPACK_RUBY_ABI":  p.abi(),
			"LAYERPACK_TEST_ABI":  testABI,
			"LAYERPACK_LOCAL":     local,
			"LAYERPACK_CLEAN_RB":  cleanScript,
			"LAYERPACK_BUNDLE_RB": bundleWrapper,
			"BUNDLE_WITHOUT":      strings.Join(p.without, ":"),
		},
		Mounts: []engine.Mount{{Source: stageCtx, Target: contextMount}},
		Output: "/opt",
		Dest:   out,
	})
	if secret != nil {
		step.Secrets = []engine.Secret{*secret}
	}
	if err := j.RunCompile(ctx, j.Engine, step); err != nil {
		return explain(err, p, j.Target, j.Image, reg)
	}
	home := filepath.Join(out, filepath.FromSlash(p.gemDir()))
	if _, err := os.Stat(filepath.Join(home, "specifications")); err != nil {
		return fmt.Errorf("bundle install left no %s/specifications in the build container's /opt (is the lockfile empty?)", p.gemDir())
	}
	if err := tidy(home); err != nil {
		return fmt.Errorf("cleaning the installed gems: %w", err)
	}
	return builders.Merge(out, j.Stage)
}

// stageContext copies the Gemfile, its lockfile, the files it commonly reads and
// the .gem files of vendor/cache into dir.
func stageContext(p *project, dir string) error {
	files := append([]string{p.gemfile, p.lockfile}, contextExtras(p)...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := fsutil.CopyFile(f, filepath.Join(dir, filepath.Base(f)), 0o644); err != nil {
			return err
		}
	}
	if p.vendor == "" {
		return nil
	}
	gems, err := filepath.Glob(filepath.Join(p.vendor, "*.gem"))
	if err != nil {
		return err
	}
	sort.Strings(gems)
	vc := filepath.Join(dir, "vendor", "cache")
	if err := os.MkdirAll(vc, 0o755); err != nil {
		return err
	}
	for _, g := range gems {
		if err := fsutil.CopyFile(g, filepath.Join(vc, filepath.Base(g)), 0o644); err != nil {
			return err
		}
	}
	return nil
}
