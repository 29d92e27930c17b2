package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree makes a config folder with a scripts/ folder and a file.
func writeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "scripts"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "scripts", "hello"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "native"), 0o755))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestParseValid(t *testing.T) {
	dir := writeTree(t)
	src := `
[defaults]
architectures = ["arm64"]
out_dir = "out"
compression = 9

[images]
default = "rootfs://images/{arch}"

[buildkit]
addr = "unix:///run/buildkit/buildkitd.sock"
trust_host_ca = true
[buildkit.arm64]
addr = "tcp://arm-builder:1234"

[layer.tools]
description = "tools"
license_info = "MIT"
compatible_runtimes = ["python3.12", "provided.al2023"]
include = ["**"]
exclude = ["**/*.md"]

[[layer.tools.files]]
src = "scripts"
dest = "bin"
mode = "0755"

[layer.c]
compatible_runtimes = ["provided.al2"]
architectures = ["x86_64", "arm64"]
[layer.c.native]
context = "native"
packages = ["libjansson-dev"]
script = "make install"
env = { CFLAGS = "-O2" }
bundle_libs = false
strip = true
`
	f, err := Parse("layerpack.toml", dir, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.Layers); got != 2 || f.Layers[0].Name != "c" || f.Layers[1].Name != "tools" {
		t.Fatalf("layers not sorted or missing: %+v", f.Layers)
	}
	tools := f.Layer("tools")
	if got := f.ArchList(tools); len(got) != 1 || got[0] != "arm64" {
		t.Errorf("defaults.architectures not applied: %v", got)
	}
	if got := f.ArchList(f.Layer("c")); len(got) != 2 {
		t.Errorf("layer architectures not applied: %v", got)
	}
	if tools.Files[0].AbsSrc != filepath.Join(dir, "scripts") || tools.Files[0].Mode != "0755" {
		t.Errorf("files: %+v", tools.Files[0])
	}
	n := f.Layer("c").Native
	if n == nil || n.BundleLibs || !n.Strip || n.Env["CFLAGS"] != "-O2" || n.AbsContext != filepath.Join(dir, "native") {
		t.Errorf("native: %+v", n)
	}
	if f.BuildKit.ArchAddr["arm64"] != "tcp://arm-builder:1234" || f.BuildKit.TrustHostCA == nil || !*f.BuildKit.TrustHostCA {
		t.Errorf("buildkit: %+v", f.BuildKit)
	}
	if f.Defaults.Compression != 9 || f.OutDir() != filepath.Join(dir, "out") {
		t.Errorf("defaults: %+v", f.Defaults)
	}
	if len(tools.Runtimes) != 2 || tools.Runtimes[0].GLIBC.String() != "2.34" {
		t.Errorf("runtimes: %+v", tools.Runtimes)
	}
}

