package ruby

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/redact"
)

// Bundler's registry settings on the host: gem source mirrors and per-host
// credentials. `bundle install` in the build container should reach the gem
// servers the way host Bundler does, so the builder reads the settings from the
// places host Bundler reads them and gives them to the install step - as one
// BuildKit secret environment variable, never as plain step environment, a cache
// key input, a file in the layer or a log line.
//
// Bundler's rules (bundler/lib/bundler/settings.rb, mirror.rb, yaml_serializer.rb;
// the same from 2.3 to 2.6):
//
//   - Three levels, first found wins, key by key: the app config
//     ($BUNDLE_APP_CONFIG/config, relative to the Gemfile's folder, else
//     <Gemfile's folder>/.bundle/config), then BUNDLE_* environment variables,
//     then the user config ($BUNDLE_CONFIG, $BUNDLE_USER_CONFIG,
//     $BUNDLE_USER_HOME/config, ~/.bundle/config: the first that is set).
//     BUNDLE_IGNORE_CONFIG (set at all) skips both files.
//   - A setting's key is "BUNDLE_" + the name with "." -> "__", "-" -> "___",
//     upper-cased; names starting with "http" or "mirror.http" first get their
//     URI normalised (a trailing "/"). So `mirror.https://rubygems.org` is
//     BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/, and credentials for gems.example.com
//     are BUNDLE_GEMS__EXAMPLE__COM (or BUNDLE_HTTPS://GEMS__EXAMPLE__COM/ for
//     one URI).
//   - Credentials for a source are looked up for the URI Bundler fetches from
//     (the mirror when there is one): the whole URI's key first, then its host's.
//
// The container's Bundler gets the settings that matter - every mirror.* key
// and the credential keys of every source and mirror the lockfile can use - as
// environment values, the middle level; its app and user configs are empty
// scratch files, so each key has there the value host Bundler would see.
// Mirror keys are not valid shell variable names (":" and "/"), and sh drops
// those from the environment it passes on; a small Ruby wrapper sets them just
// before it runs bundle.

// bundlerSecretEnv is the secret environment variable holding the settings
// (a JSON object of Bundler keys and values); the wrapper removes it.
const bundlerSecretEnv = "LAYERPACK_BUNDLE_SETTINGS"

// bundleWrapper runs `bundle ARGS` with the settings of bundlerSecretEnv in its
// environment.
const bundleWrapper = `s = ENV.delete("` + bundlerSecretEnv + `")
if s
  require "json"
  JSON.parse(s).each { |k, v| ENV[k] = v }
end
exec(["bundle", "bundle"], *ARGV)
`

// bundlerLevel is one level of Bundler's configuration.
type bundlerLevel struct {
	what string            // "environment", or the file's name for messages
	file bool              // the level is a file: names say "in FILE"
	vals map[string]string // Bundler keys (BUNDLE_...) and values
}

// bundlerConfig is host Bundler's configuration for one Gemfile, highest
// level first.
type bundlerConfig struct {
	levels []bundlerLevel
}

// setting is one resolved key.
type setting struct {
	key, value string
	level      *bundlerLevel
}

// from says where a setting comes from, for plan and error messages.
func (s setting) from() string {
	if s.level.file {
		return s.key + " in " + s.level.what
	}
	return "the " + s.key + " environment variable"
}

// lookup returns a key's value from the highest level that has it.
func (c *bundlerConfig) lookup(key string) (setting, bool) {
	for i := range c.levels {
		if v, ok := c.levels[i].vals[key]; ok {
			return setting{key: key, value: v, level: &c.levels[i]}, true
		}
	}
	return setting{}, false
}

