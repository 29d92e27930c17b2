package node

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/lambda"
)

func TestCleanTree(t *testing.T) {
	root := t.TempDir()
	so := minimalSO()
	writeFiles(t, root, map[string]string{
		"node_modules/.package-lock.json":                    `{"packages":{}}`,
		"node_modules/.cache/babel/x.json":                   "{}",
		"node_modules/.yarn-integrity":                       "{}",
		"node_modules/.modules.yaml":                         "storeDir: /root/.pnpm-store\n",
		"node_modules/.bin/ok":                               "->../plain/cli.js",
		"node_modules/.bin/gone":                             "->../removed/cli.js",
		"node_modules/.bin/abs":                              "->/usr/bin/env",
		"node_modules/plain/package.json":                    `{"name":"plain"}`,
		"node_modules/plain/cli.js":                          "",
		"node_modules/plain/build/index.js":                  "not a node-gyp build folder: kept",
		"node_modules/plain/node_modules/.package-lock.json": "{}",
		// node-gyp's output in a package with binding.gyp.
		"node_modules/addon/package.json":                          `{"name":"addon"}`,
		"node_modules/addon/binding.gyp":                           "{}",
		"node_modules/addon/build/config.gypi":                     `{"variables":{"nodedir":"/usr"}}`,
		"node_modules/addon/build/Makefile":                        "",
		"node_modules/addon/build/addon.target.mk":                 "",
		"node_modules/addon/build/binding.Makefile":                "",
		"node_modules/addon/build/node_gyp_bins/python3":           "->/usr/bin/python3",
		"node_modules/addon/build/Release/addon.node":              so,
		"node_modules/addon/build/Release/lib.target/libhelper.so": so,
		"node_modules/addon/build/Release/obj.target/addon.node":   so,
		"node_modules/addon/build/Release/obj.target/addon/a.o":    "",
		"node_modules/addon/build/Release/.deps/x.d":               "",
		"node_modules/addon/build/Release/addon.stamp":             "",
		// node-pre-gyp's output.
		"node_modules/pre/package.json":                                     `{"name":"pre"}`,
		"node_modules/pre/binding.gyp":                                      "{}",
		"node_modules/pre/lib/binding/napi-v3/pre.node":                     so,
		"node_modules/pre/build-tmp-napi-v3/Release/pre.node":               so,
		"node_modules/pre/build-tmp-napi-v3/Release/obj.target/pre/src/a.o": "",
	})
	pkgs, err := scanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cleanTree(root, pkgs); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"node_modules/.bin/ok",
		"node_modules/addon/binding.gyp",
		"node_modules/addon/build/Release/addon.node",
		"node_modules/addon/build/Release/lib.target/libhelper.so",
		"node_modules/addon/package.json",
		"node_modules/plain/build/index.js",
		"node_modules/plain/cli.js",
		"node_modules/plain/package.json",
		"node_modules/pre/binding.gyp",
		"node_modules/pre/lib/binding/napi-v3/pre.node",
		"node_modules/pre/package.json",
	}
	if got := listFiles(t, root); !reflect.DeepEqual(got, want) {
		t.Errorf("left:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDropForeign(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"node_modules/sharp/package.json":                               `{"name":"sharp"}`,
		"node_modules/@img/sharp-linux-arm64/package.json":              `{"name":"@img/sharp-linux-arm64","os":["linux"],"cpu":["arm64"],"libc":["glibc"]}`,
		"node_modules/@img/sharp-linuxmusl-arm64/package.json":          `{"name":"@img/sharp-linuxmusl-arm64","os":["linux"],"cpu":["arm64"],"libc":["musl"]}`,
		"node_modules/@img/sharp-linux-x64/package.json":                `{"name":"@img/sharp-linux-x64","os":["linux"],"cpu":["x64"]}`,
		"node_modules/@img/sharp-linux-x64/node_modules/n/package.json": `{"name":"n"}`,
		"node_modules/@img/sharp-darwin-arm64/package.json":             `{"name":"@img/sharp-darwin-arm64","os":"darwin","cpu":"arm64"}`,
	})
	pkgs, err := scanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	removed, kept, err := dropForeign(root, pkgs, targetPlatform(lambda.ARM64))
	if err != nil {
		t.Fatal(err)
	}
	wantRemoved := []string{"node_modules/@img/sharp-darwin-arm64", "node_modules/@img/sharp-linux-x64", "node_modules/@img/sharp-linuxmusl-arm64"}
	if !reflect.DeepEqual(removed, wantRemoved) {
		t.Errorf("removed %q, want %q", removed, wantRemoved)
	}
	if len(kept) != 2 {
		t.Errorf("kept %d packages", len(kept))
	}
	if got := listFiles(t, root); !reflect.DeepEqual(got, []string{"node_modules/@img/sharp-linux-arm64/package.json", "node_modules/sharp/package.json"}) {
		t.Errorf("left %q", got)
	}
}

