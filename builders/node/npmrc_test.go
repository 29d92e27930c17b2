package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
)

// hermetic makes b read only env (getenv and environ): no user config or
// npm_config_* variable of the machine running the tests.
func hermetic(b *Builder, env map[string]string) {
	b.getenv = func(k string) string { return env[k] }
	b.environ = func() []string {
		var out []string
		for k, v := range env {
			out = append(out, k+"="+v)
		}
		return out
	}
}

const userNpmrcText = `; the user's config
registry = https://user-registry.example/
@corp:registry=https://npm.corp.example/
//npm.corp.example/:_authToken=${CORP_TOKEN}
//npm.corp.example/:certfile=/home/me/client.pem
cafile=/home/me/corp-ca.pem
prefix=/home/me/.npm-global
nodedir=/usr/local/include/node-src
ignore-scripts=true
fetch-retries = "0"
loglevel=http # comment
[weird]
registry=https://section.example/
`

const projectNpmrcText = "registry=https://project-registry.example/\n//npm.other.example/:_authToken=LITERAL-PROJECT-TOKEN\nignore-scripts=false\n"

func npmrcProject(t *testing.T) (dir, home string) {
	t.Helper()
	dir, home = t.TempDir(), t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json":      `{"name":"app"}`,
		"package-lock.json": `{"lockfileVersion":3,"packages":{"":{"name":"app"}}}`,
		".npmrc":            projectNpmrcText,
	})
	writeFiles(t, home, map[string]string{".npmrc": userNpmrcText})
	return dir, home
}

// The user's config, the project's and the environment's registry settings
// merge in npm's order (environment > project > user); host paths and host
// preferences are left out, with the reason.
func TestNpmConfigMerge(t *testing.T) {
	dir, home := npmrcProject(t)
	p, err := loadProject(dir, "app")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HOME":                     home,
		"CORP_TOKEN":               "corp-secret-1",
		"npm_config_@env:registry": "https://env.example/",
		"NPM_CONFIG_//npm.env.example/:_authToken": "ENV-TOKEN;with#chars",
		"npm_config_cache":                         "/host/cache", // not a registry setting: stays on the host
		"npm_config_registry":                      "",            // empty: npm ignores it
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	c, err := loadNpmConfig(p, "app", func(k string) string { return env[k] }, environ)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"~/.npmrc", "app/.npmrc", npmEnvSource}; !reflect.DeepEqual(c.Sources, want) {
		t.Errorf("sources %q, want %q", c.Sources, want)
	}
	wantFile := `# npm configuration for one layerpack build step, from ~/.npmrc, app/.npmrc, npm_config_* (environment)
@corp:registry=https://npm.corp.example/
//npm.corp.example/:_authToken=${CORP_TOKEN}
fetch-retries = "0"
loglevel=http # comment
registry=https://project-registry.example/
//npm.other.example/:_authToken=LITERAL-PROJECT-TOKEN
ignore-scripts=false
//npm.env.example/:_authToken="ENV-TOKEN;with#chars"
@env:registry=https://env.example/
`
	if got := string(c.file()); got != wantFile {
		t.Errorf("file:\n%s\nwant:\n%s", got, wantFile)
	}
	var dropped []string
	for _, d := range c.Dropped {
		dropped = append(dropped, strings.TrimPrefix(d.Key, sectionMark)+" "+d.From)
	}
	want := []string{
		"//npm.corp.example/:certfile ~/.npmrc", "cafile ~/.npmrc", "prefix ~/.npmrc", "nodedir ~/.npmrc",
		"ignore-scripts ~/.npmrc", "weird registry ~/.npmrc",
	}
	if !reflect.DeepEqual(dropped, want) {
		t.Errorf("dropped %q, want %q", dropped, want)
	}
	if !reflect.DeepEqual(c.Refs, []string{"CORP_TOKEN"}) {
		t.Errorf("refs %q", c.Refs)
	}
	// Plan output: masked, and it says what was left out and why.
	d := strings.Join(c.describe(), "\n")
	for _, s := range []string{"corp-secret", "LITERAL-PROJECT-TOKEN", "ENV-TOKEN", "CORP_TOKEN"} {
		if strings.Contains(d, s) {
			t.Errorf("describe shows %s:\n%s", s, d)
		}
	}
	for _, s := range []string{
		"npm config for build steps (one secret userconfig file) from ~/.npmrc, app/.npmrc, npm_config_* (environment): @corp:registry=https://npm.corp.example/, //npm.corp.example/:_authToken=***,",
		"registry=https://project-registry.example/, //npm.other.example/:_authToken=***",
		"cafile (~/.npmrc: a host file; the step trusts the host CA bundle the engine mounts (trust_host_ca))",
		"ignore-scripts (~/.npmrc: a host preference",
	} {
		if !strings.Contains(d, s) {
			t.Errorf("describe lacks %q:\n%s", s, d)
		}
	}
	// The cache key gets the user's and the environment's settings, masked; the
	// project's .npmrc is a file input of its own.
	k := c.keyText()
	if want := "@corp:registry=https://npm.corp.example/\n//npm.corp.example/:_authToken=***\nfetch-retries=0\nloglevel=http\n" +
		"//npm.env.example/:_authToken=***\n@env:registry=https://env.example/\n"; k != want {
		t.Errorf("key text:\n%s\nwant:\n%s", k, want)
	}
}

