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

func runtimes(t testing.TB, ids ...string) []lambda.Runtime {
	t.Helper()
	var out []lambda.Runtime
	for _, id := range ids {
		r, ok := lambda.LookupRuntime(id)
		if !ok {
			t.Fatalf("unknown runtime %s", id)
		}
		out = append(out, r)
	}
	return out
}

func layer(dir string, n config.Node, rts []lambda.Runtime) *config.Layer {
	n.Dir, n.AbsDir = "app", dir
	return &config.Layer{Name: "deps", Node: &n, Runtimes: rts}
}

// newJob makes a job whose stage and work folders are fresh.
func newJob(t testing.TB, l *config.Layer, arch lambda.Arch, eng engine.Engine, log *bytes.Buffer) *builders.Job {
	t.Helper()
	return &builders.Job{Layer: l, Target: builders.Target{Arch: arch, Runtimes: l.Runtimes}, Stage: t.TempDir(), Work: t.TempDir(),
		Engine: eng, Image: "rootfs:///images/" + string(arch), SourceDateEpoch: 315532800, Log: log}
}

// fakeNativeBuild plays the container's native build: it checks what the step
// got and writes what node-gyp would leave in the package.
func fakeNativeBuild(t *testing.T, nodeVersion string) func(ctx context.Context, s *engine.Step) error {
	return func(ctx context.Context, s *engine.Step) error {
		if s.Env["LAYERPACK_REBUILD"] != "node_modules/layerpack-fixture-addon" {
			t.Errorf("LAYERPACK_REBUILD = %q", s.Env["LAYERPACK_REBUILD"])
		}
		if s.Env["npm_config_build_from_source"] != "true" || s.Output != outDir || s.Script != rebuildScript {
			t.Errorf("step: %+v", s)
		}
		if len(s.Mounts) != 1 || s.Mounts[0].Target != treeMount {
			t.Fatalf("mounts: %+v", s.Mounts)
		}
		// Only the package to build and its dependencies are sent, with the script.
		got := listFiles(t, s.Mounts[0].Source)
		want := []string{".layerpack-build.sh", "node_modules/layerpack-fixture-addon/LICENSE", "node_modules/layerpack-fixture-addon/README.md",
			"node_modules/layerpack-fixture-addon/addon.c", "node_modules/layerpack-fixture-addon/binding.gyp",
			"node_modules/layerpack-fixture-addon/index.js", "node_modules/layerpack-fixture-addon/package.json"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("mounted tree:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		script, _ := os.ReadFile(filepath.Join(s.Mounts[0].Source, buildFile))
		if !strings.Contains(string(script), "sh -e -c 'node-gyp rebuild'") {
			t.Errorf("build script:\n%s", script)
		}
		pkg := "tree/node_modules/layerpack-fixture-addon/"
		writeFiles(t, s.Dest, map[string]string{
			nodeInfo:                                       nodeVersion + "\n",
			"failed-optional":                              "",
			pkg + "package.json":                           `{"name":"layerpack-fixture-addon","version":"1.0.0"}`,
			pkg + "build/config.gypi":                      `{"nodedir":"/usr"}`,
			pkg + "build/Makefile":                         "",
			pkg + "build/node_gyp_bins/python3":            "->/usr/bin/python3",
			pkg + "build/Release/addon.node":               minimalSO(),
			pkg + "build/Release/obj.target/addon.node":    minimalSO(),
			pkg + "build/Release/obj.target/addon/addon.o": "",
		})
		return nil
	}
}

func TestBuildAuto(t *testing.T) {
	dir := fixtureProject(t, []string{"addon", "purejs"}, nil)
	for _, tc := range []struct {
		name   string
		node   config.Node
		rts    []string
		arch   lambda.Arch
		prefix []string
	}{
		{name: "default layout", node: config.Node{Prune: "safe"}, rts: []string{"nodejs20.x"}, arch: lambda.ARM64,
			prefix: []string{"nodejs/node_modules/"}},
		{name: "versioned", node: config.Node{Layout: "versioned"}, rts: []string{"nodejs18.x", "nodejs20.x", "python3.12"}, arch: lambda.X86_64,
			prefix: []string{"nodejs/node18/node_modules/", "nodejs/node20/node_modules/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &engine.Fake{Hook: fakeNativeBuild(t, "v18.20.4")}
			l := layer(dir, tc.node, runtimes(t, tc.rts...))
			b := New()
			if !(b.Engine(l, builders.Target{Arch: tc.arch}).Use == builders.UsesEngine) {
				t.Error("NeedsEngine = false for a project with an addon")
			}
			var log bytes.Buffer
			j := newJob(t, l, tc.arch, eng, &log)
			if err := b.Build(context.Background(), j); err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			steps := eng.Steps()
			if len(steps) != 1 || steps[0].Arch != tc.arch || steps[0].Image != j.Image || steps[0].SourceDateEpoch != 315532800 {
				t.Fatalf("steps: %+v", steps)
			}
			var want []string
			for _, pre := range tc.prefix {
				for _, f := range []string{
					".bin/purejs-hello",
					"layerpack-fixture-addon/LICENSE",
					"layerpack-fixture-addon/README.md",
					"layerpack-fixture-addon/addon.c",
					"layerpack-fixture-addon/binding.gyp",
					"layerpack-fixture-addon/build/Release/addon.node",
					"layerpack-fixture-addon/index.js",
					"layerpack-fixture-addon/package.json",
					"layerpack-fixture-purejs/CHANGELOG.md",
					"layerpack-fixture-purejs/LICENSE.md",
					"layerpack-fixture-purejs/README.md",
					"layerpack-fixture-purejs/bin/cli.js",
					"layerpack-fixture-purejs/docs/guide.md",
					"layerpack-fixture-purejs/index.js",
					"layerpack-fixture-purejs/index.js.map",
					"layerpack-fixture-purejs/lib/util.d.ts",
					"layerpack-fixture-purejs/lib/util.ts",
					"layerpack-fixture-purejs/package.json",
					"layerpack-fixture-purejs/test/index.test.js",
				} {
					if tc.node.Prune == "safe" && (strings.HasSuffix(f, "README.md") || strings.Contains(f, "CHANGELOG") ||
						strings.Contains(f, "/docs/") || strings.Contains(f, "/test/") || strings.HasSuffix(f, ".map") || strings.HasSuffix(f, "util.ts")) {
						continue
					}
					want = append(want, pre+f)
				}
			}
			if got := listFiles(t, j.Stage); !reflect.DeepEqual(got, want) {
				t.Errorf("stage:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if tc.node.Prune == "safe" && !strings.Contains(log.String(), "deps (arm64): node: prune (safe) removed 7 files, ") {
				t.Errorf("log does not report pruning:\n%s", log.String())
			}
			if !strings.Contains(log.String(), "native build in the container: layerpack-fixture-addon@1.0.0: binding.gyp (node-gyp rebuild)") {
				t.Errorf("log does not name the native build:\n%s", log.String())
			}
		})
	}
}

func TestBuildHostFailsForNative(t *testing.T) {
	dir := fixtureProject(t, []string{"addon", "purejs"}, nil)
	eng := &engine.Fake{}
	l := layer(dir, config.Node{Build: "host"}, runtimes(t, "nodejs20.x"))
	b := New()
	if (b.Engine(l, builders.Target{Arch: lambda.ARM64}).Use == builders.UsesEngine) {
		t.Error("host mode needs no engine")
	}
	err := b.Build(context.Background(), newJob(t, l, lambda.ARM64, eng, &bytes.Buffer{}))
	want := `build = "host" never compiles, but these packages need a native build for linux-arm64-glibc: ` +
		`layerpack-fixture-addon@1.0.0 (binding.gyp (node-gyp rebuild)); set build = "auto" to compile them in the build container`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	if len(eng.Steps()) != 0 {
		t.Error("host mode ran a container step")
	}
}

func TestBuildHostPureJS(t *testing.T) {
	dir := fixtureProject(t, []string{"purejs"}, nil)
	l := layer(dir, config.Node{Build: "host", Prune: "safe", PruneTypes: true}, runtimes(t, "nodejs22.x"))
	b := New()
	if (b.Engine(l, builders.Target{Arch: lambda.X86_64}).Use == builders.UsesEngine) {
		t.Error("NeedsEngine")
	}
	auto := layer(dir, config.Node{}, l.Runtimes)
	if (b.Engine(auto, builders.Target{Arch: lambda.X86_64}).Use == builders.UsesEngine) {
		t.Error("auto mode needs no engine for a pure-JS lockfile")
	}
	j := newJob(t, l, lambda.X86_64, nil, &bytes.Buffer{})
	if err := b.Build(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"nodejs/node_modules/.bin/purejs-hello",
		"nodejs/node_modules/layerpack-fixture-purejs/LICENSE.md",
		"nodejs/node_modules/layerpack-fixture-purejs/bin/cli.js",
		"nodejs/node_modules/layerpack-fixture-purejs/index.js",
		"nodejs/node_modules/layerpack-fixture-purejs/package.json",
	}
	if got := listFiles(t, j.Stage); !reflect.DeepEqual(got, want) {
		t.Errorf("stage:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if target, err := os.Readlink(filepath.Join(j.Stage, "nodejs/node_modules/.bin/purejs-hello")); err != nil || target != "../layerpack-fixture-purejs/bin/cli.js" {
		t.Errorf("bin link: %q, %v", target, err)
	}
}

func TestBuildContainerMode(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json":      `{"name":"app","dependencies":{"a":"1.0.0"}}`,
		"package-lock.json": `{"lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/a":{"version":"1.0.0","resolved":"file:vendor/a.tgz"}}}`,
		"vendor/a.tgz":      "tarball",
		".npmrc":            "//registry.example.com/:_authToken=${NPM_TOKEN}\n",
	})
	var stepTree []string
	eng := &engine.Fake{Hook: func(ctx context.Context, s *engine.Step) error {
		if s.Script != installScript || s.Env["LAYERPACK_PROJECT"] != "project" || s.Env["npm_config_userconfig"] != npmrcPath {
			t.Errorf("step: %+v", s)
		}
		stepTree = listFiles(t, s.Mounts[0].Source)
		var ids []string
		for _, sec := range s.Secrets {
			ids = append(ids, sec.ID+" "+sec.Target+" "+sec.Env)
			if sec.Env == "NPM_TOKEN" {
				if b, _ := os.ReadFile(sec.Source); string(b) != "s3cr3t-token" {
					t.Errorf("token secret holds %q", b)
				}
			}
		}
		if want := []string{"layerpack-npmrc " + npmrcPath + " ", "layerpack-npmrc-env-NPM_TOKEN  NPM_TOKEN"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("secrets %q, want %q", ids, want)
		}
		for k, v := range s.Env {
			if strings.Contains(v, "s3cr3t") {
				t.Errorf("env %s holds the token", k)
			}
		}
		writeFiles(t, s.Dest, map[string]string{
			nodeInfo:                                "v18.20.4\n",
			"node_modules/.package-lock.json":       "{}",
			"node_modules/a/package.json":           `{"name":"a","version":"1.0.0"}`,
			"node_modules/a/binding.gyp":            "{}",
			"node_modules/a/build/config.gypi":      "{}",
			"node_modules/a/build/Release/a.node":   minimalSO(),
			"node_modules/a-musl/package.json":      `{"name":"a-musl","os":["linux"],"libc":["musl"]}`,
			"node_modules/a-linux-x64/package.json": `{"name":"a-linux-x64","os":["linux"],"cpu":["x64"]}`,
		})
		return nil
	}}
	l := layer(dir, config.Node{Build: "container"}, runtimes(t, "nodejs18.x"))
	b := New()
	hermetic(b, map[string]string{"NPM_TOKEN": "s3cr3t-token"})
	if !(b.Engine(l, builders.Target{Arch: lambda.ARM64}).Use == builders.UsesEngine) {
		t.Error("container mode needs the engine")
	}
	var log bytes.Buffer
	j := newJob(t, l, lambda.ARM64, eng, &log)
	if err := b.Build(context.Background(), j); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if want := []string{"project/package-lock.json", "project/package.json", "project/vendor/a.tgz"}; !reflect.DeepEqual(stepTree, want) {
		t.Errorf("mounted source %q, want %q (never .npmrc)", stepTree, want)
	}
	want := []string{"nodejs/node_modules/a/binding.gyp", "nodejs/node_modules/a/build/Release/a.node", "nodejs/node_modules/a/package.json"}
	if got := listFiles(t, j.Stage); !reflect.DeepEqual(got, want) {
		t.Errorf("stage %q, want %q", got, want)
	}
	if !strings.Contains(log.String(), "left out 2 packages for another platform than linux-arm64-glibc: node_modules/a-linux-x64, node_modules/a-musl") {
		t.Errorf("log:\n%s", log.String())
	}
	if strings.Contains(log.String(), "s3cr3t") {
		t.Error("the log holds the token")
	}
}

func TestInputsAndStepsHideCredentials(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json":      `{"name":"app"}`,
		"package-lock.json": `{"lockfileVersion":3,"packages":{"":{"name":"app"}}}`,
		".npmrc":            "//registry.example.com/:_authToken=npm_LITERALTOKEN\n//other/:_authToken=${NPM_TOKEN}\n",
	})
	b := New()
	hermetic(b, map[string]string{"NPM_TOKEN": "envtoken123"})
	b.tools.lookPath = func(name string) (string, error) { return "/nonexistent/bin/" + name, nil }
	b.tools.run = func(_ context.Context, name string, _ ...string) (string, error) {
		return map[string]string{"/nonexistent/bin/npm": "11.2.0", "/nonexistent/bin/node": "v22.1.0"}[name], nil
	}
	l := layer(dir, config.Node{Prune: "safe"}, runtimes(t, "nodejs22.x"))
	tg := builders.Target{Arch: lambda.ARM64, Runtimes: l.Runtimes}
	in, err := b.Inputs(l, tg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range in {
		names = append(names, i.Name)
		text := i.Name + " " + i.Value
		if strings.Contains(text, "LITERALTOKEN") || strings.Contains(text, "envtoken123") {
			t.Errorf("input %q shows a credential", text)
		}
	}
	want := []string{"file:.npmrc", "file:package-lock.json", "file:package.json", "env:NPM_TOKEN (from .npmrc)", "tool:npm", "tool:node", "recipe", "cross-compile"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("inputs %q, want %q", names, want)
	}
	if in[3].Value != "sha256:"+sha256Hex("envtoken123") || in[4].Value != "11.2.0" || in[5].Value != "22.1.0" {
		t.Errorf("values: %+v", in[3:6])
	}
	steps := b.Steps(l, tg)
	wantSteps := []string{
		"npm ci --omit=dev --ignore-scripts --install-links --no-audit --no-fund --no-update-notifier --os=linux --cpu=arm64 --libc=glibc on the host (npm 11.2.0), from app/package-lock.json",
		"drop packages whose os/cpu/libc exclude linux-arm64-glibc",
		"run the install scripts (node-gyp rebuild, ...) of the packages that need a native build (install scripts that compile, binding.gyp, no prebuilt for linux-arm64-glibc) in the build container for linux/arm64; prebuilt downloads become source builds",
		"native builds: compile with zig 0.17.1 cc/c++ for aarch64-linux-gnu.2.34; if that fails, again with the image's own compiler, under QEMU (cross_compile = \"auto\")",
		"npm config for build steps (one secret userconfig file) from app/.npmrc: //registry.example.com/:_authToken=***, //other/:_authToken=***",
		"keep only the built .node/.so files of native builds (drop build/ intermediates, build-tmp-*)",
		"remove package-manager files (.package-lock.json, .cache, ...) and links that leave the tree",
		"prune (safe): *.md (not licences), *.map, *.ts (not .d.ts), test/tests/__tests__/example(s)/docs/.github folders",
		"place in nodejs/node_modules",
	}
	if !reflect.DeepEqual(steps, wantSteps) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(wantSteps, "\n"))
	}
	// Container mode needs no host npm and says what runs where.
	c := layer(dir, config.Node{Build: "container", Layout: "versioned"}, runtimes(t, "nodejs20.x", "nodejs22.x"))
	steps = b.Steps(c, builders.Target{Arch: lambda.X86_64, Runtimes: c.Runtimes})
	if steps[0] != "npm ci --omit=dev in the build container for linux/amd64, install scripts included, from app/package-lock.json (native code compiled from source)" ||
		steps[len(steps)-1] != "place in nodejs/node20/node_modules, nodejs/node22/node_modules" {
		t.Errorf("container steps:\n%s", strings.Join(steps, "\n"))
	}
	// Missing lockfile: plan shows the error, Inputs returns it, NeedsEngine is false
	// so that no daemon is asked for anything first.
	os.Remove(filepath.Join(dir, "package-lock.json"))
	if _, err := b.Inputs(l, tg); err == nil || !strings.HasPrefix(err.Error(), "no lockfile in app: ") {
		t.Errorf("Inputs without lockfile: %v", err)
	}
	if s := b.Steps(l, tg); len(s) != 1 || !strings.HasPrefix(s[0], "error: no lockfile in app: ") {
		t.Errorf("Steps without lockfile: %q", s)
	}
	if b.Engine(l, tg).Use == builders.UsesEngine {
		t.Error("NeedsEngine without lockfile")
	}
}

func TestInputsNeedHostTool(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"package.json": `{"name":"app"}`, "yarn.lock": ""})
	b := New()
	b.tools.lookPath = func(name string) (string, error) { return "", os.ErrNotExist }
	l := layer(dir, config.Node{}, runtimes(t, "nodejs20.x"))
	_, err := b.Inputs(l, builders.Target{Arch: lambda.X86_64})
	if want := "yarn is not on PATH (for yarn.lock in app)"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	c := layer(dir, config.Node{Build: "container"}, runtimes(t, "nodejs20.x"))
	_, err = b.Inputs(c, builders.Target{Arch: lambda.X86_64})
	if want := `build = "container" installs with npm in the build image; yarn.lock (yarn) needs build = "auto" or "host" with yarn on this machine`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
