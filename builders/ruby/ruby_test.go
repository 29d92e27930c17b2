package ruby

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
	"github.com/layerpack/layerpack/pipeline"
)

var fixtures = filepath.Join("..", "..", "testdata", "ruby")

// writeProject writes files into a temp folder and loads its layerpack.toml.
func writeProject(t *testing.T, files map[string]string) *config.File {
	t.Helper()
	return loadConfig(t, filepath.Join(lambdatest.WriteProject(t, files), "layerpack.toml"))
}

func target(cfg *config.File, a lambda.Arch) builders.Target {
	return builders.Target{Arch: a, Runtimes: cfg.Layers[0].Runtimes}
}

const simpleToml = `[layer.gems]
compatible_runtimes = ["ruby3.3"]
[layer.gems.ruby]
gemfile = "app/Gemfile"
`

func TestInputsAndSteps(t *testing.T) {
	cfg := writeProject(t, map[string]string{
		"layerpack.toml":              simpleToml,
		"app/Gemfile":                 "source \"https://rubygems.org\"\n",
		"app/Gemfile.lock":            "GEM\n  remote: https://rubygems.org/\n  specs:\n\nPLATFORMS\n  ruby\n",
		"app/vendor/cache/x-1.0.gem":  "not really",
		"app/.ruby-version":           "3.3.0\n",
		"app/unrelated/big-file.json": "{}",
	})
	l := cfg.Layers[0]
	ins, err := New().Inputs(l, target(cfg, lambda.ARM64))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range ins {
		names = append(names, in.Name)
	}
	want := []string{"file:app/Gemfile", "file:app/Gemfile.lock", "file:app/.ruby-version", "gems:app/vendor/cache", "install-script", "gem-dir", "cross-compile"}
	if !slices.Equal(names, want) {
		t.Errorf("inputs = %q, want %q", names, want)
	}
	steps := strings.Join(New().Steps(l, target(cfg, lambda.ARM64)), "\n")
	wantSteps := "copy Gemfile, Gemfile.lock, vendor/cache into the build container\n" +
		"check that the build image's Ruby is 3.3 (ABI 3.3.0), the version of ruby3.3\n" +
		"bundle install from vendor/cache only (--local), frozen to Gemfile.lock, without development, test, into ruby/gems/3.3.0 for linux/arm64 (platform gems of the target preferred, C extensions compiled)\n" +
		"C extensions: compile with zig 0.17.1 cc/c++ for aarch64-linux-gnu.2.34; if that fails, again with the image's own compiler, under QEMU (cross_compile = \"auto\")\n" +
		"remove build leftovers: Makefiles, object files, gem_make.out, mkmf.log, cache/, build_info/, doc/; gem executables get #!/usr/bin/env ruby"
	if steps != wantSteps {
		t.Errorf("steps:\n%s\nwant:\n%s", steps, wantSteps)
	}

	// The test knob is part of the cache key: a layer built with it is not the real one.
	b := &Builder{Getenv: func(k string) string {
		if k == TestABIEnv {
			return "3.1.0"
		}
		return ""
	}}
	ins2, err := b.Inputs(l, target(cfg, lambda.ARM64))
	if err != nil {
		t.Fatal(err)
	}
	if last := ins2[len(ins2)-1]; last.Name != "env:"+TestABIEnv || last.Value != "3.1.0" {
		t.Errorf("last input with the knob = %+v", last)
	}
}

