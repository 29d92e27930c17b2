package python

// Tests against the real BuildKit daemon and the Debian test images of
// scripts/testenv.sh (python 3.11 with pip and python3-dev, gcc, glibc 2.36): they
// skip when those are absent and fail in CI. The PyPI test also needs PyPI and
// skips when it cannot be reached.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
	"github.com/layerpack/layerpack/pipeline"
)

// realBuild runs the real pipeline (builder, zip, the automatic layer checks) on
// the config in dir with a fresh layerpack cache and pip cache; eng nil lets no
// container step run.
func realBuild(t *testing.T, eng engine.Engine, dir string, arches ...lambda.Arch) (map[lambda.Arch]*pipeline.Result, string, error) {
	t.Helper()
	t.Setenv("PIP_CACHE_DIR", t.TempDir())
	return lambdatest.Build(t, dir, New(), arches, eng, lambdatest.BuildOptions{Timeout: 20 * time.Minute})
}

// realProject writes layerpack.toml, requirements.txt and the fixture wheels.
func realProject(t *testing.T, env lambdatest.Env, toml, reqs string, fixtures func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	images := fmt.Sprintf("[images]\ndefault = \"rootfs://%s\"\n", filepath.Join(dir, "rootfs-{arch}"))
	for arch, p := range env.Rootfs {
		if err := os.Symlink(p, filepath.Join(dir, "rootfs-"+string(arch))); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(images+toml), 0o644)
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte(reqs), 0o644)
	wheels := filepath.Join(dir, "wheels")
	os.MkdirAll(wheels, 0o755)
	if fixtures != nil {
		fixtures(wheels)
	}
	return dir
}

// The hermetic set: a pure wheel with a dependency, a wheel per CPU, and a C
// extension that exists only as an sdist, compiled in the build container for each
// architecture (QEMU for arm64). The layer checks pass, and every package imports in
// the Debian image of each architecture with the layer at /opt.
func TestRealSdistCompiledPerArchLoads(t *testing.T) {
	env := lambdatest.Need(t)
	dir := realProject(t, env, layerToml(`"python3.11"`, ""), hermetic+"purepkg==1.0\nplatpkg==2.0\ncext==1.0\n",
		func(d string) { writeFixtures(t, d, true) })
	eng := env.Engine(t)
	res, log, err := realBuild(t, eng, dir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	for _, arch := range lambda.Arches {
		r := res[arch]
		for _, w := range r.Warnings {
			t.Errorf("%s: %s", r.Item.File, w.Message)
		}
		out := env.Run(t, arch, r.Path, `PYTHONPATH=/opt/python:/opt/python/lib/python3.11/site-packages python3 -c '
import platform, purepkg, platpkg, cext, importlib.metadata as md
assert platpkg.CPU == platform.machine(), (platpkg.CPU, platform.machine())
assert cext.add(40, 2) == 42
assert purepkg.VALUE == 42
assert ("armonly" in [d.metadata["Name"] for d in md.distributions()]) == (platform.machine() == "aarch64")
print("ok", platform.machine(), cext.__file__, md.version("cext"))
'
/opt/python/lib/python3.11/site-packages/bin/helper-tool 2>&1 || true
head -1 /opt/python/lib/python3.11/site-packages/bin/helper-tool`, nil)
		if !strings.Contains(out, "ok "+arch.GNU()+" /opt/python/lib/python3.11/site-packages/cext.cpython-311-"+arch.GNU()+"-linux-gnu.so 1.0") {
			t.Errorf("%s load test:\n%s", arch, out)
		}
		if !strings.Contains(out, Shebang) {
			t.Errorf("%s: helper-tool shebang:\n%s", arch, out)
		}
	}
}

// A C extension built with the Debian image's gcc (glibc 2.36) that calls dlopen
// needs GLIBC_2.34, newer than python3.11's Amazon Linux 2 (glibc 2.26): the layer
// check rejects it with the exact elf-glibc message, and no zip is written.
func TestRealNewGlibcRejectedForAL2(t *testing.T) {
	env := lambdatest.Need(t)
	dir := realProject(t, env, emulate(layerToml(`"python3.11"`, "")), hermetic+"cextnew==1.0\n",
		func(d string) { writeExtSdist(t, d, "cextnew", "1.0", true) })
	res, log, err := realBuild(t, env.Engine(t), dir, lambda.X86_64)
	if err == nil {
		t.Fatalf("a module needing GLIBC_2.34 passed the checks for python3.11\n%s", log)
	}
	want := `elf-glibc: "python/lib/python3.11/site-packages/cextnew.cpython-311-x86_64-linux-gnu.so" needs GLIBC_2.34 (dlopen@GLIBC_2.34) but python3.11 (Amazon Linux 2) has glibc 2.26`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
	}
	if _, statErr := os.Stat(res[lambda.X86_64].Path); statErr == nil {
		t.Error("the rejected zip was written")
	}
}

