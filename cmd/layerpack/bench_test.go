package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkNoopBuild measures `layerpack build` of five unchanged layers (the whole
// process, as a Makefile runs it) against the cold build of the same config in the
// same run. The goal is well under a second per no-op build.
func BenchmarkNoopBuild(b *testing.B) {
	dir := b.TempDir()
	var cfg strings.Builder
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("layer%d", i)
		fmt.Fprintf(&cfg, "[layer.%s]\ncompatible_runtimes = [\"nodejs20.x\"]\n[[layer.%s.files]]\nsrc = \"src/%s\"\ndest = \"nodejs/node_modules/%s\"\n", name, name, name, name)
		for j := 0; j < 400; j++ {
			p := filepath.Join(dir, "src", name, fmt.Sprintf("m%03d", j/20), fmt.Sprintf("f%d.js", j))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			body := strings.Repeat(fmt.Sprintf("module.exports.v%d = %d;\n", j, j), 200)
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(cfg.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	// The real binary, as a Makefile runs it (the test binary re-exec'd by
	// testscript starts slower).
	bin := filepath.Join(b.TempDir(), "layerpack")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, ".cache"), "SOURCE_DATE_EPOCH=")
	build := func() time.Duration {
		start := time.Now()
		cmd := exec.Command(bin, "build", "--progress", "quiet")
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		return time.Since(start)
	}
	cold := build()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		build()
	}
	noop := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(noop.Milliseconds()), "ms/noop-build")
	b.ReportMetric(float64(cold.Milliseconds()), "ms/cold-build")
	b.ReportMetric(float64(cold)/float64(noop), "cold/noop")
}