func TestConfigErrors(t *testing.T) {
	lock := "GEM\n  remote: https://rubygems.org/\n  specs:\n\nPLATFORMS\n  ruby\n"
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{
			name: "missing lockfile",
			files: map[string]string{
				"layerpack.toml": simpleToml,
				"app/Gemfile":    "source \"https://rubygems.org\"\n",
			},
			want: "app/Gemfile.lock is missing: a Ruby layer installs exactly what the lockfile says; run `bundle lock` next to Gemfile and commit Gemfile.lock",
		},
		{
			name: "gems.rb has gems.locked",
			files: map[string]string{
				"layerpack.toml": strings.Replace(simpleToml, "app/Gemfile", "gems.rb", 1),
				"gems.rb":        "source \"https://rubygems.org\"\n",
			},
			want: "gems.locked is missing: a Ruby layer installs exactly what the lockfile says; run `bundle lock` next to gems.rb and commit gems.locked",
		},
		{
			name: "git source",
			files: map[string]string{
				"layerpack.toml": simpleToml,
				"app/Gemfile":    "gem 'x', git: 'https://example.com/x.git'\n",
				"app/Gemfile.lock": "GIT\n  remote: https://example.com/x.git\n  revision: abc\n  specs:\n    x (0.1.0)\n      y (>= 1)\n\n" +
					"PATH\n  remote: ../z\n  specs:\n    z (2.0.0)\n\n" + lock,
			},
			want: "app/Gemfile.lock has gems from git or path sources (x (0.1.0) from git https://example.com/x.git; z (2.0.0) from path ../z): Bundler installs those outside specifications/, where GEM_PATH does not find them; publish them as gems (gem build) and add the .gem files to vendor/cache",
		},
		{
			name: "two ruby versions",
			files: map[string]string{
				"layerpack.toml":   strings.Replace(simpleToml, `["ruby3.3"]`, `["ruby3.3", "ruby3.4"]`, 1),
				"app/Gemfile":      "",
				"app/Gemfile.lock": lock,
			},
			want: "layer.gems.ruby: compatible_runtimes has ruby3.3 and ruby3.4; a layer's gems are for one Ruby version (ruby/gems/X.Y.0 and compiled extensions differ by version): make one layer per version",
		},
		{
			name: "host build",
			files: map[string]string{
				"layerpack.toml":   simpleToml + "build = \"host\"\n",
				"app/Gemfile":      "",
				"app/Gemfile.lock": lock,
			},
			want: `layer.gems.ruby.build = "host" is not supported: gems are installed by the Ruby of the build image, the runtime's version, for linux/amd64; use "auto" or "container"`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeProject(t, c.files)
			_, err := New().Inputs(cfg.Layers[0], target(cfg, lambda.X86_64))
			if err == nil || err.Error() != c.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, c.want)
			}
			// Build reports the same before running anything.
			eng := &engine.Fake{}
			j := &builders.Job{Layer: cfg.Layers[0], Target: target(cfg, lambda.X86_64), Stage: t.TempDir(), Work: t.TempDir(), Engine: eng}
			if err := New().Build(context.Background(), j); err == nil || err.Error() != c.want {
				t.Errorf("Build error:\n%v\nwant:\n%s", err, c.want)
			}
			if len(eng.Steps()) != 0 {
				t.Errorf("a step ran")
			}
		})
	}
}

