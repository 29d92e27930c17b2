package node

// Tests against the real BuildKit daemon and the Debian test images of
// scripts/testenv.sh (node 18, npm 9, libnode-dev, gcc): they skip when those are
// absent, and fail in CI. The registry test also needs the npm registry.

import (
	"archive/zip"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
	"github.com/layerpack/layerpack/pipeline"
)

// realBuild builds every item of the config in dir with the real pipeline
// (builders, zip, the automatic layer checks) and a fresh cache; it returns the
// zips by architecture.
func realBuild(t *testing.T, env lambdatest.Env, dir string) map[lambda.Arch]*pipeline.Result {
	t.Helper()
	out, log, err := lambdatest.Build(t, dir, New(), nil, env.Engine(t), lambdatest.BuildOptions{Timeout: 20 * time.Minute})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	t.Logf("build log:\n%s", log)
	for _, r := range out {
		for _, w := range r.Warnings {
			t.Errorf("%s: warning from the layer checks: %s", r.Item.File, w.Message)
		}
	}
	return out
}

// images returns a folder holding rootfs-x86_64 and rootfs-arm64, links to the
// test images, for `[images] default = "rootfs://DIR/rootfs-{arch}"`. The folder
// is the same for every run with the same images: BuildKit names a rootfs by its
// path, and a new path costs a full copy of the image (700 MB) to the daemon.
func images(t *testing.T, env lambdatest.Env) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "layerpack-node-test-images-"+sha256Hex(env.Rootfs[lambda.X86_64] + "\x00" + env.Rootfs[lambda.ARM64])[:12])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for arch, p := range env.Rootfs {
		link := filepath.Join(dir, "rootfs-"+string(arch))
		if cur, err := os.Readlink(link); err == nil && cur == p {
			continue
		}
		os.Remove(link)
		if err := os.Symlink(p, link); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	return dir
}

// zipNames lists a zip's entries.
func zipNames(t *testing.T, path string) []string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []string
	for _, f := range zr.File {
		out = append(out, f.Name)
	}
	return out
}

// zipELF opens one entry of a zip as an ELF file.
func zipELF(t *testing.T, path, name string) *elf.File {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ef, err := elf.Open(tmp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ef.Close() })
		return ef
	}
	t.Fatalf("%s has no %s", path, name)
	return nil
}

// The fixture addon (plain C, Node-API, from a local tarball) is compiled in
// the build container for both architectures beside a pure-JS package; the
// layers load in the test images (QEMU for arm64) the way Lambda loads them,
// and two builds from clean caches in two project folders give the same bytes.
func TestRealAddonBothArches(t *testing.T) {
	env := lambdatest.Need(t)
	mk := func() string {
		root := t.TempDir()
		fixtureProjectIn(t, filepath.Join(root, "app"), []string{"addon", "purejs"}, nil)
		writeFiles(t, root, map[string]string{"layerpack.toml": `
[images]
default = "rootfs://` + images(t, env) + `/rootfs-{arch}"

[layer.deps]
compatible_runtimes = ["nodejs18.x", "nodejs20.x"]

[layer.deps.node]
dir = "app"
prune = "safe"
`})
		return root
	}
	first := realBuild(t, env, mk())
	second := realBuild(t, env, mk())
	const addonNode = "nodejs/node_modules/layerpack-fixture-addon/build/Release/addon.node"
	for _, arch := range lambda.Arches {
		r := first[arch]
		if r == nil {
			t.Fatalf("no %s zip", arch)
		}
		if r.CodeSha256 != second[arch].CodeSha256 {
			t.Errorf("%s: two clean builds differ: %s and %s", arch, r.CodeSha256, second[arch].CodeSha256)
		}
		names := zipNames(t, r.Path)
		joined := strings.Join(names, "\n")
		for _, bad := range []string{"config.gypi", "Makefile", "obj.target", ".package-lock.json", "node_gyp_bins", "README.md", "/test/", ".map"} {
			if strings.Contains(joined, bad) {
				t.Errorf("%s: the layer holds %q:\n%s", arch, bad, joined)
			}
		}
		ef := zipELF(t, r.Path, addonNode)
		want := map[lambda.Arch]elf.Machine{lambda.X86_64: elf.EM_X86_64, lambda.ARM64: elf.EM_AARCH64}[arch]
		if ef.Machine != want {
			t.Errorf("%s: addon is %v", arch, ef.Machine)
		}
		if libs, _ := ef.ImportedLibraries(); strings.Contains(strings.Join(libs, " "), "libnode") {
			t.Errorf("%s: addon still needs %q", arch, libs)
		}
		out := env.Run(t, arch, r.Path, `cd /tmp && node -e "
const a = require('layerpack-fixture-addon');
const p = require('layerpack-fixture-purejs');
console.log('result', a.add(1, 2), a.arch(), p.greet('lambda'));"`, map[string]string{"NODE_PATH": "/opt/nodejs/node_modules"})
		if wantOut := "result 3 " + arch.GNU() + " hello lambda"; !strings.Contains(out, wantOut) {
			t.Errorf("%s: load test printed %q, want %q", arch, out, wantOut)
		}
	}
}