// keys is every key of every level, sorted.
func (c *bundlerConfig) keys() []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range c.levels {
		for k := range l.vals {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// hostEnv is the host environment the settings are read from.
type hostEnv struct {
	environ []string // KEY=VALUE
	home    string   // the user's home folder ("" when unknown)
}

func (e hostEnv) get(k string) (string, bool) {
	for _, kv := range e.environ {
		if key, v, ok := strings.Cut(kv, "="); ok && key == k {
			return v, true
		}
	}
	return "", false
}

// readBundlerConfig reads the three levels host Bundler would read for a Gemfile
// in dir. display names files for messages.
func readBundlerConfig(dir string, env hostEnv, display func(string) string) (*bundlerConfig, error) {
	c := &bundlerConfig{}
	_, ignore := env.get("BUNDLE_IGNORE_CONFIG")
	addFile := func(path string) error {
		if ignore || path == "" {
			return nil
		}
		vals, err := readBundlerFile(path)
		if err != nil {
			return err
		}
		c.levels = append(c.levels, bundlerLevel{what: display(path), file: true, vals: vals})
		return nil
	}
	app := filepath.Join(dir, ".bundle")
	if v, _ := env.get("BUNDLE_APP_CONFIG"); v != "" {
		app = v
		if !filepath.IsAbs(app) {
			app = filepath.Join(dir, app)
		}
	}
	if err := addFile(filepath.Join(app, "config")); err != nil {
		return nil, err
	}
	vals := map[string]string{}
	for _, kv := range env.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "BUNDLE_") && len(k) > len("BUNDLE_") {
			vals[k] = v
		}
	}
	c.levels = append(c.levels, bundlerLevel{what: "environment", vals: vals})
	var user string
	for _, k := range []string{"BUNDLE_CONFIG", "BUNDLE_USER_CONFIG"} {
		if v, _ := env.get(k); v != "" && user == "" {
			user = v
		}
	}
	if v, _ := env.get("BUNDLE_USER_HOME"); v != "" && user == "" {
		user = filepath.Join(v, "config")
	}
	if user == "" && env.home != "" {
		user = filepath.Join(env.home, ".bundle", "config")
	}
	if err := addFile(user); err != nil {
		return nil, err
	}
	return c, nil
}

// readBundlerFile reads a Bundler config file the way Bundler's own minimal
// YAML reader does: top-level `KEY: "value"` lines (Bundler writes values with
// Ruby's String#inspect and reads them back without unescaping), keys made
// compatible with the environment form. A missing file is an empty level.
func readBundlerFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Bundler's config: %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" || line[0] == ' ' || line[0] == '-' || line[0] == '#' {
			continue // nested values and list items: no registry setting is one
		}
		key, val, ok := splitYAMLLine(line)
		if !ok || val == "" {
			continue
		}
		if containsHTTP(key) && !strings.HasSuffix(key, "/") {
			key += "/"
		}
		key = strings.ReplaceAll(key, ".", "__")
		key = strings.ReplaceAll(key, "-", "___")
		vals[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return vals, nil
}

// splitYAMLLine splits `KEY: VALUE` at the last ":" followed by a blank or the
// end of the line (Bundler's pattern is greedy), then drops one space and a pair
// of matching quotes around the value.
func splitYAMLLine(line string) (key, val string, ok bool) {
	cut := -1
	for i := len(line) - 1; i > 0; i-- {
		if line[i] == ':' && (i+1 == len(line) || line[i+1] == ' ' || line[i+1] == '\t') {
			cut = i
			break
		}
	}
	if cut < 0 {
		return "", "", false
	}
	key, val = line[:cut], strings.TrimPrefix(line[cut+1:], " ")
	if n := len(val); n >= 2 && (val[0] == '"' || val[0] == '\'') && val[n-1] == val[0] {
		val = val[1 : n-1]
	}
	return key, val, true
}

func containsHTTP(key string) bool {
	l := strings.ToLower(key)
	return strings.Contains(l, "http:") || strings.Contains(l, "https:")
}

// bundlerKey is Bundler's Settings.key_for: the environment form of a setting's name.
func bundlerKey(name string) string {
	if strings.HasPrefix(name, "http") || strings.HasPrefix(name, "mirror.http") {
		name = normalizeSettingURI(name)
	}
	name = strings.ReplaceAll(name, ".", "__")
	name = strings.ReplaceAll(name, "-", "___")
	return "BUNDLE_" + strings.ToUpper(name)
}

// normalizeSettingURI is Bundler's Settings.normalize_uri: an optional "word."
// prefix, a URI that gets a trailing "/", an optional ".fallback_timeout".
func normalizeSettingURI(name string) string {
	prefix, rest := "", name
	if i := strings.Index(name, "."); i > 0 && !strings.HasPrefix(name, "http") && isWord(name[:i]) {
		prefix, rest = name[:i+1], name[i+1:]
	}
	suffix := ""
	if s, ok := strings.CutSuffix(rest, ".fallback_timeout"); ok {
		rest, suffix = s, ".fallback_timeout"
	}
	if !strings.HasSuffix(rest, "/") {
		rest += "/"
	}
	return prefix + rest + suffix
}

