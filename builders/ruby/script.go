package ruby

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
)

// installScript runs in the build container. Problems the builder explains itself
// are reported on a last line starting with a marker (see explain):
//
//	LAYERPACK_ERROR no-ruby | no-bundler | ruby-abi VERSION ABI
//	LAYERPACK_BUNDLE_CA <the CA bundle Bundler was given, or "none">
//	LAYERPACK_BUNDLE_FAILED <Bundler's output, lines joined with tabs>
//
// GEM_HOME is the layer's folder and GEM_PATH only that folder, so gems of the image
// never count as installed; BUNDLE_PATH__SYSTEM installs into GEM_HOME itself (not
// into a vendor/bundle/ruby/X.Y.0 tree); BUNDLE_FROZEN refuses any change to the
// lockfile. BUNDLER_VERSION is the image's Bundler: without it, Bundler 2.3 (which
// ignores BUNDLE_VERSION=system) installs the lockfile's BUNDLED WITH version into
// GEM_HOME, the layer, and restarts with it. Bundler's own config goes to a scratch
// folder, never into the layer,
// and the image's user config is not read: the host's registry settings come
// through bundleWrapper (registry.go) only.
const installScript = `fail() { printf 'LAYERPACK_ERROR %s\n' "$*"; exit 1; }
command -v ruby >/dev/null 2>&1 || fail no-ruby
command -v bundle >/dev/null 2>&1 || fail no-bundler
set -- $(ruby -e 'print RUBY_VERSION, " ", RbConfig::CONFIG["ruby_version"], " ", Gem::Platform.local')
bv=$(bundle --version) && bv=${bv##* }
echo "layerpack: Ruby $1 (ABI $2, platform $3), Bundler $bv"
if [ "$2" != "$LAYERPACK_RUBY_ABI" ] && [ "$2" != "$LAYERPACK_TEST_ABI" ]; then
  fail ruby-abi "$1" "$2"
fi
work=$(mktemp -d)
mkdir -p "$work/src" "$LAYERPACK_GEM_HOME"
cp -R "$LAYERPACK_CONTEXT/." "$work/src/"
unset BUNDLE_PATH BUNDLE_DEPLOYMENT BUNDLE_WITH BUNDLE_ONLY BUNDLE_CACHE_PATH BUNDLE_BIN BUNDLE_CONFIG BUNDLE_USER_CONFIG RUBYOPT RUBYLIB
export GEM_HOME="$LAYERPACK_GEM_HOME" GEM_PATH="$LAYERPACK_GEM_HOME"
export BUNDLE_GEMFILE="$work/src/$LAYERPACK_GEMFILE" BUNDLE_APP_CONFIG="$work/bundle-config" BUNDLE_USER_HOME="$work/bundle-home"
export BUNDLER_VERSION="$bv"
export BUNDLE_PATH__SYSTEM=true BUNDLE_FROZEN=true BUNDLE_SILENCE_ROOT_WARNING=true BUNDLE_VERSION=system BUNDLE_IGNORE_MESSAGES=true BUNDLE_NO_PRUNE=true
cd "$work/src"
if [ "$LAYERPACK_LOCAL" = 1 ]; then set -- --local; else set --; fi
if ! ruby -e "$LAYERPACK_BUNDLE_RB" install "$@" >"$work/bundle.out" 2>&1; then
  cat "$work/bundle.out"
  printf 'LAYERPACK_BUNDLE_CA %s\n' "${BUNDLE_SSL_CA_CERT:-none}"
  printf 'LAYERPACK_BUNDLE_FAILED %s\n' "$(tr '\n' '\t' <"$work/bundle.out")"
  exit 1
fi
cat "$work/bundle.out"
ruby -e "$LAYERPACK_CLEAN_RB"
rm -rf "$work"
`

// cleanScript removes what compiling left in the extension folders of each gem
// (Makefile, object files, copies of the library, *.time stamps, mkmf.log): every
// file there that the .gem did not ship. It needs the .gem files in GEM_HOME/cache
// for their file lists, so it runs before tidy deletes that folder. The library
// itself stays where RubyGems put it: extensions/<platform>/<abi>/<gem>/ and the
// gem's require path.
const cleanScript = `require "rubygems/package"
home = ENV.fetch("GEM_HOME")
Dir.glob(File.join(home, "specifications", "*.gemspec")).sort.each do |sf|
  full = File.basename(sf, ".gemspec")
  gem = File.join(home, "cache", full + ".gem")
  next unless File.file?(gem)
  spec = Gem::Package.new(gem).spec
  next if spec.extensions.empty?
  root = File.join(home, "gems", full)
  shipped = {}
  spec.files.each { |f| shipped[File.expand_path(f, root)] = true }
  keep = spec.require_paths.map { |p| File.expand_path(p, root) + "/" }
  spec.extensions.map { |e| File.dirname(File.expand_path(e, root)) }.uniq.each do |dir|
    Dir.glob("**/*", File::FNM_DOTMATCH, base: dir).sort.each do |rel|
      path = File.join(dir, rel)
      next if File.directory?(path) && !File.symlink?(path)
      next if shipped[path] || keep.any? { |k| path.start_with?(k) }
      File.delete(path)
    end
  end
end
`

