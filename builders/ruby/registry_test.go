package ruby

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
)

// needBundler skips a test that compares with the host's Bundler when it has none.
func needBundler(t *testing.T) {
	t.Helper()
	if err := exec.Command("ruby", "-rbundler", "-e", "exit 0").Run(); err != nil {
		testneed.Missing(t, "needs ruby and Bundler on the host (apt-get install ruby bundler)")
	}
}

// Key normalisation agrees with Bundler's own Settings.key_for.
func TestBundlerKey(t *testing.T) {
	cases := map[string]string{
		"mirror.https://rubygems.org":                   "BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/",
		"mirror.https://rubygems.org/":                  "BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/",
		"mirror.https://rubygems.org.fallback_timeout":  "BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/__FALLBACK_TIMEOUT",
		"mirror.https://rubygems.org/.fallback_timeout": "BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/__FALLBACK_TIMEOUT",
		"mirror.all":                                     "BUNDLE_MIRROR__ALL",
		"mirror.rubygems.org":                            "BUNDLE_MIRROR__RUBYGEMS__ORG",
		"gems.example.com":                               "BUNDLE_GEMS__EXAMPLE__COM",
		"my-gems.example.com":                            "BUNDLE_MY___GEMS__EXAMPLE__COM",
		"127.0.0.1":                                      "BUNDLE_127__0__0__1",
		"https://gems.example.com/private":               "BUNDLE_HTTPS://GEMS__EXAMPLE__COM/PRIVATE/",
		"https://my-gems.example.com:8443/":              "BUNDLE_HTTPS://MY___GEMS__EXAMPLE__COM:8443/",
		"mirror.https://my-mirror.example.com:8443/path": "BUNDLE_MIRROR__HTTPS://MY___MIRROR__EXAMPLE__COM:8443/PATH/",
	}
	names := make([]string, 0, len(cases))
	for n, want := range cases {
		names = append(names, n)
		if got := bundlerKey(n); got != want {
			t.Errorf("bundlerKey(%q) = %q, want %q", n, got, want)
		}
	}
	slices.Sort(names)
	needBundler(t)
	out, err := exec.Command("ruby", append([]string{"-rbundler", "-e", "ARGV.each { |n| puts Bundler::Settings.key_for(n) }"}, names...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, n := range names {
		if i >= len(got) || got[i] != bundlerKey(n) {
			t.Errorf("Bundler's key for %q is %q, ours %q", n, got[min(i, len(got)-1)], bundlerKey(n))
		}
	}
}

// bundlerProject is a Gemfile folder with a lockfile of sources, a home folder
// and an environment for the settings reader.
type bundlerProject struct {
	dir, home string
	env       []string
}

func newBundlerProject(t *testing.T, sources ...string) *bundlerProject {
	t.Helper()
	root := t.TempDir()
	p := &bundlerProject{dir: filepath.Join(root, "app"), home: filepath.Join(root, "home")}
	var gemfile, lock strings.Builder
	for _, s := range sources {
		gemfile.WriteString("source \"" + s + "\"\n")
		lock.WriteString("GEM\n  remote: " + s + "/\n  specs:\n\n")
	}
	lock.WriteString("PLATFORMS\n  ruby\n\nDEPENDENCIES\n")
	for _, d := range []string{p.dir, p.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(p.dir, "Gemfile"), gemfile.String())
	write(t, filepath.Join(p.dir, "Gemfile.lock"), lock.String())
	p.env = []string{"HOME=" + p.home, "PATH=" + os.Getenv("PATH")}
	return p
}

func loadConfig(t *testing.T, path string) *config.File {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bundleConfig runs `bundle config set ARGS` in the project with its environment,
// so the files are written by Bundler itself.
func (p *bundlerProject) bundleConfig(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("bundle", append([]string{"config", "set"}, args...)...)
	cmd.Dir, cmd.Env = p.dir, p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bundle config set %q: %v\n%s", args, err, out)
	}
}

func (p *bundlerProject) registry(t *testing.T) *registry {
	t.Helper()
	pr := &project{gemfile: filepath.Join(p.dir, "Gemfile"), lockfile: filepath.Join(p.dir, "Gemfile.lock")}
	b := &Builder{Environ: func() []string { return p.env }}
	r, err := b.hostRegistry(pr, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// bundlerSays asks the host's Bundler, in the project with its environment,
// which mirror and credentials it uses for source (no fallback probes: the
// tests' mirrors do not listen).
func (p *bundlerProject) bundlerSays(t *testing.T, source string) (mirror, creds string) {
	t.Helper()
	cmd := exec.Command("ruby", "-rbundler", "-rjson", "-e", `
m = Bundler.settings.mirror_for(ARGV[0])
puts JSON.generate([m.to_s, Bundler.settings.credentials_for(m)])`, source)
	cmd.Dir, cmd.Env = p.dir, append(slices.Clone(p.env), "BUNDLE_GEMFILE="+filepath.Join(p.dir, "Gemfile"))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%v\n%s%s", err, out, stderr)
	}
	var res [2]*string
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res[1] != nil {
		creds = *res[1]
	}
	return *res[0], creds
}

// weSay is the same answer from our reading of the settings: the mirror (or
// the source itself) and the credentials the step gets for it.
func (p *bundlerProject) weSay(t *testing.T, r *registry, source string) (mirror, creds string) {
	t.Helper()
	env := hostEnv{environ: p.env, home: p.home}
	c, err := readBundlerConfig(p.dir, env, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	mirror = normalizeSettingURI(source)
	if m, ok := mirrorFor(c, mirror); ok {
		mirror = normalizeSettingURI(m.url.value)
	}
	for _, k := range credentialKeys(mirror) {
		if v, ok := r.settings[k]; ok {
			return mirror, v
		}
	}
	return mirror, ""
}

// The settings reader against Bundler itself: the three levels and their
// precedence (app config > environment > user config, key by key), the user
// config's alternative places, key forms, and what reaches the step.
func TestBundlerSettingsLikeBundler(t *testing.T) {
	needBundler(t)
	const src = "https://gems.layerpack.test"
	type check struct{ mirror, creds string }
	cases := []struct {
		name  string
		setup func(t *testing.T, p *bundlerProject)
		want  check
	}{
		{
			name: "user config mirror, env credentials for the mirror's host",
			setup: func(t *testing.T, p *bundlerProject) {
				p.bundleConfig(t, "--global", "mirror."+src, "https://mirror.example:8443")
				p.env = append(p.env, "BUNDLE_MIRROR__EXAMPLE=alice:TOKEN-1")
			},
			want: check{"https://mirror.example:8443/", "alice:TOKEN-1"},
		},
		{
			name: "app config beats the environment, which beats the user config",
			setup: func(t *testing.T, p *bundlerProject) {
				p.bundleConfig(t, "--global", "mirror."+src, "https://user.example/")
				p.bundleConfig(t, "--local", "mirror."+src, "https://app.example/")
				p.bundleConfig(t, "--global", "app.example", "user:FROM-USER-CONFIG")
				p.env = append(p.env, "BUNDLE_APP__EXAMPLE=env:FROM-ENV")
			},
			want: check{"https://app.example/", "env:FROM-ENV"},
		},
		{
			name: "a whole-URI credential key before the host's, dashes as ___",
			setup: func(t *testing.T, p *bundlerProject) {
				p.bundleConfig(t, "--local", "mirror."+src, "https://my-mirror.example/gems")
				p.bundleConfig(t, "--global", "https://my-mirror.example/gems", "uri:FROM-URI-KEY")
				p.env = append(p.env, "BUNDLE_MY___MIRROR__EXAMPLE=host:FROM-HOST-KEY")
			},
			want: check{"https://my-mirror.example/gems/", "uri:FROM-URI-KEY"},
		},
		{
			name: "BUNDLE_USER_CONFIG and BUNDLE_APP_CONFIG move the files",
			setup: func(t *testing.T, p *bundlerProject) {
				user := filepath.Join(p.home, "elsewhere", "bundle.yml")
				write(t, user, "---\nBUNDLE_MIRROR__HTTPS://GEMS__LAYERPACK__TEST/: \"https://moved.example\"\n")
				write(t, filepath.Join(p.dir, "cfg", "config"), "---\nBUNDLE_MOVED__EXAMPLE: \"app:MOVED-APP\"\n")
				write(t, filepath.Join(p.dir, ".bundle", "config"), "---\nBUNDLE_MOVED__EXAMPLE: \"app:NOT-READ\"\n")
				p.env = append(p.env, "BUNDLE_USER_CONFIG="+user, "BUNDLE_APP_CONFIG=cfg")
			},
			want: check{"https://moved.example/", "app:MOVED-APP"},
		},
		{
			name: "mirror for a host, credentials for the source when there is no mirror",
			setup: func(t *testing.T, p *bundlerProject) {
				p.bundleConfig(t, "--global", "mirror.other.example", "https://unused.example/")
				p.env = append(p.env, "BUNDLE_GEMS__LAYERPACK__TEST=direct:DIRECT")
			},
			want: check{"https://gems.layerpack.test/", "direct:DIRECT"},
		},
		{
			name: "mirror.all wins over a source's own mirror",
			setup: func(t *testing.T, p *bundlerProject) {
				p.bundleConfig(t, "--global", "mirror."+src, "https://own.example/")
				p.bundleConfig(t, "--global", "mirror.all", "https://all.example/")
			},
			want: check{"https://all.example/", ""},
		},
		{
			name: "BUNDLE_IGNORE_CONFIG skips the files",
			setup: func(t *testing.T, p *bundlerProject) {
				p.bundleConfig(t, "--global", "mirror."+src, "https://ignored.example/")
				p.env = append(p.env, "BUNDLE_IGNORE_CONFIG=1", "BUNDLE_GEMS__LAYERPACK__TEST=env:ENV-ONLY")
			},
			want: check{"https://gems.layerpack.test/", "env:ENV-ONLY"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newBundlerProject(t, src)
			c.setup(t, p)
			bm, bc := p.bundlerSays(t, src)
			if (check{bm, bc}) != c.want {
				t.Fatalf("Bundler itself says mirror %q, credentials %q; the test expects %+v", bm, bc, c.want)
			}
			r := p.registry(t)
			wm, wc := p.weSay(t, r, src)
			if (check{wm, wc}) != c.want {
				t.Errorf("we say mirror %q, credentials %q; Bundler says %+v", wm, wc, c.want)
			}
		})
	}
}

// fakeBuild runs Build with a fake engine that records the step; the hook sees
// the step while it "runs".
func fakeBuild(t *testing.T, p *bundlerProject, toml string, hook func(*engine.Step) error) (*engine.Fake, error) {
	t.Helper()
	root := filepath.Dir(p.dir)
	write(t, filepath.Join(root, "layerpack.toml"), toml)
	cfg := loadConfig(t, filepath.Join(root, "layerpack.toml"))
	eng := &engine.Fake{Hook: func(_ context.Context, s *engine.Step) error { return hook(s) }}
	work := t.TempDir()
	j := &builders.Job{Layer: cfg.Layers[0], Target: target(cfg, lambda.X86_64),
		Stage: t.TempDir(), Work: work, Engine: eng, Image: "rootfs:///unused"}
	b := &Builder{Getenv: knob(""), Environ: func() []string { return p.env }}
	err := b.Build(context.Background(), j)
	left, _ := os.ReadDir(filepath.Join(work, "secrets"))
	if len(left) > 0 {
		t.Errorf("%d secret files left in the work folder after the build", len(left))
	}
	return eng, err
}

// Mirror URLs and credentials reach the step only as the secret environment
// variable; plan shows mirror URLs with user information masked and says where
// credentials come from, never their values; the cache key has neither.
func TestRegistrySecretsAndPlan(t *testing.T) {
	p := newBundlerProject(t, "https://gems.layerpack.test")
	write(t, filepath.Join(p.home, ".bundle", "config"),
		"---\nBUNDLE_MIRROR__HTTPS://GEMS__LAYERPACK__TEST/: \"https://bob:MIRROR-PASSWORD@mirror.example:8443/gems\"\n"+
			"BUNDLE_MIRROR__HTTPS://GEMS__LAYERPACK__TEST/__FALLBACK_TIMEOUT: \"2\"\n")
	write(t, filepath.Join(p.dir, ".bundle", "config"), "---\nBUNDLE_PRIVATE__EXAMPLE: \"carol:APP-TOKEN\"\n")
	p.env = append(p.env, "BUNDLE_MIRROR__EXAMPLE=alice:ENV-TOKEN", "BUNDLE_UNRELATED__EXAMPLE=dave:UNRELATED", "BUNDLE_JOBS=4")
	// A second source, not mirrored, with credentials in the app config.
	lock := filepath.Join(p.dir, "Gemfile.lock")
	b, _ := os.ReadFile(lock)
	write(t, lock, "GEM\n  remote: https://private.example/\n  specs:\n\n"+string(b))
	secrets := []string{"MIRROR-PASSWORD", "ENV-TOKEN", "APP-TOKEN"}

	toml := "[layer.gems]\ncompatible_runtimes = [\"ruby3.3\"]\n[layer.gems.ruby]\ngemfile = \"app/Gemfile\"\n"
	write(t, filepath.Join(filepath.Dir(p.dir), "layerpack.toml"), toml)
	cfg := loadConfig(t, filepath.Join(filepath.Dir(p.dir), "layerpack.toml"))
	bl := &Builder{Getenv: knob(""), Environ: func() []string { return p.env }}
	steps := bl.Steps(cfg.Layers[0], target(cfg, lambda.X86_64))
	ins, err := bl.Inputs(cfg.Layers[0], target(cfg, lambda.X86_64))
	if err != nil {
		t.Fatal(err)
	}
	var inText []string
	for _, in := range ins {
		inText = append(inText, in.Name, in.Value)
		if in.Path != "" {
			inText = append(inText, in.Path)
		}
	}
	for _, s := range secrets {
		for _, text := range append(slices.Clone(steps), inText...) {
			if strings.Contains(text, s) {
				t.Errorf("plan or cache key shows %s: %q", s, text)
			}
		}
	}
	userCfg := filepath.Join(p.home, ".bundle", "config")
	wantSteps := []string{
		"host Bundler setting, given to bundle install as a build secret: gem source https://gems.layerpack.test/: mirror https://***@mirror.example:8443/gems (BUNDLE_MIRROR__HTTPS://GEMS__LAYERPACK__TEST/ in " + userCfg +
			"; fallback_timeout 2 from BUNDLE_MIRROR__HTTPS://GEMS__LAYERPACK__TEST/__FALLBACK_TIMEOUT/ in " + userCfg + ")",
		"host Bundler setting, given to bundle install as a build secret: credentials for private.example from BUNDLE_PRIVATE__EXAMPLE in app/.bundle/config (a build secret, not shown)",
		"host Bundler setting, given to bundle install as a build secret: credentials for mirror.example from the BUNDLE_MIRROR__EXAMPLE environment variable (a build secret, not shown)",
	}
	for _, w := range wantSteps {
		if !slices.Contains(steps, w) {
			t.Errorf("plan steps lack\n%s\nsteps:\n%s", w, strings.Join(steps, "\n"))
		}
	}
	// Same inputs as without any setting: mirrors and credentials are not in the key.
	plain := &Builder{Getenv: knob(""), Environ: func() []string { return nil }}
	ins0, _ := plain.Inputs(cfg.Layers[0], target(cfg, lambda.X86_64))
	if !slices.Equal(ins, ins0) {
		t.Errorf("inputs change with registry settings:\n%+v\n%+v", ins, ins0)
	}

	var got map[string]string
	_, err = fakeBuild(t, p, toml, func(s *engine.Step) error {
		for k, v := range s.Env {
			for _, sec := range append(secrets, "mirror.example") {
				if strings.Contains(v, sec) || strings.Contains(k, sec) {
					t.Errorf("step env %s holds %q", k, sec)
				}
			}
		}
		if len(s.Secrets) != 1 || s.Secrets[0].Env != bundlerSecretEnv || s.Secrets[0].Target != "" {
			t.Fatalf("step secrets = %+v, want one secret env %s", s.Secrets, bundlerSecretEnv)
		}
		st, err := os.Stat(s.Secrets[0].Source)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("secret file mode %v, want 0600", st.Mode().Perm())
		}
		dt, err := os.ReadFile(s.Secrets[0].Source)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(dt, &got); err != nil {
			t.Fatal(err)
		}
		return os.MkdirAll(filepath.Join(s.Dest, "ruby/gems/3.3.0/specifications"), 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"BUNDLE_MIRROR__HTTPS://GEMS__LAYERPACK__TEST/": "https://bob:MIRROR-PASSWORD@mirror.example:8443/gems",
		// Bundler's file reader adds "/" to every key with a URI in it.
		"BUNDLE_MIRROR__HTTPS://GEMS__LAYERPACK__TEST/__FALLBACK_TIMEOUT/": "2",
		"BUNDLE_MIRROR__EXAMPLE":  "alice:ENV-TOKEN",
		"BUNDLE_PRIVATE__EXAMPLE": "carol:APP-TOKEN",
	}
	if len(got) != len(want) {
		t.Errorf("secret settings = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("secret %s = %q, want %q", k, got[k], v)
		}
	}

	// vendor/cache: bundle install --local reaches no server and gets nothing.
	write(t, filepath.Join(p.dir, "vendor", "cache", "x-1.0.gem"), "x")
	_, err = fakeBuild(t, p, toml, func(s *engine.Step) error {
		if len(s.Secrets) != 0 {
			t.Errorf("a --local install got secrets %+v", s.Secrets)
		}
		return os.MkdirAll(filepath.Join(s.Dest, "ruby/gems/3.3.0/specifications"), 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The wrapper gives bundle the settings, including names sh would drop.
func TestBundleWrapper(t *testing.T) {
	if _, err := exec.LookPath("ruby"); err != nil {
		testneed.Missing(t, "needs ruby on the host")
	}
	bin := t.TempDir()
	write(t, filepath.Join(bin, "bundle"), "#!/usr/bin/env ruby\nrequire \"json\"\nputs JSON.generate([ARGV, ENV.select { |k, _| k.start_with?(\"BUNDLE_\", \"LAYERPACK_\") }])\n")
	if err := os.Chmod(filepath.Join(bin, "bundle"), 0o755); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{"BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/": "https://m.example/", "BUNDLE_M__EXAMPLE": "u:p w\\\"x"}
	dt, _ := json.Marshal(settings)
	cmd := exec.Command("sh", "-c", `ruby -e "$W" install --local`)
	cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "W=" + bundleWrapper, bundlerSecretEnv + "=" + string(dt)}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var res []json.RawMessage
	if err := json.Unmarshal(out, &res); err != nil || len(res) != 2 {
		t.Fatalf("%v: %s", err, out)
	}
	var args []string
	var env map[string]string
	json.Unmarshal(res[0], &args)
	json.Unmarshal(res[1], &env)
	if !slices.Equal(args, []string{"install", "--local"}) {
		t.Errorf("bundle got %q", args)
	}
	if len(env) != len(settings) {
		t.Errorf("bundle's BUNDLE_/LAYERPACK_ environment: %v, want %v", env, settings)
	}
	for k, v := range settings {
		if env[k] != v {
			t.Errorf("bundle's %s = %q, want %q", k, env[k], v)
		}
	}
}

func TestRegistryErrors(t *testing.T) {
	reg := &registry{creds: map[string]setting{}, secrets: []string{"alice:S3CRET-VALUE", "S3CRET-VALUE"}}
	env := bundlerLevel{what: "environment"}
	reg.creds["BUNDLE_127__0__0__1"] = setting{key: "BUNDLE_127__0__0__1", value: "alice:S3CRET-VALUE", level: &env}
	p := project0
	cases := []struct {
		name, ca, out, want string
	}{
		{
			name: "bad credentials",
			ca:   "/etc/layerpack/host-ca.pem",
			out:  "Fetching gem metadata from https://127.0.0.1:8443/\nBad username or password for 127.0.0.1.\nPlease double-check your credentials and correct them.\n",
			want: `the gem server 127.0.0.1 refused the credentials from the BUNDLE_127__0__0__1 environment variable (HTTP 401, Bundler: "Bad username or password"): correct them on the host; layerpack passes them to bundle install as a build secret`,
		},
		{
			name: "bad credentials, Bundler names the URI",
			ca:   "/etc/layerpack/host-ca.pem",
			out:  "Fetching gem metadata from https://127.0.0.1:8443/\nBad username or password for https://alice@127.0.0.1:8443/.\nPlease double-check your credentials and correct them.\n",
			want: `the gem server 127.0.0.1:8443 refused the credentials from the BUNDLE_127__0__0__1 environment variable (HTTP 401, Bundler: "Bad username or password"): correct them on the host; layerpack passes them to bundle install as a build secret`,
		},
		{
			name: "no credentials",
			ca:   "/etc/layerpack/host-ca.pem",
			out:  "Authentication is required for gems.example.com.\nPlease supply credentials for this source. You can do this by running:\n`bundle config set --global gems.example.com username:password`\n",
			want: "the gem server gems.example.com asks for credentials (HTTP 401) and the host's Bundler settings have none for it: set BUNDLE_GEMS__EXAMPLE__COM=USER:PASSWORD in the environment, or run `bundle config set --global gems.example.com USER:PASSWORD`; layerpack passes them to bundle install as a build secret",
		},
		{
			name: "no credentials, Bundler names the URI",
			ca:   "/etc/layerpack/host-ca.pem",
			out:  "Authentication is required for https://my-gems.example.com:8443/.\n",
			want: "the gem server my-gems.example.com:8443 asks for credentials (HTTP 401) and the host's Bundler settings have none for it: set BUNDLE_MY___GEMS__EXAMPLE__COM=USER:PASSWORD in the environment, or run `bundle config set --global my-gems.example.com USER:PASSWORD`; layerpack passes them to bundle install as a build secret",
		},
		{
			name: "certificate without the host CA",
			ca:   "none",
			out:  "Could not verify the SSL certificate for https://127.0.0.1:8443/.\nThere is a chance you are experiencing a man-in-the-middle attack, but most likely your system doesn't have the CA certificates needed for verification.\n",
			want: "bundle install could not verify the TLS certificate of https://127.0.0.1:8443/: the build container was not given the host's CA bundle (--no-trust-host-ca, or [buildkit] trust_host_ca = false); allow it when the host reaches the gem server through a private CA or a TLS-intercepting proxy",
		},
		{
			name: "certificate with the host CA",
			ca:   "/etc/layerpack/host-ca.pem",
			out:  "Could not verify the SSL certificate for https://127.0.0.1:8443/.\n",
			want: "bundle install could not verify the TLS certificate of https://127.0.0.1:8443/, even with the host's CA bundle (/etc/layerpack/host-ca.pem in the container; on the host $SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt): add the CA that signed the server's certificate to that bundle",
		},
		{
			name: "a printed secret is scrubbed",
			ca:   "none",
			out:  "Could not fetch specs from https://alice:S3CRET-VALUE@127.0.0.1:8443/ due to underlying error\n",
			want: "bundle install for linux/amd64 failed; its output ends:\n  | Could not fetch specs from https://***@127.0.0.1:8443/ due to underlying error",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			se := &engine.StepError{Step: "s", Lines: []string{"noise", "LAYERPACK_BUNDLE_CA " + c.ca, "LAYERPACK_BUNDLE_FAILED " + strings.ReplaceAll(c.out, "\n", "\t")}}
			err := explain(se, &p, builders.Target{Arch: lambda.X86_64}, "img", reg)
			if err.Error() != c.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
	// A failure without a marker keeps its lines, scrubbed.
	se := &engine.StepError{Step: "s", ExitCode: 1, Lines: []string{"curl https://alice:S3CRET-VALUE@x/"}}
	err := explain(se, &p, builders.Target{Arch: lambda.X86_64}, "img", reg)
	if strings.Contains(err.Error(), "S3CRET") || !strings.Contains(err.Error(), "https://***@x/") {
		t.Errorf("unscrubbed: %v", err)
	}
}

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@m.example/x":  "https://***@m.example/x",
		"https://TOKEN@m.example/": "https://***@m.example/",
		"https://m.example:8443":   "https://m.example:8443",
		"user:password":            "(a value that is not a URL)",
		"%zz":                      "(a value that is not a URL)",
	} {
		if got := maskURL(in); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", in, got, want)
		}
	}
}