func TestBundlerErrors(t *testing.T) {
	p := &project0
	cases := []struct {
		name   string
		vendor string
		out    string
		want   string
	}{
		{
			name:   "gem not in vendor/cache",
			vendor: "/x/vendor/cache",
			out:    "Could not find lp_zzz-1.0.0 in any of the sources\n",
			want:   "Gemfile.lock locks lp_zzz-1.0.0, which is not in vendor/cache (bundle install --local uses only those gems): add it with `bundle cache`",
		},
		{
			name: "gem not in the sources (bundler 2.4 wording)",
			out:  "Fetching gem metadata from https://rubygems.org/.\nCould not find gem 'nope' in rubygems repository https://rubygems.org/ or installed locally.\n",
			want: "Gemfile.lock locks nope, which none of the Gemfile's sources has",
		},
		{
			name: "frozen lockfile disagrees",
			out: "You are trying to install in deployment mode after changing\nyour Gemfile. Run `bundle install` elsewhere and add the\nupdated Gemfile.lock to version control.\n\n" +
				"The dependencies in your gemfile changed\n\nYou have added to the Gemfile:\n* lp_plat (~> 3.0)\n\nYou have deleted from the Gemfile:\n* lp_plat\n",
			want: "Gemfile and Gemfile.lock disagree (added to the Gemfile: lp_plat (~> 3.0); deleted from the Gemfile: lp_plat): run `bundle lock` and commit Gemfile.lock; layerpack installs the lockfile as it is (frozen)",
		},
		{
			name: "extension does not compile",
			out:  "Installing lp_native 0.3.1 with native extensions\nGem::Ext::BuildError: ERROR: Failed to build gem native extension.\n\nmake failed\n\nAn error occurred while installing lp_native (0.3.1), and Bundler cannot continue.\n",
			want: "installing lp_native 0.3.1 for linux/arm64 failed (a C extension that does not compile?); Bundler's output ends:\n  | Installing lp_native 0.3.1 with native extensions\n  | Gem::Ext::BuildError: ERROR: Failed to build gem native extension.\n  | make failed\n  | An error occurred while installing lp_native (0.3.1), and Bundler cannot continue.",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.vendor = c.vendor
			se := &engine.StepError{Step: "s", Lines: []string{"noise", "LAYERPACK_BUNDLE_FAILED " + strings.ReplaceAll(c.out, "\n", "\t")}}
			err := explain(se, p, builders.Target{Arch: lambda.ARM64}, "img", nil)
			if err.Error() != c.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
}

var project0 = project{gemfile: "/x/Gemfile", lockfile: "/x/Gemfile.lock", rubyVer: "3.3", runtime: "ruby3.3"}

func TestTidy(t *testing.T) {
	home := t.TempDir()
	files := map[string]string{
		"cache/a-1.gem":          "gem",
		"build_info/a-1.info":    "--with-x",
		"doc/a-1/ri/x":           "doc",
		"plugins/.keep-me-not/x": "",
		"extensions/x86_64-linux/3.3.0/a-1/gem.build_complete": "",
		"extensions/x86_64-linux/3.3.0/a-1/gem_make.out":       "current directory: /build/x",
		"extensions/x86_64-linux/3.3.0/a-1/mkmf.log":           "/build/x",
		"extensions/x86_64-linux/3.3.0/a-1/a/a.so":             "\x7fELF",
		"gems/a-1/lib/a.rb":                                    "",
		"bin/a":                                                "#!/usr/bin/ruby3.1\n#\n# This file was generated by RubyGems.\nload Gem.bin_path('a', 'a')\n",
		"bin/b":                                                "#!/bin/sh\necho b\n",
		"specifications/a-1.gemspec":                           "spec",
	}
	for n, c := range files {
		p := filepath.Join(home, filepath.FromSlash(n))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(home, "plugins/.keep-me-not/x"))
	if err := tidy(home); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(home, func(p string, d os.DirEntry, err error) error {
		r, _ := filepath.Rel(home, p)
		if !d.IsDir() {
			got = append(got, filepath.ToSlash(r))
		}
		return nil
	})
	want := []string{
		"bin/a", "bin/b",
		"extensions/x86_64-linux/3.3.0/a-1/a/a.so",
		"extensions/x86_64-linux/3.3.0/a-1/gem.build_complete",
		"gems/a-1/lib/a.rb",
		"specifications/a-1.gemspec",
	}
	if !slices.Equal(got, want) {
		t.Errorf("left:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range []string{"plugins", "cache", "doc"} {
		if _, err := os.Stat(filepath.Join(home, d)); err == nil {
			t.Errorf("%s/ is still there", d)
		}
	}
	a, _ := os.ReadFile(filepath.Join(home, "bin/a"))
	if !strings.HasPrefix(string(a), "#!/usr/bin/env ruby\n#\n# This file") {
		t.Errorf("bin/a = %q", a)
	}
	if st, _ := os.Stat(filepath.Join(home, "bin/a")); st.Mode().Perm() != 0o755 {
		t.Errorf("bin/a mode %v", st.Mode())
	}
	b, _ := os.ReadFile(filepath.Join(home, "bin/b"))
	if string(b) != files["bin/b"] {
		t.Errorf("bin/b changed: %q", b)
	}
}

// app copies testdata/ruby/app into a temp project with a layerpack.toml, and
// builds the fixture gems into its vendor/cache: with the host's gem command when
// there is one, else in the x86_64 test image.
func app(t *testing.T, toml string, env *lambdatest.Env) string {
	t.Helper()
	dir := t.TempDir()
	appDir := filepath.Join(dir, "app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Gemfile", "Gemfile.lock"} {
		b, err := os.ReadFile(filepath.Join(fixtures, "app", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(appDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	vc := filepath.Join(appDir, "vendor", "cache")
	if _, err := exec.LookPath("gem"); err == nil {
		out, err := exec.Command("sh", filepath.Join(fixtures, "build-gems.sh"), vc).CombinedOutput()
		if err != nil {
			t.Fatalf("build-gems.sh: %v\n%s", err, out)
		}
		return dir
	}
	if env == nil {
		testneed.Missing(t, "needs the gem command on the host to build the fixture gems (apt-get install ruby)")
	}
	abs, err := filepath.Abs(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	err = env.Engine(t).Run(context.Background(), &engine.Step{
		Name: "build fixture gems", Arch: lambda.X86_64, Image: env.Image(lambda.X86_64),
		Script: "cp -R /fixtures /tmp/f && sh /tmp/f/build-gems.sh /out", Dir: "/",
		Mounts: []engine.Mount{{Source: abs, Target: "/fixtures"}},
		Output: "/out", Dest: vc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func hostRuby(t *testing.T) string {
	t.Helper()
	for _, c := range []string{"ruby", "bundle", "gem", "gcc", "make"} {
		if _, err := exec.LookPath(c); err != nil {
			testneed.Missing(t, fmt.Sprintf("needs %s on the host (apt-get install ruby ruby-dev bundler gcc make)", c))
		}
	}
	out, err := exec.Command("ruby", "-e", `print RbConfig::CONFIG["ruby_version"]`).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func knob(abi string) func(string) string {
	return func(k string) string {
		if k == TestABIEnv {
			return abi
		}
		return ""
	}
}

func hostArch(t *testing.T) lambda.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return lambda.X86_64
	case "arm64":
		return lambda.ARM64
	}
	t.Skip("host is neither amd64 nor arm64")
	return ""
}

// runFake runs the builder with the install script on the host (engine.Fake).
func runFake(t *testing.T, dir string, b *Builder) (string, error) {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	stage := t.TempDir()
	eng := &engine.Fake{Exec: true}
	t.Cleanup(func() { eng.Close() })
	j := &builders.Job{Layer: cfg.Layers[0], Target: target(cfg, hostArch(t)),
		Stage: stage, Work: t.TempDir(), Engine: eng, Image: "rootfs:///unused", SourceDateEpoch: 315532800}
	return stage, b.Build(context.Background(), j)
}

// The install script, run on the host's Ruby: the layout GEM_PATH wants, no
// leftovers, and the gems load from it.
func TestInstallOnHost(t *testing.T) {
	abi := hostRuby(t)
	dir := app(t, simpleToml, nil)
	stage, err := runFake(t, dir, &Builder{Getenv: knob(abi)})
	if err != nil {
		t.Fatal(err)
	}
	plat := map[lambda.Arch]string{lambda.X86_64: "x86_64-linux", lambda.ARM64: "aarch64-linux"}[hostArch(t)]
	var files []string
	filepath.WalkDir(stage, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(stage, p)
			files = append(files, filepath.ToSlash(r))
		}
		return nil
	})
	g := "ruby/gems/3.3.0/"
	want := []string{
		g + "extensions/" + plat + "/" + abi + "/lp_native-0.3.1/gem.build_complete",
		g + "extensions/" + plat + "/" + abi + "/lp_native-0.3.1/lp_native/lp_native.so",
		g + "gems/lp_native-0.3.1/ext/lp_native/extconf.rb",
		g + "gems/lp_native-0.3.1/ext/lp_native/lp_native.c",
		g + "gems/lp_native-0.3.1/lib/lp_native.rb",
		g + "gems/lp_native-0.3.1/lib/lp_native/lp_native.so",
		g + "gems/lp_plat-2.0.0-" + plat + "/lib/lp_plat.rb",
		g + "gems/lp_plat-2.0.0-" + plat + "/lib/lp_plat/platform.txt",
		g + "gems/lp_pure-1.2.0/lib/lp_pure.rb",
		g + "specifications/lp_native-0.3.1.gemspec",
		g + "specifications/lp_plat-2.0.0-" + plat + ".gemspec",
		g + "specifications/lp_pure-1.2.0.gemspec",
	}
	slices.Sort(files)
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("staged:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	cmd := exec.Command("ruby", "-e", `require "lp_native"; require "lp_plat"; puts LpNative.describe, LpPlat::BUILT_FOR; begin; require "lp_devonly"; puts "devonly loaded"; rescue LoadError; end`)
	cmd.Env = append(os.Environ(), "GEM_PATH="+filepath.Join(stage, "ruby/gems/3.3.0"), "GEM_HOME=", "RUBYLIB="+filepath.Join(stage, "ruby/lib"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantOut := "hello, " + hostArch(t).GNU() + " (5)\n" + plat + "\n"
	if string(out) != wantOut {
		t.Errorf("ruby printed %q, want %q", out, wantOut)
	}
}

func TestInstallErrorsOnHost(t *testing.T) {
	abi := hostRuby(t)
	dir := app(t, simpleToml, nil)
	gemfile := filepath.Join(dir, "app", "Gemfile")
	lock := filepath.Join(dir, "app", "Gemfile.lock")
	origGemfile, _ := os.ReadFile(gemfile)
	origLock, _ := os.ReadFile(lock)
	edit := func(path string, orig []byte, old, new string) {
		t.Helper()
		s := strings.Replace(string(orig), old, new, 1)
		if s == string(orig) {
			t.Fatalf("%q not in %s", old, path)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reset := func() {
		os.WriteFile(gemfile, origGemfile, 0o644)
		os.WriteFile(lock, origLock, 0o644)
	}
	t.Run("ruby version", func(t *testing.T) {
		_, err := runFake(t, dir, New())
		want := "the build image's Ruby is " + strings.TrimSpace(mustOut(t, "ruby", "-e", "print RUBY_VERSION")) + " (extension ABI " + abi +
			"), but ruby3.3 loads gems from ruby/gems/3.3.0, built for Ruby 3.3 (ABI 3.3.0): use a build image with Ruby 3.3, such as public.ecr.aws/sam/build-ruby3.3:latest-" + string(hostArch(t))
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
	})
	t.Run("unknown gem", func(t *testing.T) {
		defer reset()
		edit(gemfile, origGemfile, `gem "lp_plat"`, "gem \"lp_plat\"\ngem \"lp_nope\"")
		edit(lock, origLock, "    lp_pure (1.2.0)\n", "    lp_nope (4.0.0)\n    lp_pure (1.2.0)\n")
		s, _ := os.ReadFile(lock)
		os.WriteFile(lock, []byte(strings.Replace(string(s), "  lp_plat\n", "  lp_nope\n  lp_plat\n", 1)), 0o644)
		_, err := runFake(t, dir, &Builder{Getenv: knob(abi)})
		want := "Gemfile.lock locks lp_nope-4.0.0, which is not in vendor/cache (bundle install --local uses only those gems): add it with `bundle cache`"
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
	})
	t.Run("unresolvable version", func(t *testing.T) {
		defer reset()
		edit(gemfile, origGemfile, `gem "lp_plat"`, `gem "lp_plat", "~> 3.0"`)
		_, err := runFake(t, dir, &Builder{Getenv: knob(abi)})
		want := "Gemfile and Gemfile.lock disagree (added to the Gemfile: lp_plat (~> 3.0); deleted from the Gemfile: lp_plat): run `bundle lock` and commit Gemfile.lock; layerpack installs the lockfile as it is (frozen)"
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
	})
}

func mustOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// checkClean fails on build leftovers in a layer: logs and Makefiles of compiled
// extensions, object files, Bundler's files, and any file naming the build's
// scratch folders.
func checkClean(t *testing.T, zipPath string) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	exts := 0
	for _, f := range zr.File {
		base := path.Base(f.Name)
		switch {
		case f.Name == "ruby/" || f.Name == "ruby/gems/":
		case !strings.HasPrefix(f.Name, "ruby/gems/3.3.0/"):
			t.Errorf("%s is outside ruby/gems/3.3.0/", f.Name)
		case base == "gem_make.out" || base == "mkmf.log" || base == "Makefile" || strings.HasSuffix(base, ".o") ||
			strings.HasSuffix(base, ".time") || base == ".bundle" || strings.Contains(f.Name, "/cache/") ||
			strings.Contains(f.Name, "/build_info/") || strings.Contains(f.Name, "/doc/"):
			t.Errorf("%s is a build leftover", f.Name)
		}
		if strings.Contains(f.Name, "/extensions/") && base == "gem.build_complete" {
			exts++
		}
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		for _, bad := range []string{"/tmp/", "/layerpack/ruby", "/root/"} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s contains %q", f.Name, bad)
			}
		}
	}
	if exts != 1 {
		t.Errorf("%d compiled extensions in %s, want 1", exts, filepath.Base(zipPath))
	}
}

// The real thing: gems installed by the Ruby of the Debian test image in BuildKit,
// for both architectures (arm64 under QEMU), then loaded from the unzipped layer at
// /opt with Lambda's GEM_PATH. The Debian image has Ruby 3.1, which no Lambda
// runtime has, so the test knob lets it build a ruby3.3 layer (see TestABIEnv).
func TestBuildKit(t *testing.T) {
	env := lambdatest.Need(t)
	dir := app(t, simpleToml, &env)
	eng := env.Engine(t)
	b := &Builder{Getenv: knob("3.1.0")}
	// The whole pipeline (builder, zip, verify) with a fresh cache; items get the
	// test image of their architecture.
	buildZips := func(dir string, arches ...lambda.Arch) map[lambda.Arch]*pipeline.Result {
		t.Helper()
		res, _, err := lambdatest.Build(t, dir, b, arches, eng, lambdatest.BuildOptions{Image: env.Image, Log: os.Stderr})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	start := time.Now()
	res := buildZips(dir, lambda.Arches...)
	t.Logf("both architectures: %s", time.Since(start).Round(time.Millisecond))
	script := `export GEM_PATH=/opt/ruby/gems/3.3.0 RUBYLIB=/opt/ruby/lib
ruby -e 'require "lp_native"; require "lp_plat"; puts LpNative.describe, LpPlat::BUILT_FOR
begin; require "lp_devonly"; puts "lp_devonly is in the layer"; rescue LoadError; end'`
	for _, a := range lambda.Arches {
		r := res[a]
		checkClean(t, r.Path)
		out := env.Run(t, a, r.Path, script, nil)
		want := "hello, " + a.GNU() + " (5)\n" + a.GNU() + "-linux\n"
		if out != want {
			t.Errorf("%s: the layer printed %q, want %q", a, out, want)
		}
	}

	// Determinism: a second build from clean caches (BuildKit's too: NoCache), of
	// a copy of the project in another folder, gives the same bytes: the C
	// extension compiles in the gem's folder under GEM_HOME, the same path on every
	// build.
	start = time.Now()
	again := buildZips(app(t, simpleToml, &env), lambda.X86_64)[lambda.X86_64]
	t.Logf("x86_64 again: %s", time.Since(start).Round(time.Millisecond))
	if again.CodeSha256 != res[lambda.X86_64].CodeSha256 {
		t.Errorf("two builds differ: %s and %s", res[lambda.X86_64].CodeSha256, again.CodeSha256)
	}
}
