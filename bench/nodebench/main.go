// Command nodebench measures `layerpack build` of a Node.js layer against the
// usual recipe on the same lockfile: `npm ci --omit=dev`, then `zip -q -r -X`
// of nodejs/node_modules.
//
//	go run ./bench/nodebench [-runs 3] [-project bench/nodebench/project]
//
// Cold is a build with an empty layerpack cache; warm is the same build again
// with nothing changed. npm's own package cache is warmed once first and shared
// by every run, so both sides pay for unpacking, not for downloads. Targets:
// cold within 1.2x of the baseline, warm at least 10x faster. It needs npm, zip
// and the npm registry (or a warm npm cache).
package main

import (
	"archive/zip"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	runs := flag.Int("runs", 3, "measurements per variant (the median is reported)")
	project := flag.String("project", "bench/nodebench/project", "folder with package.json and package-lock.json")
	keep := flag.Bool("keep", false, "keep the scratch folder")
	flag.Parse()
	if err := run(*runs, *project, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "nodebench:", err)
		os.Exit(1)
	}
}

func run(runs int, project string, keep bool) error {
	for _, tool := range []string{"npm", "zip", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not on PATH", tool)
		}
	}
	project, err := filepath.Abs(project)
	if err != nil {
		return err
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		if _, err := os.Stat(filepath.Join(project, f)); err != nil {
			return fmt.Errorf("%s: %w (run from the repository root or pass -project)", f, err)
		}
	}
	scratch, err := os.MkdirTemp("", "nodebench-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("scratch folder:", scratch)
	} else {
		defer os.RemoveAll(scratch)
	}

	lp := filepath.Join(scratch, "layerpack")
	fmt.Println("building layerpack ...")
	if out, err := exec.Command("go", "build", "-o", lp, "./cmd/layerpack").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/layerpack (run from the repository root): %v\n%s", err, out)
	}

	fmt.Println("warming npm's cache ...")
	warmup := filepath.Join(scratch, "warmup")
	if err := copyProject(project, warmup); err != nil {
		return err
	}
	if err := sh(warmup, "npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"); err != nil {
		return err
	}
	os.RemoveAll(warmup)

	var base, cold, warm []time.Duration
	var baseZip, lpZip string
	for i := range runs {
		// Baseline: npm ci --omit=dev, then zip -q -r -X of nodejs/node_modules.
		dir := filepath.Join(scratch, fmt.Sprintf("baseline-%d", i))
		if err := copyProject(project, dir); err != nil {
			return err
		}
		start := time.Now()
		if err := sh(dir, "npm", "ci", "--omit=dev", "--no-audit", "--no-fund"); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "nodejs"), 0o755); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, "node_modules"), filepath.Join(dir, "nodejs", "node_modules")); err != nil {
			return err
		}
		if err := sh(dir, "zip", "-q", "-r", "-X", "layer.zip", "nodejs"); err != nil {
			return err
		}
		base = append(base, time.Since(start))
		baseZip = filepath.Join(dir, "layer.zip")

		// layerpack, cold (empty cache) then warm (nothing changed).
		dir = filepath.Join(scratch, fmt.Sprintf("layerpack-%d", i))
		if err := copyProject(project, filepath.Join(dir, "app")); err != nil {
			return err
		}
		cfg := "[layer.deps]\ncompatible_runtimes = [\"nodejs22.x\"]\narchitectures = [\"x86_64\"]\n\n[layer.deps.node]\ndir = \"app\"\n"
		if err := os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(cfg), 0o644); err != nil {
			return err
		}
		env := []string{"LAYERPACK_CACHE_DIR=" + filepath.Join(dir, ".cache")}
		start = time.Now()
		out, err := shEnv(dir, env, lp, "build", "--progress", "quiet")
		if err != nil {
			return err
		}
		cold = append(cold, time.Since(start))
		if strings.Contains(out, "cached") {
			return fmt.Errorf("the cold build came from the cache:\n%s", out)
		}
		start = time.Now()
		out, err = shEnv(dir, env, lp, "build", "--progress", "quiet")
		if err != nil {
			return err
		}
		warm = append(warm, time.Since(start))
		if !strings.Contains(out, "cached") {
			return fmt.Errorf("the warm build was not from the cache:\n%s", out)
		}
		lpZip = filepath.Join(dir, "dist", "deps-x86_64.zip")
		fmt.Printf("run %d: baseline %v, layerpack cold %v, warm %v\n", i+1, round(base[i]), round(cold[i]), round(warm[i]))
	}

	b, c, w := median(base), median(cold), median(warm)
	bs, bn, err := zipStats(baseZip)
	if err != nil {
		return err
	}
	ls, ln, err := zipStats(lpZip)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Printf("lockfile: %s (%d runs, medians)\n", filepath.Join(project, "package-lock.json"), runs)
	fmt.Printf("%-44s %10s %12s %9s\n", "", "time", "zip bytes", "entries")
	fmt.Printf("%-44s %10v %12d %9d\n", "npm ci --omit=dev + zip -q -r -X", round(b), bs, bn)
	fmt.Printf("%-44s %10v %12d %9d\n", "layerpack build, cold (empty cache)", round(c), ls, ln)
	fmt.Printf("%-44s %10v %12s %9s\n", "layerpack build, warm (nothing changed)", round(w), "same", "same")
	fmt.Println()
	coldRatio := float64(c) / float64(b)
	warmRatio := float64(b) / float64(w)
	fmt.Printf("cold / baseline = %.2fx (target <= 1.20x): %s\n", coldRatio, verdict(coldRatio <= 1.2))
	fmt.Printf("baseline / warm = %.1fx faster (target >= 10x): %s\n", warmRatio, verdict(warmRatio >= 10))
	if coldRatio > 1.2 || warmRatio < 10 {
		return fmt.Errorf("a target was missed")
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

func copyProject(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"package.json", "package-lock.json", ".npmrc"} {
		in, err := os.Open(filepath.Join(src, f))
		if os.IsNotExist(err) && f == ".npmrc" {
			continue
		}
		if err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(dst, f))
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func sh(dir string, name string, args ...string) error {
	_, err := shEnv(dir, nil, name, args...)
	return err
}

func shEnv(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "npm_config_update_notifier=false"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func zipStats(path string) (int64, int, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return 0, 0, err
	}
	defer zr.Close()
	return st.Size(), len(zr.File), nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
