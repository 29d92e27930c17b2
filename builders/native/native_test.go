package native

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/elfinfo"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
)

func gcc(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("gcc", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
}

// The host side of bundling, with real ELF files: a library the runtime lacks is
// moved into lib/ under a hashed name, and its users are patched to find it there
// through RUNPATH alone.
func TestBuildBundlesCollectedLibraries(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		testneed.Missing(t, "needs gcc")
	}
	if _, err := exec.LookPath("patchelf"); err != nil {
		testneed.Missing(t, "needs patchelf (apt-get install patchelf; scripts/testenv.sh setup installs it)")
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "dep.c"), []byte("int dep(void) { return 42; }\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.c"), []byte("#include <stdio.h>\nint dep(void);\nint main(void) { printf(\"dep=%d\\n\", dep()); return 0; }\n"), 0o644)
	gcc(t, src, "-shared", "-fPIC", "-Wl,-soname,libdep.so.1", "-o", "libdep.so.1", "dep.c")
	gcc(t, src, "-o", "tool", "main.c", "-L.", "-l:libdep.so.1")

	// Play the container step: the script installed bin/tool, and the collector
	// copied libdep.so.1 (loaded from outside /opt) into .layerpack-deps.
	hook := func(_ context.Context, s *engine.Step) error {
		for path, from := range map[string]string{
			"bin/tool": "tool", depsDir + "/libdep.so.1": "libdep.so.1",
		} {
			p := filepath.Join(s.Dest, path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := os.ReadFile(filepath.Join(src, from))
			if err := os.WriteFile(p, b, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	fake := &engine.Fake{Hook: hook}
	rt, _ := lambda.LookupRuntime("provided.al2023")
	l := &config.Layer{Name: "n", Runtimes: []lambda.Runtime{rt},
		Native: &config.Native{Context: ".", AbsContext: src, Script: "make install", BundleLibs: true}}
	stage, work := t.TempDir(), t.TempDir()
	j := &builders.Job{Layer: l, Target: builders.Target{Arch: lambda.X86_64, Runtimes: l.Runtimes},
		Stage: stage, Work: work, Engine: fake, Image: "rootfs:///img", SourceDateEpoch: 315532800}
	if err := New().Build(context.Background(), j); err != nil {
		t.Fatal(err)
	}

	steps := fake.Steps()
	if len(steps) != 1 || steps[0].Arch != lambda.X86_64 || steps[0].Output != "/opt" ||
		steps[0].Mounts[0] != (engine.Mount{Source: src, Target: contextMount}) || steps[0].Env["LAYERPACK_SCRIPT"] != "make install" {
		t.Fatalf("unexpected step: %+v", steps)
	}
	libs, _ := filepath.Glob(filepath.Join(stage, "lib", "libdep-*.so.1"))
	if len(libs) != 1 {
		t.Fatalf("bundled library not in lib/: %v", libs)
	}
	if _, err := os.Stat(filepath.Join(stage, depsDir)); !os.IsNotExist(err) {
		t.Errorf("%s left in the layer", depsDir)
	}
	info := inspectT(t, libs[0])
	if info.Soname != filepath.Base(libs[0]) {
		t.Errorf("SONAME = %q, want %q", info.Soname, filepath.Base(libs[0]))
	}
	tool := inspectT(t, filepath.Join(stage, "bin", "tool"))
	if !contains(tool.Needed, filepath.Base(libs[0])) || contains(tool.Needed, "libdep.so.1") {
		t.Errorf("DT_NEEDED not patched: %v", tool.Needed)
	}
	if strings.Join(tool.RunPath, ":") != "$ORIGIN/../lib" {
		t.Errorf("RUNPATH = %v", tool.RunPath)
	}
	// It runs with no LD_LIBRARY_PATH at all: RUNPATH finds the renamed library.
	cmd := exec.Command(filepath.Join(stage, "bin", "tool"))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "dep=42" {
		t.Fatalf("bundled tool does not run: %v: %s", err, out)
	}
}

// Libraries every target runtime provides are not bundled.
func TestBundleSkipsBaseSystemLibraries(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, depsDir), 0o755)
	os.WriteFile(filepath.Join(root, depsDir, "libstdc++.so.6"), []byte("x"), 0o644)
	rt, _ := lambda.LookupRuntime("provided.al2023")
	if err := New().bundle(root, []lambda.Runtime{rt}); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "lib", "*")); len(m) != 0 {
		t.Errorf("bundled a base-system library: %v", m)
	}
}

func TestHashedName(t *testing.T) {
	p := filepath.Join(t.TempDir(), "libjansson.so.4")
	os.WriteFile(p, []byte("content"), 0o644)
	got, err := hashedName(p, "libjansson.so.4")
	if err != nil || got != "libjansson-ed7002b4.so.4" {
		t.Errorf("hashedName = %q, %v", got, err)
	}
}

func inspectT(t *testing.T, p string) *elfinfo.Info {
	t.Helper()
	info, err := inspect(p)
	if err != nil || info == nil {
		t.Fatalf("inspect %s: %v", p, err)
	}
	return info
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
