package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/layerpack/layerpack/lambda"
)

// The same layer built from two copies of its sources that differ in everything the
// zip must not depend on (umask, mtimes, creation order, TZ, working directory, cache)
// gives the same CodeSha256.
func TestDeterminism(t *testing.T) {
	files := map[string]string{
		"layerpack.toml":             "[layer.d]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.d.files]]\nsrc = \"src\"\ndest = \"python\"\n[[layer.d.files]]\nsrc = \"tools\"\ndest = \"bin\"\n",
		"src/pkg/__init__.py":        "from .core import run\n",
		"src/pkg/core.py":            strings.Repeat("def run():\n    return 42\n", 50),
		"src/pkg/data/table.csv":     strings.Repeat("a,b,c\n1,2,3\n", 200),
		"src/pkg/sub/deep/x.py":      "X = 1\n",
		"src/other/README.txt":       "readme\n",
		"tools/run":                  "#!/bin/sh\necho run\n",
		"src/pkg/nested/empty/.keep": "",
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	make := func(dir string, umask int, reverse bool, mtime time.Time) {
		old := syscall.Umask(umask)
		defer syscall.Umask(old)
		order := append([]string(nil), names...)
		if reverse {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, n := range order {
			p := filepath.Join(dir, n)
			if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
				t.Fatal(err)
			}
			mode := os.FileMode(0o666)
			if strings.HasPrefix(n, "tools/") {
				mode = 0o777
			}
			if err := os.WriteFile(p, []byte(files[n]), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := t.TempDir(), t.TempDir()
	make(a, 0o022, false, time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC))
	make(b, 0o077, true, time.Now())

	build := func(cwd, config, tz, cacheHome string) string {
		cmd := exec.Command("layerpack", "build", "-c", config, "--progress", "quiet", "--arch", "x86_64")
		cmd.Dir = cwd
		cmd.Env = append(os.Environ(), "TZ="+tz, "XDG_CACHE_HOME="+cacheHome, "SOURCE_DATE_EPOCH=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("build in %s: %v\n%s", cwd, err, out)
		}
		sum, err := lambda.FileCodeSha256(filepath.Join(filepath.Dir(filepath.Join(cwd, config)), "dist", "d-x86_64.zip"))
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	sumA := build(a, "layerpack.toml", "UTC", t.TempDir())
	sumB := build(filepath.Dir(b), filepath.Join(filepath.Base(b), "layerpack.toml"), "Pacific/Kiritimati", t.TempDir())
	if sumA != sumB {
		out, _ := exec.Command("layerpack", "diff", filepath.Join(a, "dist/d-x86_64.zip"), filepath.Join(b, "dist/d-x86_64.zip")).CombinedOutput()
		t.Fatalf("CodeSha256 differs: %s vs %s\n%s", sumA, sumB, out)
	}
	fmt.Println("determinism: both builds gave", sumA)
}