// registryReachable skips the test when the npm registry cannot be reached.
func registryReachable(t *testing.T) {
	t.Helper()
	needTool(t, "npm")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "view", "sharp@0.33.5", "version")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "0.33.5") {
		testneed.Missing(t, fmt.Sprintf("the npm registry is not reachable (npm view sharp@0.33.5 version: %v): %s", err, strings.TrimSpace(string(out))))
	}
}

// From the real registry, for arm64: sharp brings exactly its linux-arm64 glibc
// binaries (chosen by npm --cpu/--libc on the host, nothing compiled), and
// bcrypt, whose node-pre-gyp download is not reachable, is compiled from source
// in the arm64 build container. Both load under QEMU.
func TestRealRegistrySharpBcryptArm64(t *testing.T) {
	env := lambdatest.Need(t)
	registryReachable(t)
	root := t.TempDir()
	fixtureProjectIn(t, filepath.Join(root, "app"), nil, map[string]string{"sharp": "0.33.5", "bcrypt": "5.1.1"})
	writeFiles(t, root, map[string]string{"layerpack.toml": `
[images]
default = "rootfs://` + images(t, env) + `/rootfs-{arch}"

[layer.img]
compatible_runtimes = ["nodejs20.x"]
architectures = ["arm64"]

[layer.img.node]
dir = "app"
`})
	r := realBuild(t, env, root)[lambda.ARM64]
	names := zipNames(t, r.Path)
	has := func(prefix string) bool {
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				return true
			}
		}
		return false
	}
	for _, want := range []string{
		"nodejs/node_modules/@img/sharp-linux-arm64/lib/sharp-linux-arm64.node",
		"nodejs/node_modules/@img/sharp-libvips-linux-arm64/lib/libvips-cpp.so",
		"nodejs/node_modules/bcrypt/lib/binding/napi-v3/bcrypt_lib.node",
	} {
		if !has(want) {
			t.Errorf("the layer has no %s", want)
		}
	}
	for _, n := range names {
		if strings.HasPrefix(n, "nodejs/node_modules/@img/") && (strings.Contains(n, "x64") || strings.Contains(n, "musl") || strings.Contains(n, "darwin")) {
			t.Errorf("the arm64 layer holds %s", n)
		}
		if strings.Contains(n, "build-tmp-") || strings.HasSuffix(n, "config.gypi") {
			t.Errorf("the layer holds build leftovers: %s", n)
		}
	}
	if ef := zipELF(t, r.Path, "nodejs/node_modules/bcrypt/lib/binding/napi-v3/bcrypt_lib.node"); ef.Machine != elf.EM_AARCH64 {
		t.Errorf("bcrypt_lib.node is %v", ef.Machine)
	}
	out := env.Run(t, lambda.ARM64, r.Path, `cd /tmp && node -e "
const sharp = require('sharp');
const bcrypt = require('bcrypt');
const h = bcrypt.hashSync('secret', 4);
console.log('vips', sharp.versions.vips, 'bcrypt', bcrypt.compareSync('secret', h), process.arch);"`,
		map[string]string{"NODE_PATH": "/opt/nodejs/node_modules"})
	if !strings.Contains(out, "bcrypt true arm64") || !strings.Contains(out, "vips 8.") {
		t.Errorf("load test printed %q", out)
	}
}