func isWord(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// settingName is the name form of a key (Settings#all): BUNDLE_ dropped,
// "___" -> "-", "__" -> ".", lower case.
func settingName(key string) string {
	n := strings.TrimPrefix(key, "BUNDLE_")
	n = strings.ReplaceAll(n, "___", "-")
	n = strings.ReplaceAll(n, "__", ".")
	return strings.ToLower(n)
}

// mirrorKey parses a mirror setting's name the way Bundler's MirrorConfig does:
// "mirror.<uri or host or all>[.fallback_timeout]".
func mirrorKey(name string) (of string, fallback bool, ok bool) {
	rest, ok := strings.CutPrefix(name, "mirror.")
	if !ok || rest == "" {
		return "", false, false
	}
	rest = strings.TrimSuffix(rest, "/")
	if s, cut := strings.CutSuffix(rest, ".fallback_timeout"); cut && s != "" {
		rest, fallback = s, true
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return "", false, false
	}
	if strings.Contains(rest, "://") {
		rest += "/"
	}
	return rest, fallback, true
}

// registry is what the install step gets from the host's Bundler settings.
type registry struct {
	settings map[string]string // Bundler keys and values, for the secret
	describe []string          // plan lines, without any secret
	secrets  []string          // values to scrub from messages
	creds    map[string]setting
}

// mirrorInfo is a source's mirror as host Bundler would pick it.
type mirrorInfo struct {
	url      setting
	fallback *setting
}

// mirrorFor finds the mirror of a source URI (normalised, with a trailing "/"):
// mirror.all, else the URI's own, else its host's (Bundler's Mirrors#for; the
// fallback_timeout probe happens in the container).
func mirrorFor(c *bundlerConfig, source string) (mirrorInfo, bool) {
	byOf := map[string]*mirrorInfo{}
	for _, k := range c.keys() {
		of, fb, ok := mirrorKey(settingName(k))
		if !ok {
			continue
		}
		s, _ := c.lookup(k)
		m := byOf[of]
		if m == nil {
			m = &mirrorInfo{}
			byOf[of] = m
		}
		if fb {
			s := s
			m.fallback = &s
		} else {
			m.url = s
		}
	}
	host := ""
	if u, err := url.Parse(source); err == nil {
		host = strings.ToLower(u.Hostname())
	}
	for _, of := range []string{"all", strings.ToLower(source), host} {
		if m := byOf[of]; m != nil && m.url.key != "" {
			return *m, true
		}
	}
	return mirrorInfo{}, false
}

// credentialKeys are the keys Bundler looks credentials up under for a URI.
func credentialKeys(uri string) []string {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return nil
	}
	keys := []string{bundlerKey(normalizeSettingURI(uri))}
	if h := u.Hostname(); h != "" {
		keys = append(keys, bundlerKey(strings.ToLower(h)))
	}
	return keys
}

// resolveRegistry picks, for the lockfile's gem sources, the mirror and
// credential settings of c.
func resolveRegistry(c *bundlerConfig, sources []string) *registry {
	r := &registry{settings: map[string]string{}, creds: map[string]setting{}}
	// Every mirror key goes along: Bundler in the container chooses among them
	// (and probes fallback_timeout mirrors) exactly as on the host.
	for _, k := range c.keys() {
		if _, _, ok := mirrorKey(settingName(k)); ok {
			s, _ := c.lookup(k)
			r.settings[k] = s.value
			if u, err := url.Parse(s.value); err == nil && u.User != nil {
				r.secrets = append(r.secrets, s.value)
				if p, ok := u.User.Password(); ok {
					r.secrets = append(r.secrets, p)
				}
			}
		}
	}
	var uris []string
	for _, src := range sources {
		src = normalizeSettingURI(src)
		uris = append(uris, src)
		m, ok := mirrorFor(c, src)
		if !ok {
			continue
		}
		line := fmt.Sprintf("gem source %s: mirror %s (%s", src, maskURL(m.url.value), m.url.from())
		if m.fallback != nil {
			line += fmt.Sprintf("; fallback_timeout %s from %s", m.fallback.value, m.fallback.from())
		}
		r.describe = append(r.describe, line+")")
		uris = append(uris, normalizeSettingURI(m.url.value))
	}
	for _, u := range uris {
		for _, k := range credentialKeys(u) {
			s, ok := c.lookup(k)
			if !ok || s.value == "" {
				continue
			}
			if _, dup := r.creds[k]; dup {
				continue
			}
			r.creds[k] = s
			r.settings[k] = s.value
			r.secrets = append(r.secrets, s.value)
			if _, pass, ok := strings.Cut(s.value, ":"); ok && pass != "" {
				r.secrets = append(r.secrets, pass)
			}
			r.describe = append(r.describe, fmt.Sprintf("credentials for %s from %s (a build secret, not shown)",
				strings.TrimSuffix(settingName(k), "/"), s.from()))
		}
	}
	return r
}