func TestUserNpmrcLocation(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.npmrc"},
		{map[string]string{}, ""},
		{map[string]string{"HOME": "/h", "npm_config_userconfig": "~/cfg/npmrc"}, "/h/cfg/npmrc"},
		{map[string]string{"HOME": "/h", "NPM_CONFIG_USERCONFIG": "/etc/other"}, "/etc/other"},
		{map[string]string{"HOME": "/h", "NPM_CONFIG_USERCONFIG": "/upper", "npm_config_userconfig": "/lower"}, "/lower"},
	} {
		var environ []string
		for k, v := range tc.env {
			environ = append(environ, k+"="+v)
		}
		if got := userNpmrc(func(k string) string { return tc.env[k] }, environ); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestIniValue(t *testing.T) {
	for in, want := range map[string]string{
		` https://x/ `:         "https://x/",
		`"a;b#c"`:              "a;b#c",
		`'single'`:             "single",
		`'"json"'`:             "json",
		`value ; comment`:      "value",
		`a\;b\#c`:              "a;b#c",
		`C:\path`:              `C:\path`,
		`"not json\q"`:         `"not json\q"`,
		`tok#en`:               "tok",
		`//h/:_authToken=`:     "//h/:_authToken=",
		`${NPM_TOKEN}`:         "${NPM_TOKEN}",
		`"ENV-TOKEN;with#chs"`: "ENV-TOKEN;with#chs",
	} {
		if got := iniValue(in); got != want {
			t.Errorf("iniValue(%q) = %q, want %q", in, got, want)
		}
	}
	// What iniQuote writes reads back the same.
	for _, v := range []string{"plain", "a;b", "x#y", `back\slash`, `"quoted"`, " spaced "} {
		if got := iniValue(iniQuote(v)); got != v {
			t.Errorf("iniQuote(%q) = %q reads back as %q", v, iniQuote(v), got)
		}
	}
}

// A container build gets the merged config as one 0600 secret file in the job's
// work folder, the variables it refers to as secret env; no credential is in the
// step's definition, the mounts, the inputs, the plan or the log.
func TestBuildContainerModeUserNpmrc(t *testing.T) {
	dir, home := npmrcProject(t)
	writeFiles(t, dir, map[string]string{
		"package-lock.json": `{"lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/a":{"version":"1.0.0","resolved":"https://project-registry.example/a/-/a-1.0.0.tgz"}}}`,
	})
	b := New()
	hermetic(b, map[string]string{"HOME": home, "CORP_TOKEN": "corp-secret-1", "npm_config_@env:registry": "https://env-user:ENVPASS@env.example/"})
	secretsIn := []string{"corp-secret-1", "LITERAL-PROJECT-TOKEN", "ENVPASS"}
	var rcFile string
	var rcMode os.FileMode
	eng := &engine.Fake{Hook: func(ctx context.Context, s *engine.Step) error {
		if s.Env["npm_config_userconfig"] != npmrcPath {
			t.Errorf("npm_config_userconfig = %q", s.Env["npm_config_userconfig"])
		}
		var ids []string
		for _, sec := range s.Secrets {
			ids = append(ids, sec.ID+" "+sec.Target+" "+sec.Env)
			if sec.ID == "layerpack-npmrc" {
				b, err := os.ReadFile(sec.Source)
				if err != nil {
					t.Fatal(err)
				}
				st, _ := os.Stat(sec.Source)
				rcFile, rcMode = string(b), st.Mode().Perm()
			}
		}
		if want := []string{"layerpack-npmrc " + npmrcPath + " ", "layerpack-npmrc-env-CORP_TOKEN  CORP_TOKEN"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("secrets %q, want %q", ids, want)
		}
		for k, v := range s.Env {
			for _, sec := range secretsIn {
				if strings.Contains(k+v, sec) {
					t.Errorf("step env %s=%s holds a credential", k, v)
				}
			}
		}
		for _, m := range s.Mounts {
			for _, f := range listFiles(t, m.Source) {
				if strings.Contains(f, "npmrc") {
					t.Errorf("mount %s holds %s", m.Source, f)
				}
			}
		}
		writeFiles(t, s.Dest, map[string]string{nodeInfo: "v18.20.4\n", "node_modules/a/package.json": `{"name":"a","version":"1.0.0"}`})
		return nil
	}}
	l := layer(dir, config.Node{Build: "container"}, runtimes(t, "nodejs18.x"))
	var log bytes.Buffer
	j := newJob(t, l, lambda.X86_64, eng, &log)
	if err := b.Build(context.Background(), j); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if rcMode != 0o600 {
		t.Errorf("secret file mode %v", rcMode)
	}
	for _, s := range []string{"registry=https://project-registry.example/\n", "//npm.corp.example/:_authToken=${CORP_TOKEN}\n",
		"@env:registry=https://env-user:ENVPASS@env.example/\n", "//npm.other.example/:_authToken=LITERAL-PROJECT-TOKEN\n"} {
		if !strings.Contains(rcFile, s) {
			t.Errorf("secret file lacks %q:\n%s", s, rcFile)
		}
	}
	if strings.Contains(rcFile, "cafile") || strings.Contains(rcFile, "/home/me") {
		t.Errorf("secret file names host paths:\n%s", rcFile)
	}
	if !strings.Contains(log.String(), "npm config: cafile from ~/.npmrc left out of the step: a host file") {
		t.Errorf("log:\n%s", log.String())
	}
	tg := builders.Target{Arch: lambda.X86_64, Runtimes: l.Runtimes}
	in, err := b.Inputs(l, tg)
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, i := range in {
		text = append(text, i.Name+" "+i.Value)
	}
	steps := strings.Join(b.Steps(l, tg), "\n")
	for _, s := range secretsIn {
		for _, where := range []string{log.String(), strings.Join(text, "\n"), steps} {
			if strings.Contains(where, s) {
				t.Errorf("%s shown in:\n%s", s, where)
			}
		}
	}
	if !strings.Contains(steps, "@env:registry=https://***@env.example/") {
		t.Errorf("steps:\n%s", steps)
	}
	// The user's registry settings are part of the key (masked), its tokens are not:
	// another token, same key; another registry, another key.
	key := func() string {
		in, err := b.Inputs(l, tg)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, i := range in {
			if i.Path == "" {
				s = append(s, i.Name+"="+i.Value)
			}
		}
		return strings.Join(s, "\n")
	}
	writeFiles(t, home, map[string]string{".npmrc": strings.Replace(userNpmrcText, "${CORP_TOKEN}", "literal-A", 1)})
	k0 := key()
	writeFiles(t, home, map[string]string{".npmrc": strings.Replace(userNpmrcText, "${CORP_TOKEN}", "literal-B", 1)})
	if k1 := key(); k1 != k0 {
		t.Errorf("a new token changed the key:\n%s\n---\n%s", k0, k1)
	}
	writeFiles(t, home, map[string]string{".npmrc": strings.Replace(strings.Replace(userNpmrcText, "${CORP_TOKEN}", "literal-B", 1), "https://npm.corp.example/", "https://npm2.corp.example/", 1)})
	if k2 := key(); k2 == k0 {
		t.Error("a new scoped registry left the key as it was")
	}
}

// Without any npm config there is no secret and no plan line.
func TestNoNpmConfig(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"package.json": `{"name":"app"}`, "package-lock.json": `{"lockfileVersion":3,"packages":{"":{"name":"app"}}}`})
	b := New()
	hermetic(b, map[string]string{"HOME": t.TempDir()})
	p, _ := loadProject(dir, "app")
	secs, env, err := b.secrets(p, "app", t.TempDir(), func(string, ...any) {})
	if err != nil || secs != nil || env != nil {
		t.Errorf("secrets %v %v %v", secs, env, err)
	}
	l := layer(dir, config.Node{Build: "container"}, runtimes(t, "nodejs20.x"))
	for _, s := range b.Steps(l, builders.Target{Arch: lambda.X86_64, Runtimes: l.Runtimes}) {
		if strings.Contains(s, "npm config") {
			t.Errorf("step %q", s)
		}
	}
	// An unreadable user config is an error that names it.
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, ".npmrc"), 0o755)
	hermetic(b, map[string]string{"HOME": home})
	if _, _, err := b.secrets(p, "app", t.TempDir(), func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "npm user config "+filepath.Join(home, ".npmrc")) {
		t.Errorf("error %v", err)
	}
}