// tidy removes from an installed GEM_HOME what a layer does not need and what would
// make its bytes depend on the build: the downloaded .gem files, Bundler's
// build_info, generated docs, the build logs of extensions (they hold build paths
// and commands), empty folders. Gem executables in bin/ get a portable shebang (the
// build image's ruby is not where the Lambda runtime's is).
func tidy(home string) error {
	for _, d := range []string{"cache", "build_info", "doc"} {
		if err := os.RemoveAll(filepath.Join(home, d)); err != nil {
			return err
		}
	}
	err := filepath.WalkDir(filepath.Join(home, "extensions"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && (d.Name() == "gem_make.out" || d.Name() == "mkmf.log") {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := fixShebangs(filepath.Join(home, "bin")); err != nil {
		return err
	}
	return removeEmptyDirs(home)
}

// fixShebangs rewrites "#!/usr/bin/ruby3.1" (or any ruby path) to "#!/usr/bin/env ruby".
func fixShebangs(bin string) error {
	ents, err := os.ReadDir(bin)
	if errors.Is(err, fs.ErrNotExist) {
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
		first, rest, _ := strings.Cut(string(b), "\n")
		if !strings.HasPrefix(first, "#!") || !strings.Contains(first, "ruby") || first == "#!/usr/bin/env ruby" {
			continue
		}
		st, err := e.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte("#!/usr/bin/env ruby\n"+rest), st.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// removeEmptyDirs removes the empty folders below root (not root itself), deepest
// first. A .gem cannot ship an empty folder, so none of them is the gem's.
func removeEmptyDirs(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		if len(ents) == 0 {
			if err := os.Remove(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// explain turns the failure of the install step into an error that says what is
// wrong in the user's terms, when the step reported it with a marker line.
// Anything else is returned as it is (the step error carries the output's tail).
// No message carries a value of the host's Bundler credentials, even if a tool
// printed one.
func explain(err error, p *project, t builders.Target, image string, reg *registry) error {
	var se *engine.StepError
	if !errors.As(err, &se) {
		return err
	}
	ca := ""
	for i := len(se.Lines) - 1; i >= 0; i-- {
		line := se.Lines[i]
		if rest, ok := strings.CutPrefix(line, "LAYERPACK_ERROR "); ok {
			return scriptError(strings.Fields(rest), p, t, image)
		}
		if rest, ok := strings.CutPrefix(line, "LAYERPACK_BUNDLE_CA "); ok && ca == "" {
			ca = rest
		}
	}
	for i := len(se.Lines) - 1; i >= 0; i-- {
		if rest, ok := strings.CutPrefix(se.Lines[i], "LAYERPACK_BUNDLE_FAILED "); ok {
			lines := strings.Split(reg.scrub(rest), "\t")
			if e := registryError(lines, ca, reg); e != nil {
				return e
			}
			return bundlerError(lines, p, t)
		}
	}
	if reg == nil || len(reg.secrets) == 0 {
		return err
	}
	scrubbed := *se
	scrubbed.Lines = make([]string, len(se.Lines))
	for i, l := range se.Lines {
		scrubbed.Lines[i] = reg.scrub(l)
	}
	return &scrubbed
}

var (
	badAuthRE  = regexp.MustCompile(`^Bad username or password for (.+?)\.?$`)
	needAuthRE = regexp.MustCompile(`^Authentication is required for (.+?)\.?$`)
	certRE     = regexp.MustCompile(`^Could not verify the SSL certificate for (.+?)\.$`)
)

// registryError explains a gem server that refused Bundler's credentials, asked
// for some, or presented a certificate the build did not trust; nil for other
// failures. ca is what the step's Bundler was given as BUNDLE_SSL_CA_CERT
// (engine.HostCAPath when the host's CA bundle was given, "none" without one).
func registryError(lines []string, ca string, reg *registry) error {
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if m := badAuthRE.FindStringSubmatch(l); m != nil {
			// Bundler names the host, or the URI with the user name.
			host := m[1]
			if u, err := url.Parse(host); err == nil && u.Host != "" {
				host = u.Host
			}
			from := "the user information of a mirror URL"
			if reg != nil {
				if s, ok := reg.credsFor(m[1]); ok {
					from = s.from()
				}
			}
			return fmt.Errorf("the gem server %s refused the credentials from %s (HTTP 401, Bundler: \"Bad username or password\"): correct them on the host; layerpack passes them to bundle install as a build secret",
				host, from)
		}
		if m := needAuthRE.FindStringSubmatch(l); m != nil {
			host, name := m[1], m[1]
			if u, err := url.Parse(host); err == nil && u.Host != "" {
				host, name = u.Host, u.Hostname()
			}
			return fmt.Errorf("the gem server %s asks for credentials (HTTP 401) and the host's Bundler settings have none for it: set %s=USER:PASSWORD in the environment, or run `bundle config set --global %s USER:PASSWORD`; layerpack passes them to bundle install as a build secret",
				host, bundlerKey(strings.ToLower(name)), name)
		}
		if m := certRE.FindStringSubmatch(l); m != nil {
			if ca != engine.HostCAPath {
				return fmt.Errorf("bundle install could not verify the TLS certificate of %s: the build container was not given the host's CA bundle (--no-trust-host-ca, or [buildkit] trust_host_ca = false); allow it when the host reaches the gem server through a private CA or a TLS-intercepting proxy",
					m[1])
			}
			return fmt.Errorf("bundle install could not verify the TLS certificate of %s, even with the host's CA bundle (%s in the container; on the host $SSL_CERT_FILE, else %s): add the CA that signed the server's certificate to that bundle",
				m[1], ca, engine.DefaultHostCABundle)
		}
	}
	return nil
}

func samImage(p *project, t builders.Target) string {
	return lambda.SAMBuildImage(p.runtime, t.Arch)
}

func scriptError(f []string, p *project, t builders.Target, image string) error {
	switch {
	case len(f) == 1 && f[0] == "no-ruby":
		return fmt.Errorf("the build image %s has no ruby: a Ruby layer is installed by the runtime's Ruby and Bundler in the build image, such as %s", image, samImage(p, t))
	case len(f) == 1 && f[0] == "no-bundler":
		return fmt.Errorf("the build image %s has ruby but no bundle command: install Bundler in it or use an image that has it, such as %s", image, samImage(p, t))
	case len(f) == 3 && f[0] == "ruby-abi":
		return fmt.Errorf("the build image's Ruby is %s (extension ABI %s), but %s loads gems from %s, built for Ruby %s (ABI %s): use a build image with Ruby %s, such as %s",
			f[1], f[2], p.runtime, p.gemDir(), p.rubyVer, p.abi(), p.rubyVer, samImage(p, t))
	}
	return fmt.Errorf("the install step reported %q", strings.Join(f, " "))
}

var (
	notFoundRE  = regexp.MustCompile(`Could not find (?:gem )?'?([^' ]+?)'?\.? in (?:any of the sources|locally installed gems|rubygems repository)`)
	installedRE = regexp.MustCompile(`An error occurred while installing (\S+) \(([^)]+)\)`)
	changeRE    = regexp.MustCompile(`^You have (added to|deleted from|changed in) the Gemfile:$`)
)

// bundlerError explains a failed `bundle install` from its output.
func bundlerError(lines []string, p *project, t builders.Target) error {
	lock := filepath.Base(p.lockfile)
	gemfile := filepath.Base(p.gemfile)
	var changes []string
	for i := 0; i < len(lines); i++ {
		m := changeRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		var items []string
		for i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "* ") {
			i++
			items = append(items, strings.TrimPrefix(strings.TrimSpace(lines[i]), "* "))
		}
		changes = append(changes, m[1]+" the Gemfile: "+strings.Join(items, ", "))
	}
	if len(changes) > 0 {
		return fmt.Errorf("%s and %s disagree (%s): run `bundle lock` and commit %s; layerpack installs the lockfile as it is (frozen)",
			gemfile, lock, strings.Join(changes, "; "), lock)
	}
	for _, l := range lines {
		if m := notFoundRE.FindStringSubmatch(l); m != nil {
			if p.vendor != "" {
				return fmt.Errorf("%s locks %s, which is not in vendor/cache (bundle install --local uses only those gems): add it with `bundle cache`", lock, m[1])
			}
			return fmt.Errorf("%s locks %s, which none of the Gemfile's sources has", lock, m[1])
		}
	}
	tail := lastLines(lines, 15)
	for _, l := range lines {
		if m := installedRE.FindStringSubmatch(l); m != nil {
			return fmt.Errorf("installing %s %s for linux/%s failed (a C extension that does not compile?); Bundler's output ends:%s",
				m[1], m[2], t.Arch.OCI(), tail)
		}
	}
	return fmt.Errorf("bundle install for linux/%s failed; its output ends:%s", t.Arch.OCI(), tail)
}

func lastLines(lines []string, n int) string {
	var keep []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	var b strings.Builder
	for _, l := range keep {
		b.WriteString("\n  | ")
		b.WriteString(l)
	}
	return b.String()
}