// maskURL shows a URL with its user information replaced by "***"; a URL that
// does not parse is not shown at all (it might be all credentials).
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "(a value that is not a URL)"
	}
	if u.User == nil {
		return u.String()
	}
	u.User = nil
	scheme, rest, _ := strings.Cut(u.String(), "://")
	return scheme + "://***@" + rest
}

// scrub replaces every secret value in s.
func (r *registry) scrub(s string) string {
	if r == nil {
		return s
	}
	return redact.Values(s, r.secrets)
}

// lockSources are the rubygems sources (remote: lines of GEM sections) of a lockfile.
func lockSources(lockfile string) ([]string, error) {
	f, err := os.Open(lockfile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	seen := map[string]bool{}
	kind := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line != "" && line[0] != ' ':
			kind = line
		case kind == "GEM" && strings.HasPrefix(line, "  remote: "):
			src := strings.TrimSpace(strings.TrimPrefix(line, "  remote: "))
			if !seen[src] {
				seen[src] = true
				out = append(out, src)
			}
		}
	}
	return out, sc.Err()
}

// hostRegistry reads the host's Bundler settings for p. Installs from
// vendor/cache (--local) reach no gem server and get none.
func (b *Builder) hostRegistry(p *project, display func(string) string) (*registry, error) {
	if p.vendor != "" {
		return &registry{}, nil
	}
	env := hostEnv{environ: b.environ()}
	env.home, _ = env.get("HOME")
	if env.home == "" && b.Environ == nil {
		env.home, _ = os.UserHomeDir()
	}
	c, err := readBundlerConfig(filepath.Dir(p.gemfile), env, display)
	if err != nil {
		return nil, err
	}
	sources, err := lockSources(p.lockfile)
	if err != nil {
		return nil, err
	}
	return resolveRegistry(c, sources), nil
}

// writeSecret writes the settings for the step into dir (0600, in a 0700
// folder) and returns the secret that gives them to the step, or nil when there
// are none. The caller removes the file after the step.
func (r *registry) writeSecret(dir string) (*engine.Secret, string, error) {
	if r == nil || len(r.settings) == 0 {
		return nil, "", nil
	}
	dt, err := json.Marshal(r.settings)
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	f := filepath.Join(dir, "bundler-settings.json")
	if err := os.WriteFile(f, dt, 0o600); err != nil {
		return nil, "", err
	}
	return &engine.Secret{ID: "layerpack-bundler-settings", Source: f, Env: bundlerSecretEnv}, f, nil
}

// credsFor finds the credentials given for a host (as Bundler names it in its
// messages: "127.0.0.1", or a whole URI).
func (r *registry) credsFor(host string) (setting, bool) {
	want := []string{bundlerKey(strings.ToLower(host))}
	if strings.Contains(host, "://") {
		want = credentialKeys(host)
	}
	for _, k := range want {
		if s, ok := r.creds[k]; ok {
			return s, true
		}
	}
	// A host of a URI key: https://host:port/path/.
	keys := make([]string, 0, len(r.creds))
	for k := range r.creds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if u, err := url.Parse(settingName(k)); err == nil && strings.EqualFold(u.Hostname(), host) {
			return r.creds[k], true
		}
	}
	return setting{}, false
}