func emulate(toml string) string {
	return strings.Replace(toml, "[layer.deps.python]", "cross_compile = \"emulate\"\n[layer.deps.python]", 1)
}

// The same extension with the default cross_compile (zig cc for glibc 2.26) passes
// the check and loads on both CPUs, from the same glibc 2.36 image.
func TestRealNewGlibcCrossCompiledForAL2(t *testing.T) {
	env := lambdatest.Need(t)
	dir := realProject(t, env, layerToml(`"python3.11"`, ""), hermetic+"cextnew==1.0\n",
		func(d string) { writeExtSdist(t, d, "cextnew", "1.0", true) })
	res, log, err := realBuild(t, env.Engine(t), dir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	for _, arch := range lambda.Arches {
		if want := builders.FastPathDone(arch, res[arch].Item.Target.Runtimes); !strings.Contains(log, want) {
			t.Errorf("%s: the log does not say %q:\n%s", arch, want, log)
		}
		out := env.Run(t, arch, res[arch].Path, `PYTHONPATH=/opt/python/lib/python3.11/site-packages python3 -c 'import cextnew, platform; print("ok", platform.machine(), cextnew.add(40, 2))'`, nil)
		if !strings.Contains(out, "ok "+arch.GNU()+" 42") {
			t.Errorf("%s load test:\n%s", arch, out)
		}
	}
}

// Real sdists from PyPI, compiled in the build container with zig for python3.11
// (Amazon Linux 2) on both CPUs: bitarray (C) and ujson (C and C++, its
// double-conversion; zig c++ links libc++ into the module). Both import and work.
func TestRealPyPISdistsCrossCompiled(t *testing.T) {
	env := lambdatest.Need(t)
	needPyPI(t)
	toml := "[layer.deps]\ncompatible_runtimes = [\"python3.11\"]\ncross_compile = \"cross\"\n[layer.deps.python]\nrequirements = \"requirements.txt\"\nbuild = \"container\"\n"
	dir := realProject(t, env, toml, "--no-binary bitarray,ujson\nbitarray==3.0.0\nujson==5.10.0\n", nil)
	res, log, err := realBuild(t, env.Engine(t), dir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	for _, arch := range lambda.Arches {
		r := res[arch]
		for _, w := range r.Warnings {
			t.Errorf("%s: %s", r.Item.File, w.Message)
		}
		out := env.Run(t, arch, r.Path, `PYTHONPATH=/opt/python/lib/python3.11/site-packages python3 -c '
import platform, ujson, bitarray
assert ujson.loads(ujson.dumps({"a": [1.5, 1e300]})) == {"a": [1.5, 1e300]}
print("ok", platform.machine(), bitarray.bitarray("1011").count(1), ujson.__version__)
'`, nil)
		if !strings.Contains(out, "ok "+arch.GNU()+" 3 5.10.0") {
			t.Errorf("%s load test:\n%s", arch, out)
		}
	}
}

// Two builds from empty caches, in two project folders, give the same CodeSha256
// on each architecture (arm64 under QEMU): the sdist, compiled with debug info,
// is built at a fixed folder with the folder mapped away, never in pip's random
// pip-req-build-XXXXXXXX, which went into the debug info, the GNU build id and
// RECORD.
func TestRealDeterministic(t *testing.T) {
	env := lambdatest.Need(t)
	sums := map[lambda.Arch][]string{}
	for i := 0; i < 2; i++ {
		dir := realProject(t, env, layerToml(`"python3.11"`, ""), hermetic+"purepkg==1.0\ncext==1.0\n",
			func(d string) { writeFixtures(t, d, true) })
		res, log, err := realBuild(t, env.Engine(t), dir)
		if err != nil {
			t.Fatalf("build %d: %v\n%s", i, err, log)
		}
		for _, arch := range lambda.Arches {
			sums[arch] = append(sums[arch], res[arch].CodeSha256)
		}
	}
	for _, arch := range lambda.Arches {
		if sums[arch][0] != sums[arch][1] {
			t.Errorf("%s: two clean builds differ: %s %s", arch, sums[arch][0], sums[arch][1])
		}
	}
}

func needPyPI(t *testing.T) {
	t.Helper()
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Get("https://pypi.org/simple/six/")
	if err != nil {
		testneed.Missing(t, fmt.Sprintf("PyPI is not reachable: %v", err))
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		testneed.Missing(t, fmt.Sprintf("PyPI answered %s", resp.Status))
	}
}

// numpy and pydantic (pydantic_core is compiled) from PyPI for python3.11 and
// python3.12 on both CPUs, through the host fast path only (no container step): the
// compiled packages get one tree per version, the pure ones are shared. The layer
// imports in the Debian image (python 3.11) of each architecture. Two builds with
// empty caches give the same CodeSha256.
func TestRealPyPINumpyPydantic(t *testing.T) {
	needHostPip(t)
	needPyPI(t)
	env := lambdatest.Need(t)
	reqs := "numpy==1.26.4\npydantic==2.9.2\n"
	dir := realProject(t, env, layerToml(`"python3.11", "python3.12"`, "")+"\n", reqs, nil)
	// No container may run (nil engine): the fast path needs none.
	res, log, err := realBuild(t, nil, dir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	for _, arch := range lambda.Arches {
		r := res[arch]
		for _, w := range r.Warnings {
			t.Errorf("%s: %s", r.Item.File, w.Message)
		}
		out := env.Run(t, arch, r.Path, `PYTHONPATH=/opt/python:/opt/python/lib/python3.11/site-packages python3 -c '
import platform, numpy, pydantic, pydantic_core, importlib.metadata as md
class M(pydantic.BaseModel):
    x: int
assert M(x="3").x == 3
assert int(numpy.arange(10).sum()) == 45
print("ok", platform.machine(), numpy.__file__, pydantic_core._pydantic_core.__file__, md.version("pydantic"))
'
ls /opt/python/lib/python3.12/site-packages`, nil)
		if !strings.Contains(out, "ok "+arch.GNU()+" /opt/python/lib/python3.11/site-packages/numpy/__init__.py /opt/python/lib/python3.11/site-packages/pydantic_core/_pydantic_core.cpython-311-"+arch.GNU()+"-linux-gnu.so 2.9.2") {
			t.Errorf("%s:\n%s", arch, out)
		}
		// The 3.12 tree holds the compiled packages for 3.12; pydantic itself
		// (pure) is shared in python/.
		if !strings.Contains(out, "pydantic_core") || !strings.Contains(out, "numpy") || strings.Contains(out, "pydantic-2.9.2.dist-info") {
			t.Errorf("%s: python3.12 site-packages:\n%s", arch, out)
		}
	}
	// Determinism: a second build with empty caches.
	dir2 := realProject(t, env, layerToml(`"python3.11", "python3.12"`, "")+"\n", reqs, nil)
	res2, log, err := realBuild(t, nil, dir2, lambda.X86_64)
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, log)
	}
	if res[lambda.X86_64].CodeSha256 != res2[lambda.X86_64].CodeSha256 {
		t.Errorf("two clean builds differ: %s %s", res[lambda.X86_64].CodeSha256, res2[lambda.X86_64].CodeSha256)
	}
}

// Local packages in the requirements (a pure one beside the file, a compiled one
// through a -r include in a subfolder), for both architectures: the pure one is
// built on the host, the compiled one in the build container (QEMU for arm64) at
// the fixed folder. The layer imports in the image of each architecture, and a
// second build from clean caches in another folder gives the same CodeSha256.
func TestRealLocalPackages(t *testing.T) {
	env := lambdatest.Need(t)
	mk := func() string {
		dir := realProject(t, env, layerToml(`"python3.11"`, ""), hermetic+"purepkg==1.0\n./localpkg\n-r reqs/more.txt\n",
			func(d string) { writeFixtures(t, d, false) })
		writePurePkg(t, filepath.Join(dir, "localpkg"), "localpkg", "7", "helperpkg==1.0")
		writeCompiledPkg(t, filepath.Join(dir, "native", "cpkg"), "cpkg")
		os.MkdirAll(filepath.Join(dir, "reqs"), 0o755)
		os.WriteFile(filepath.Join(dir, "reqs", "more.txt"), []byte("../native/cpkg\n"), 0o644)
		return dir
	}
	eng := env.Engine(t)
	res, log, err := realBuild(t, eng, mk())
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	for _, arch := range lambda.Arches {
		out := env.Run(t, arch, res[arch].Path, `PYTHONPATH=/opt/python/lib/python3.11/site-packages python3 -c '
import platform, localpkg, cpkg, purepkg
assert cpkg.add(40, 2) == 42 and localpkg.VALUE == 7 and purepkg.VALUE == 42
print("ok", platform.machine(), cpkg.__file__)
'`, nil)
		if !strings.Contains(out, "ok "+arch.GNU()+" /opt/python/lib/python3.11/site-packages/cpkg.cpython-311-"+arch.GNU()+"-linux-gnu.so") {
			t.Errorf("%s load test:\n%s", arch, out)
		}
	}
	res2, log, err := realBuild(t, eng, mk())
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, log)
	}
	for _, arch := range lambda.Arches {
		if res[arch].CodeSha256 != res2[arch].CodeSha256 {
			t.Errorf("%s: two clean builds in two folders differ: %s %s", arch, res[arch].CodeSha256, res2[arch].CodeSha256)
		}
	}
}