func TestDefaults(t *testing.T) {
	dir := writeTree(t)
	f, err := Parse("l.toml", dir, []byte("[layer.a]\ncompatible_runtimes=[\"nodejs20.x\"]\n[[layer.a.files]]\nsrc=\"scripts\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.ArchList(f.Layers[0]); len(got) != 2 || got[0] != "x86_64" || got[1] != "arm64" {
		t.Errorf("default architectures = %v", got)
	}
	if got := f.Layers[0].CrossCompile; got != "auto" {
		t.Errorf("default cross_compile = %q", got)
	}
	if f.Defaults.Compression != 6 || f.Defaults.OutDir != "dist" || !strings.HasSuffix(f.OutDir(), "dist") {
		t.Errorf("defaults = %+v", f.Defaults)
	}
}

// Every class of config error, with its exact message.
func TestErrors(t *testing.T) {
	dir := writeTree(t)
	must(t, os.Symlink("/etc", filepath.Join(dir, "escape")))
	const ok = "compatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"scripts\"\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown top key", "colour = 1\n[layer.a]\n" + ok,
			[]string{`l.toml:1: colour: unknown key (known keys: defaults, images, buildkit, layer, publish)`}},
		{"unknown layer key", "[layer.a]\nruntime = \"x\"\n" + ok,
			[]string{`l.toml:2: layer.a.runtime: unknown key (known keys: description, license_info, compatible_runtimes, architectures, include, exclude, allow_secrets, image, cross_compile, files, native, python, node, ruby, java, publish)`}},
		{"wrong type", "[layer.a]\ndescription = 5\n" + ok,
			[]string{`l.toml:2: layer.a.description: must be a string, not an integer`}},
		{"wrong element type", "[layer.a]\ncompatible_runtimes = [\"python3.12\", 3]\n[[layer.a.files]]\nsrc = \"scripts\"\n",
			[]string{`l.toml:2: layer.a.compatible_runtimes[1]: must be a string, not an integer`}},
		{"unknown runtime", "[layer.a]\ncompatible_runtimes = [\"python2.7\"]\n[[layer.a.files]]\nsrc = \"scripts\"\n",
			[]string{`l.toml:2: layer.a.compatible_runtimes[0]: unknown runtime "python2.7" (known: java11, java17, java21, java25, java8.al2, nodejs18.x, nodejs20.x, nodejs22.x, nodejs24.x, provided.al2, provided.al2023, python3.10, python3.11, python3.12, python3.13, python3.14, python3.9, ruby3.2, ruby3.3, ruby3.4)`}},
		{"no runtimes", "[layer.a]\n[[layer.a.files]]\nsrc = \"scripts\"\n",
			[]string{`l.toml:1: layer.a.compatible_runtimes: required: list 1 to 15 runtime identifiers, e.g. ["python3.12"]`}},
		{"too many runtimes", "[layer.a]\ncompatible_runtimes = [" + `"python3.9","python3.10","python3.11","python3.12","python3.13","python3.14","nodejs18.x","nodejs20.x","nodejs22.x","nodejs24.x","ruby3.2","ruby3.3","ruby3.4","java11","java17","java21"` + "]\n[[layer.a.files]]\nsrc = \"scripts\"\n",
			[]string{`l.toml:2: layer.a.compatible_runtimes: lists 16 runtimes, Lambda allows at most 15`}},
		{"unknown arch", "[defaults]\narchitectures = [\"amd64\"]\n[layer.a]\n" + ok,
			[]string{`l.toml:2: defaults.architectures[0]: unknown architecture "amd64" (want x86_64 or arm64)`}},
		{"bad layer name", "[layer.\"a b\"]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.\"a b\".files]]\nsrc = \"scripts\"\n",
			[]string{`l.toml:1: layer.a b: bad layer name "a b": use 1 to 140 of A-Z a-z 0-9 _ -`}},
		{"missing src", "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"nope\"\n",
			[]string{`l.toml:4: layer.a.files[0].src: "nope" does not exist`}},
		{"dotdot src", "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"../x\"\n",
			[]string{`l.toml:4: layer.a.files[0].src: "../x" leaves the config file's folder`}},
		{"absolute src", "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"/etc\"\n",
			[]string{`l.toml:4: layer.a.files[0].src: "/etc" must be relative to the config file's folder, not absolute`}},
		{"symlink src", "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"escape\"\n",
			[]string{`l.toml:4: layer.a.files[0].src: "escape" resolves to /etc, outside the config file's folder (through a symlink)`}},
		{"bad mode", "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"scripts\"\nmode = \"rwx\"\n",
			[]string{`l.toml:5: layer.a.files[0].mode: "rwx" is not an octal file mode like "0755"`}},
		{"bad dest", "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"scripts\"\ndest = \"../bin\"\n",
			[]string{`l.toml:5: layer.a.files[0].dest: "../bin" must be a relative path inside the layer (like "bin" or "python/lib")`}},
		{"second files entry", "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"scripts\"\n[[layer.a.files]]\nsrc = \"gone\"\n",
			[]string{`l.toml:6: layer.a.files[1].src: "gone" does not exist`}},
		{"compression", "[defaults]\ncompression = 12\n[layer.a]\n" + ok,
			[]string{`l.toml:2: defaults.compression: must be 0 (store) or a deflate level from 1 to 9, not 12`}},
		{"nothing to build", "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n",
			[]string{`l.toml:1: layer.a: nothing to build: add [[layer.a.files]] or a builder table such as [layer.a.native]`}},
		{"no layers", "[defaults]\n", []string{`l.toml: layer: no layers defined (add a [layer.NAME] table)`}},
		{"bad glob", "[layer.a]\nexclude = [\"[\"]\n" + ok,
			[]string{`l.toml:2: layer.a.exclude[0]: bad glob pattern "["`}},
		{"native", "[layer.a]\ncompatible_runtimes = [\"provided.al2023\"]\n[layer.a.native]\ncontext = \"scripts/hello\"\nflags = 1\n",
			[]string{
				`l.toml:3: layer.a.native.script: required: the shell script that builds and installs into /opt`,
				`l.toml:4: layer.a.native.context: "scripts/hello" is not a folder`,
				`l.toml:5: layer.a.native.flags: unknown key (known keys: context, packages, script, env, bundle_libs, strip)`,
			}},
		{"cross_compile", "[layer.a]\ncross_compile = \"qemu\"\n" + ok,
			[]string{`l.toml:2: layer.a.cross_compile: "qemu" is not one of auto, cross, emulate`}},
		{"java build", "[layer.a]\ncompatible_runtimes = [\"java21\"]\n[layer.a.java]\nartifacts = [\"a:b:1\"]\nbuild = \"docker\"\n",
			[]string{`l.toml:5: layer.a.java.build: "docker" is not one of auto, host, container`}},
		{"java gradle in a container", "[layer.a]\ncompatible_runtimes = [\"java21\"]\n[layer.a.java]\ngradle = \"scripts/hello\"\nbuild = \"container\"\n",
			[]string{`l.toml:5: layer.a.java.build: "container" runs Maven in the build image, for pom and artifacts; a Gradle build resolves on the host (build = "auto" or "host")`}},
		{"invalid toml", "[layer.a\n", []string{`l.toml:2: invalid TOML: expected '.' or ']' to end table name, but got '\n' instead`}},
		{"several errors", "[layer.a]\ncompatible_runtimes = [\"python2.7\"]\narchitectures = [\"x86_64\", \"x86_64\"]\ndescription = \"" + strings.Repeat("d", 257) + "\"\n[[layer.a.files]]\nsrc = \"scripts\"\n",
			[]string{
				`l.toml:2: layer.a.compatible_runtimes[0]: unknown runtime "python2.7" (known: java11, java17, java21, java25, java8.al2, nodejs18.x, nodejs20.x, nodejs22.x, nodejs24.x, provided.al2, provided.al2023, python3.10, python3.11, python3.12, python3.13, python3.14, python3.9, ruby3.2, ruby3.3, ruby3.4)`,
				`l.toml:3: layer.a.architectures[1]: architecture "x86_64" is listed twice`,
				`l.toml:4: layer.a.description: is 257 characters, at most 256 allowed`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("l.toml", dir, []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "layerpack.toml"))
	if err == nil || !strings.HasSuffix(err.Error(), "layerpack.toml: config file not found (create one, see layerpack.toml.example, or pass -c FILE)") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"x\"\n"))
	f.Add([]byte("[defaults]\narchitectures=[\"arm64\"]\n[layer.b.native]\ncontext=\".\"\nscript=\"true\"\n"))
	f.Add([]byte("a.b.c = 1\n[[x]]\n[x.y]\nz = '''\nq\n'''\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("f.toml", dir, src)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil {
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
			}
			for _, e := range es {
				if e.File != "f.toml" || e.Msg == "" {
					t.Fatalf("bad error: %+v", e)
				}
			}
		}
	})
}

