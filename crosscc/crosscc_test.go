package crosscc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
)

func TestCeilingIsTheOldestRuntimesGlibc(t *testing.T) {
	rt := func(id string) lambda.Runtime {
		r, ok := lambda.LookupRuntime(id)
		if !ok {
			t.Fatal(id)
		}
		return r
	}
	if got := Ceiling([]lambda.Runtime{rt("python3.12"), rt("python3.11")}).String(); got != "2.26" {
		t.Errorf("python3.12+python3.11: %s, want 2.26", got)
	}
	if got := Ceiling([]lambda.Runtime{rt("nodejs22.x")}).String(); got != "2.34" {
		t.Errorf("nodejs22.x: %s, want 2.34", got)
	}
	if got := Target(lambda.ARM64, Ceiling([]lambda.Runtime{rt("provided.al2")})); got != "aarch64-linux-gnu.2.26" {
		t.Errorf("target %s", got)
	}
}

// The user's own variables win over the wrappers; the toolchain and zig's cache
// are added to the step's mounts and caches, which stay unchanged in the original.
func TestApply(t *testing.T) {
	s := &engine.Step{Env: map[string]string{"CC": "gcc", "X": "1"}, Mounts: []engine.Mount{{Source: "/a", Target: "/b"}}}
	tc := &Toolchain{Dir: "/cache/zig", Host: lambda.X86_64}
	c := tc.Apply(s, lambda.ARM64, lambda.GlibcVersion{Major: 2, Minor: 26})
	if c.Env["CC"] != "gcc" || c.Env["CXX"] != Mount+"/bin/c++" || c.Env["LAYERPACK_CROSS_TARGET"] != "aarch64-linux-gnu.2.26" || c.Env["X"] != "1" {
		t.Errorf("env %v", c.Env)
	}
	if len(c.Mounts) != 2 || c.Mounts[1] != (engine.Mount{Source: "/cache/zig", Target: Mount}) || len(s.Mounts) != 1 {
		t.Errorf("mounts %v (original %v)", c.Mounts, s.Mounts)
	}
	if len(c.Caches) != 1 || c.Caches[0].Target != cacheTarget || len(s.Caches) != 0 {
		t.Errorf("caches %v", c.Caches)
	}
}

func TestKeyChangesWithTheWrappers(t *testing.T) {
	k := Key()
	old := wrappers["bin/cc"]
	wrappers["bin/cc"] = old + "# changed\n"
	defer func() { wrappers["bin/cc"] = old }()
	if Key() == k {
		t.Error("the key does not depend on the wrappers")
	}
}

func TestFetchRefusesAWrongSum(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ziglang.whl")
	if err := os.WriteFile(f, []byte("not zig"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := checkSum(f, wheels[lambda.X86_64].sha256)
	if err == nil || !strings.Contains(err.Error(), "the index served a different file") {
		t.Errorf("err = %v", err)
	}
}

// The real fetch: pip downloads the pinned wheel, it is checked and unpacked once.
func TestFetchReal(t *testing.T) {
	testneed.Tool(t, "python3")
	dir := testneed.Env(t, "LAYERPACK_TEST_ZIG_DIR")
	host := lambda.X86_64
	if runtime.GOARCH == "arm64" {
		host = lambda.ARM64
	}
	p := &Provider{CacheDir: dir}
	tc, err := p.Get(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"zig/zig", "bin/cc", "bin/c++", "bin/ar", "bin/ranlib", "toolchain.cmake", "zig/lib/libc/glibc/abilists"} {
		if _, err := os.Stat(filepath.Join(tc.Dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(tc.Dir, "zig/lib/libc/mingw")); err == nil {
		t.Error("the Windows files were not left out")
	}
	out, err := exec.Command(filepath.Join(tc.Dir, "zig/zig"), "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != Version {
		t.Errorf("zig version: %q, %v", out, err)
	}
}