func TestPrune(t *testing.T) {
	files := map[string]string{
		"node_modules/p/package.json":            `{"name":"p","main":"docs/index.js","bin":{"p":"examples/bin/p.js"}}`,
		"node_modules/p/README.md":               "12345",
		"node_modules/p/LICENSE.md":              "licence",
		"node_modules/p/NOTICE.markdown":         "notice",
		"node_modules/p/CHANGELOG.MD":            "123",
		"node_modules/p/index.js.map":            "1234567890",
		"node_modules/p/src/a.ts":                "12",
		"node_modules/p/src/a.mts":               "12",
		"node_modules/p/src/a.d.ts":              "types",
		"node_modules/p/src/a.js":                "js",
		"node_modules/p/docs/index.js":           "main lives here: kept",
		"node_modules/p/examples/bin/p.js":       "bin lives here: kept",
		"node_modules/p/test/t.js":               "1",
		"node_modules/p/test/fixtures/LICENSE":   "kept",
		"node_modules/p/lib/__tests__/x.js":      "1",
		"node_modules/p/.github/workflows/c.yml": "1",
		"node_modules/p/example/e.js":            "1",
		"node_modules/p/Tests/t.js":              "1",
		// A package named like a pruned folder is a package, not a folder to prune.
		"node_modules/test/package.json":             `{"name":"test"}`,
		"node_modules/test/index.js":                 "kept",
		"node_modules/docs/package.json":             `{"name":"docs"}`,
		"node_modules/p/node_modules/q/README.md":    "1",
		"node_modules/p/node_modules/q/package.json": `{"name":"q"}`,
	}
	for _, types := range []bool{false, true} {
		root := t.TempDir()
		writeFiles(t, root, files)
		pkgs, err := scanTree(root)
		if err != nil {
			t.Fatal(err)
		}
		st, err := prune(root, pkgs, types)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"node_modules/docs/package.json",
			"node_modules/p/LICENSE.md",
			"node_modules/p/NOTICE.markdown",
			"node_modules/p/docs/index.js",
			"node_modules/p/examples/bin/p.js",
			"node_modules/p/node_modules/q/package.json",
			"node_modules/p/package.json",
			"node_modules/p/src/a.d.ts",
			"node_modules/p/src/a.js",
			"node_modules/p/test/fixtures/LICENSE",
			"node_modules/test/index.js",
			"node_modules/test/package.json",
		}
		// README 5 + CHANGELOG 3 + map 10 + ts 2+2 + test 1 + __tests__ 1 + .github 1 + example 1 + Tests 1 + q's README 1
		wantFiles, wantBytes := 11, int64(28)
		if types {
			want = append(want[:7], want[8:]...)
			wantFiles, wantBytes = 12, 33
		}
		if got := listFiles(t, root); !reflect.DeepEqual(got, want) {
			t.Errorf("types=%v: left:\n%s\nwant:\n%s", types, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if st.Files != wantFiles || st.Bytes != wantBytes {
			t.Errorf("types=%v: stats %+v, want %d files, %d bytes", types, st, wantFiles, wantBytes)
		}
	}
}

// compile builds a shared object from C source with the host's gcc.
func compile(t *testing.T, dir, name, src string, args ...string) string {
	t.Helper()
	needTool(t, "gcc")
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("gcc", append([]string{"-shared", "-fPIC", "-o", out, c}, args...)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}

func TestDropLibnode(t *testing.T) {
	dir := t.TempDir()
	// A stand-in for Debian's libnode.so.108 and an addon linked with -lnode the
	// way Debian's node-gyp links them.
	compile(t, dir, "libnode.so.108", "int napi_create_double(void){return 0;}\n", "-Wl,-soname,libnode.so.108")
	addon := compile(t, dir, "addon.node", "int napi_create_double(void);\nint init(void){return napi_create_double();}\n",
		"-L"+dir, "-Wl,--no-as-needed", "-l:libnode.so.108", "-lm")
	before := imported(t, addon)
	if !contains(before, "libnode.so.108") || !contains(before, "libm.so.6") {
		t.Fatalf("fixture does not need libnode and libm: %q", before)
	}
	changed, err := dropLibnode(addon)
	if err != nil || !changed {
		t.Fatalf("dropLibnode: %v, %v", changed, err)
	}
	after := imported(t, addon)
	if contains(after, "libnode.so.108") || !contains(after, "libm.so.6") || len(after) != len(before)-1 {
		t.Errorf("after: %q (before %q)", after, before)
	}
	// The file is still a loadable ELF file; nothing else changed.
	if changed, err := dropLibnode(addon); err != nil || changed {
		t.Errorf("second run: %v, %v", changed, err)
	}
	if changed, err := dropLibnode(filepath.Join(dir, "addon.node.c")); err != nil || changed {
		t.Errorf("not ELF: %v, %v", changed, err)
	}
}

func imported(t *testing.T, file string) []string {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	return libs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCheckABI(t *testing.T) {
	root := t.TempDir()
	napi := compile(t, root, "napi.node", "int napi_create_double(void);\nint f(void){return napi_create_double();}\n", "-Wl,--unresolved-symbols=ignore-all")
	v8 := compile(t, root, "v8.node", "int _ZN2v87Isolate10GetCurrentEv(void);\nint f(void){return _ZN2v87Isolate10GetCurrentEv();}\n", "-Wl,--unresolved-symbols=ignore-all")
	for name, want := range map[string]bool{napi: false, v8: true} {
		got, err := usesV8ABI(name)
		if err != nil || got != want {
			t.Errorf("usesV8ABI(%s) = %v, %v; want %v", filepath.Base(name), got, err, want)
		}
	}
	writeFiles(t, root, map[string]string{"node_modules/a/package.json": `{"name":"a"}`, "node_modules/b/package.json": `{"name":"b"}`})
	for _, c := range []struct{ src, dst string }{{napi, "node_modules/a/build/Release/a.node"}, {v8, "node_modules/b/build/Release/b.node"}} {
		b, _ := os.ReadFile(c.src)
		writeFiles(t, root, map[string]string{c.dst: string(b)})
	}
	pkgs, err := scanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkABI(root, pkgs, 18, []int{18}, "img"); err != nil {
		t.Errorf("same major: %v", err)
	}
	if err := checkABI(root, pkgs[:1], 18, []int{20}, "img"); err != nil {
		t.Errorf("Node-API addon: %v", err)
	}
	err = checkABI(root, pkgs, 18, []int{18, 20}, "rootfs:///img")
	want := "node_modules/b/build/Release/b.node use the V8 API, not Node-API, so they load only on the Node.js major they were built for: " +
		"the build image rootfs:///img has Node.js 18 but the layer is for Node.js 20; use a build image with that Node.js (image = ... in the layer or [images]), or one layer per Node.js major"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}