// build = "container": pip resolves and downloads in the image, then the sdist
// and the local compiled package are built at the fixed folder. The layer loads,
// and two clean builds in two folders give the same CodeSha256 (x86_64).
func TestRealContainerModeDeterministic(t *testing.T) {
	env := lambdatest.Need(t)
	mk := func() string {
		dir := realProject(t, env, layerToml(`"python3.11"`, "build = \"container\"\n"), hermetic+"purepkg==1.0\ncext==1.0\n./native/cpkg\n",
			func(d string) { writeFixtures(t, d, true) })
		writeCompiledPkg(t, filepath.Join(dir, "native", "cpkg"), "cpkg")
		return dir
	}
	eng := env.Engine(t)
	var sums []string
	for i := 0; i < 2; i++ {
		res, log, err := realBuild(t, eng, mk(), lambda.X86_64)
		if err != nil {
			t.Fatalf("build %d: %v\n%s", i, err, log)
		}
		r := res[lambda.X86_64]
		sums = append(sums, r.CodeSha256)
		if i == 0 {
			out := env.Run(t, lambda.X86_64, r.Path, `PYTHONPATH=/opt/python/lib/python3.11/site-packages python3 -c '
import cext, cpkg, purepkg
assert cext.add(1, 2) == 3 and cpkg.add(40, 2) == 42 and purepkg.VALUE == 42
print("ok")
'`, nil)
			if strings.TrimSpace(out) != "ok" {
				t.Errorf("load test:\n%s", out)
			}
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two clean builds differ: %s %s", sums[0], sums[1])
	}
}