func TestPythonKeyTextMasksPasswords(t *testing.T) {
	p := Python{IndexURL: "https://u:s3cret@pypi.example/simple", ExtraIndexURLs: []string{"https://x:y@e.example/simple", "https://plain.example/simple"}}
	b, err := json.Marshal(&Layer{Name: "a", Python: &p})
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if strings.Contains(got, "s3cret") || strings.Contains(got, "x:y@") {
		t.Errorf("password in key text: %s", got)
	}
	if !strings.Contains(got, `https://***@pypi.example/simple`) || !strings.Contains(got, "https://plain.example/simple") {
		t.Errorf("URLs lost: %s", got)
	}
}

func TestMaskURLHidesTokensAndPasswords(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:secret@pypi.example/simple": "https://***@pypi.example/simple",
		"https://TOKEN123@pypi.example/simple":    "https://***@pypi.example/simple",
		"https://pypi.example/simple":             "https://pypi.example/simple",
	} {
		if got := maskURL(in); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", in, got, want)
		}
	}
	b, err := json.Marshal(Python{IndexURL: "https://TOKEN123@h/simple", ExtraIndexURLs: []string{"https://u:pw@h2/"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "TOKEN123") || strings.Contains(string(b), "pw@") {
		t.Fatalf("cache-key JSON keeps a credential: %s", b)
	}
}

// compile defaults to true except with build = "host"; bytecode_budget takes
// bytes or a size with a unit, and names the key when it cannot.
func TestPythonBytecodeKeys(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("six==1.16.0\n"), 0o644)
	layer := func(extra string) string {
		return "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[layer.a.python]\nrequirements = \"requirements.txt\"\n" + extra
	}
	for extra, want := range map[string]string{
		"":                                   "compile=true budget=209715200",
		"build = \"host\"\n":                 "compile=false budget=209715200",
		"build = \"host\"\ncompile = true\n": "compile=true budget=209715200",
		"compile = false\n":                  "compile=false budget=209715200",
		"bytecode_budget = \"1.5GiB\"\n":     "compile=true budget=1610612736",
		"bytecode_budget = \"240 MB\"\n":     "compile=true budget=240000000",
		"bytecode_budget = 1000\n":           "compile=true budget=1000",
	} {
		f, err := Parse("l.toml", dir, []byte(layer(extra)))
		if err != nil {
			t.Errorf("%q: %v", extra, err)
			continue
		}
		p := f.Layers[0].Python
		if got := fmt.Sprintf("compile=%v budget=%d", *p.Compile, p.BytecodeBudget); got != want {
			t.Errorf("%q: %s, want %s", extra, got, want)
		}
	}
	for extra, want := range map[string]string{
		"bytecode_budget = \"lots\"\n": `l.toml:5: layer.a.python.bytecode_budget: "lots" is not a size: write bytes as an integer, or a number and a unit (B, kB, MB, GB, KiB, MiB, GiB), such as "200MiB"`,
		"bytecode_budget = -1\n":       `l.toml:5: layer.a.python.bytecode_budget: must be a positive number of bytes, not -1`,
		"bytecode_budget = true\n":     `l.toml:5: layer.a.python.bytecode_budget: must be a size (an integer of bytes, or a string such as "200MiB"), not a boolean`,
		"compile = \"yes\"\n":          `l.toml:5: layer.a.python.compile: must be true or false, not a string`,
	} {
		_, err := Parse("l.toml", dir, []byte(layer(extra)))
		if err == nil || err.Error() != want {
			t.Errorf("%q: %v\nwant %s", extra, err, want)
		}
	}
}
