package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/lambda"
)

func TestClassify(t *testing.T) {
	arm := targetPlatform(lambda.ARM64)
	abis := []int{115} // nodejs20.x
	tests := []struct {
		name     string
		files    map[string]string // under the package folder
		build    bool
		download bool
		why      string // "" for no decision (no scripts)
	}{
		{name: "pure JS", files: map[string]string{"package.json": `{"name":"p","version":"1.0.0"}`}},
		{name: "binding.gyp, no script", files: map[string]string{"package.json": `{"name":"p"}`, "binding.gyp": "{}"},
			build: true, why: "binding.gyp (node-gyp rebuild)"},
		{name: "gypfile false", files: map[string]string{"package.json": `{"name":"p","gypfile":false}`, "binding.gyp": "{}"}},
		{name: "node-gyp rebuild script", files: map[string]string{"package.json": `{"name":"p","scripts":{"install":"node-gyp rebuild"}}`},
			build: true, why: "install: node-gyp rebuild"},
		{name: "prebuilt for the target", files: map[string]string{
			"package.json":                            `{"name":"p","scripts":{"install":"node-gyp-build"}}`,
			"binding.gyp":                             "{}",
			"prebuilds/linux-arm64/p.musl.node":       "",
			"prebuilds/linux-arm64/p.napi.glibc.node": "",
			"prebuilds/linux-x64/p.napi.glibc.node":   ""},
			why: "prebuilt prebuilds/linux-arm64/p.napi.glibc.node fits linux-arm64-glibc; nothing to compile"},
		{name: "prebuilt for another ABI only", files: map[string]string{
			"package.json":                           `{"name":"p","scripts":{"install":"node-gyp-build"}}`,
			"binding.gyp":                            "{}",
			"prebuilds/linux-arm64/node.abi108.node": ""},
			build: true, why: "no prebuilt binary for linux-arm64-glibc in prebuilds/ (node-gyp-build)"},
		{name: "prebuilt for musl and x64 only", files: map[string]string{
			"package.json":                           `{"name":"p","scripts":{"install":"node-gyp-build"}}`,
			"binding.gyp":                            "{}",
			"prebuilds/linux-arm64/p.napi.musl.node": "",
			"prebuilds/linux-x64/p.napi.glibc.node":  ""},
			build: true, why: "no prebuilt binary for linux-arm64-glibc in prebuilds/ (node-gyp-build)"},
		{name: "prebuild-install", files: map[string]string{"package.json": `{"name":"p","scripts":{"install":"prebuild-install || node-gyp rebuild --release"}}`, "binding.gyp": "{}"},
			build: true, download: true,
			why: "install: prebuild-install || node-gyp rebuild --release - its prebuilt download is not reachable from build containers: compiling from source (npm_config_build_from_source=true)"},
		{name: "node-pre-gyp", files: map[string]string{"package.json": `{"name":"p","scripts":{"install":"node-pre-gyp install --fallback-to-build"}}`, "binding.gyp": "{}"},
			build: true, download: true,
			why: "install: node-pre-gyp install --fallback-to-build - its prebuilt download is not reachable from build containers: compiling from source (npm_config_build_from_source=true)"},
		{name: "cmake-js", files: map[string]string{"package.json": `{"name":"p","scripts":{"install":"cmake-js compile"}}`},
			build: true, why: "install: cmake-js compile"},
		{name: "binding.gyp with its own script", files: map[string]string{"package.json": `{"name":"p","scripts":{"install":"node scripts/build.js"}}`, "binding.gyp": "{}"},
			build: true, why: "binding.gyp, built by its install script (install: node scripts/build.js)"},
		{name: "postinstall banner", files: map[string]string{"package.json": `{"name":"p","scripts":{"postinstall":"node -e \"console.log('thanks')\""}}`},
			why: `install script not run, it does not build native code (postinstall: node -e "console.log('thanks')")`},
		{name: "sharp-like check script", files: map[string]string{"package.json": `{"name":"sharp","scripts":{"install":"node install/check"}}`, "src/binding.gyp": "{}"},
			why: "install script not run, it does not build native code (install: node install/check)"},
		{name: "test script is not an install script", files: map[string]string{"package.json": `{"name":"p","scripts":{"test":"node-gyp rebuild"}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{}
			for k, v := range tt.files {
				files["node_modules/p/"+k] = v
			}
			writeFiles(t, root, files)
			p, err := readPkg(root, "node_modules/p")
			if err != nil {
				t.Fatal(err)
			}
			d := classify(root, p, arm, abis)
			if tt.why == "" {
				if d != nil {
					t.Fatalf("got %+v, want no decision", d)
				}
				return
			}
			if d == nil {
				t.Fatal("no decision")
			}
			if d.Build != tt.build || d.Download != tt.download || d.Why != tt.why {
				t.Errorf("got build=%v download=%v why=%q\nwant build=%v download=%v why=%q", d.Build, d.Download, d.Why, tt.build, tt.download, tt.why)
			}
		})
	}
}

func TestScanTreeAndClosure(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"node_modules/a/package.json":                `{"name":"a","version":"1.0.0","dependencies":{"b":"^1","@s/c":"^1"},"os":"linux"}`,
		"node_modules/b/package.json":                `{"name":"b","version":"1.0.0"}`,
		"node_modules/a/node_modules/b/package.json": `{"name":"b","version":"2.0.0","optionalDependencies":{"d":"^1"}}`,
		"node_modules/@s/c/package.json":             `{"name":"@s/c","version":"1.0.0","bin":"cli.js"}`,
		"node_modules/d/package.json":                `{"name":"d","version":"1.0.0","bin":{"x":"bin/x","a":"bin/a"}}`,
		"node_modules/e/package.json":                `{"name":"e","version":"1.0.0","main":false,"scripts":{"install":1},"gypfile":"yes","dependencies":[]}`,
		"node_modules/no-manifest/index.js":          "",
		"node_modules/.bin/x":                        "->../d/bin/x",
		"node_modules/.package-lock.json":            "{}",
	})
	pkgs, err := scanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range pkgs {
		paths = append(paths, p.Path)
	}
	want := []string{"node_modules/@s/c", "node_modules/a", "node_modules/a/node_modules/b", "node_modules/b", "node_modules/d", "node_modules/e"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("paths = %q, want %q", paths, want)
	}
	if pkgs[1].OS[0] != "linux" || !reflect.DeepEqual(pkgs[4].Bins, []string{"bin/a", "bin/x"}) || pkgs[0].Bins[0] != "cli.js" {
		t.Errorf("manifest fields: %+v %+v %+v", pkgs[1], pkgs[4], pkgs[0])
	}
	var got []string
	for _, p := range closure(pkgs, []*pkg{pkgs[1]}) {
		got = append(got, p.Path)
	}
	// a needs its own b (2.0.0), which needs d; the top-level b is not needed.
	if want := []string{"node_modules/@s/c", "node_modules/a", "node_modules/a/node_modules/b", "node_modules/d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("closure = %q, want %q", got, want)
	}
}

func TestScanTreeRejectsLinks(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"lib/package.json": `{"name":"lib"}`, "node_modules/lib": "->../lib"})
	_, err := scanTree(root)
	want := "node_modules/lib is a link to ../lib (a local folder dependency): a layer needs real files; depend on a tarball (npm pack) or let the package manager copy it (npm does with --install-links)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestBuildOrder(t *testing.T) {
	pkgs := []*pkg{
		{Path: "node_modules/app-addon", Deps: []string{"base-addon"}, Scripts: map[string]string{"install": "node-gyp rebuild"}},
		{Path: "node_modules/base-addon", Scripts: map[string]string{"install": "node-gyp rebuild"}},
		{Path: "node_modules/zed", Scripts: map[string]string{"install": "node-gyp rebuild"}},
	}
	var need []*decision
	for _, p := range []*pkg{pkgs[2], pkgs[0], pkgs[1]} {
		need = append(need, &decision{Pkg: p, Build: true})
	}
	var got []string
	for _, d := range buildOrder(pkgs, need) {
		got = append(got, d.Pkg.Path)
	}
	if want := []string{"node_modules/base-addon", "node_modules/app-addon", "node_modules/zed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %q, want %q", got, want)
	}
}

// The generated lifecycle script runs on the host with sh: every install
// script of a package runs in its folder, in order, with npm's environment and
// the .bin folders on PATH; a failing optional package is recorded and skipped,
// a failing required one stops the build.
func TestLifecycleScript(t *testing.T) {
	root := t.TempDir()
	work := filepath.Join(root, "w")
	writeFiles(t, work, map[string]string{
		"node_modules/.bin/tool":                 "#!/bin/sh\necho tool-from-top-bin\n",
		"node_modules/a/package.json":            "{}",
		"node_modules/a/binding.gyp":             "{}",
		"node_modules/opt/package.json":          "{}",
		"node_modules/q/package.json":            "{}",
		"node_modules/q/node_modules/.bin/inner": "#!/bin/sh\necho inner-bin\n",
		"gyp-bin/node-gyp":                       "#!/bin/sh\necho \"node-gyp $* in $(basename \"$PWD\")\" >> \"$LOG\"\n",
	})
	for _, f := range []string{"node_modules/.bin/tool", "node_modules/q/node_modules/.bin/inner", "gyp-bin/node-gyp"} {
		if err := os.Chmod(filepath.Join(work, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a := &pkg{Path: "node_modules/a", Name: "a", Version: "1.0.0", HasGyp: true}
	q := &pkg{Path: "node_modules/q", Name: "q", Version: "2.0.0", Scripts: map[string]string{
		"preinstall":  `echo "pre $npm_package_name@$npm_package_version $npm_lifecycle_event" >> "$LOG"`,
		"install":     `tool >> "$LOG"; inner >> "$LOG"; echo "it's quoted" >> "$LOG"`,
		"postinstall": `echo "post in $(basename "$PWD") $npm_lifecycle_script" >> "$LOG"`,
	}}
	opt := &pkg{Path: "node_modules/opt", Name: "opt", Version: "0.1.0", Scripts: map[string]string{"install": "exit 3"}}
	order := []*decision{{Pkg: a}, {Pkg: opt}, {Pkg: q}}
	script := lifecycleScript(work, order, map[string]bool{"node_modules/opt": true})
	log := filepath.Join(root, "log")
	failed := filepath.Join(root, "failed")
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Env = append(os.Environ(), "LOG="+log, "LAYERPACK_FAILED="+failed, "LAYERPACK_GYP_BIN="+filepath.Join(work, "gyp-bin"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, script)
	}
	got, _ := os.ReadFile(log)
	want := "node-gyp rebuild in a\npre q@2.0.0 preinstall\ntool-from-top-bin\ninner-bin\nit's quoted\npost in q echo \"post in $(basename \"$PWD\") $npm_lifecycle_script\" >> \"$LOG\"\n"
	if string(got) != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
	if f, _ := os.ReadFile(failed); string(f) != "node_modules/opt\n" {
		t.Errorf("failed = %q", f)
	}
	// A required package that fails stops the script.
	script = lifecycleScript(work, []*decision{{Pkg: opt}}, nil)
	cmd = exec.Command("sh", "-e", "-c", script)
	cmd.Env = append(os.Environ(), "LAYERPACK_FAILED="+failed)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "> opt@0.1.0 install: exit 3") {
		t.Errorf("required failure: %v\n%s", err, out)
	}
}

// The commands install scripts call (node-pre-gyp from a hoisted dependency)
// reach the build container; links to packages it does not get do not.
func TestCopyBinLinks(t *testing.T) {
	root, sub := t.TempDir(), t.TempDir()
	writeFiles(t, root, map[string]string{
		"node_modules/.bin/node-pre-gyp":                     "->../@mapbox/node-pre-gyp/bin/node-pre-gyp",
		"node_modules/.bin/unrelated":                        "->../unrelated/cli.js",
		"node_modules/.bin/abs":                              "->/usr/bin/env",
		"node_modules/a/node_modules/.bin/inner":             "->../b/cli.js",
		"node_modules/@mapbox/node-pre-gyp/package.json":     "{}",
		"node_modules/@mapbox/node-pre-gyp/bin/node-pre-gyp": "",
		"node_modules/a/package.json":                        "{}",
		"node_modules/a/node_modules/b/package.json":         "{}",
		"node_modules/a/node_modules/b/cli.js":               "",
		"node_modules/unrelated/cli.js":                      "",
	})
	pkgs, err := scanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"node_modules/@mapbox/node-pre-gyp", "node_modules/a", "node_modules/a/node_modules/b"} {
		if err := copyTree(filepath.Join(root, p), filepath.Join(sub, p), true, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyBinLinks(root, sub, pkgs); err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, f := range listFiles(t, sub) {
		if strings.Contains(f, ".bin/") {
			links = append(links, f)
		}
	}
	if want := []string{"node_modules/.bin/node-pre-gyp", "node_modules/a/node_modules/.bin/inner"}; !reflect.DeepEqual(links, want) {
		t.Errorf("links %q, want %q", links, want)
	}
}
