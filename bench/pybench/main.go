// Command pybench compares layerpack's python builder with what people do today to
// make a Lambda layer from a requirements file without Docker:
//
//	pip install --platform ... --only-binary=:all: --python-version X.Y \
//	    --implementation cp --abi cpXY --target DIR -r requirements.txt
//	zip -q -r -X layer.zip python
//
// run once per architecture, against `layerpack build` on the same requirements, in
// the same run:
//
//   - cold: empty caches for both (pip's download cache and layerpack's), so both
//     download every wheel; layerpack should be within 1.2x of the baseline;
//   - warm: nothing changed since the last build; the baseline has no cache of
//     layers, so it installs (from pip's warm cache) and zips again, while
//     layerpack answers from its cache; layerpack should be at least 10x faster.
//
// Each figure is the median of -runs runs; baseline and layerpack alternate. The
// baseline gets the same --platform list as layerpack (every manylinux tag the
// runtime's glibc allows), so both resolve the same wheels.
//
//	go run ./bench/pybench [-runs 3] [-requirements FILE] [-runtime python3.12]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/layerpack/layerpack/builders/python"
	"github.com/layerpack/layerpack/lambda"
)

const defaultRequirements = `numpy==1.26.4
pydantic==2.9.2
requests==2.32.3
`

func main() {
	runs := flag.Int("runs", 3, "runs per figure (the median is reported)")
	reqFile := flag.String("requirements", "", "requirements file (default: numpy, pydantic, requests, pinned)")
	runtimeID := flag.String("runtime", "python3.12", "Lambda runtime")
	keep := flag.Bool("keep", false, "keep the work folder")
	flag.Parse()
	if err := run(*runs, *reqFile, *runtimeID, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "pybench:", err)
		os.Exit(1)
	}
}

type bench struct {
	work    string
	lp      string // layerpack binary
	reqs    string
	rt      lambda.Runtime
	python  string
	verbose bool
}

func run(runs int, reqFile, runtimeID string, keep bool) error {
	rt, ok := lambda.LookupRuntime(runtimeID)
	if !ok || rt.Language != lambda.Python {
		return fmt.Errorf("%s is not a Python runtime", runtimeID)
	}
	work, err := os.MkdirTemp("", "pybench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	reqs := defaultRequirements
	if reqFile != "" {
		b, err := os.ReadFile(reqFile)
		if err != nil {
			return err
		}
		reqs = string(b)
	}
	b := &bench{work: work, reqs: reqs, rt: rt, python: "python3"}
	b.lp = filepath.Join(work, "layerpack")
	if out, err := exec.Command("go", "build", "-o", b.lp, "./cmd/layerpack").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/layerpack (run from the repository root): %v\n%s", err, out)
	}
	pipVersion, _ := exec.Command(b.python, "-m", "pip", "--version").Output()
	fmt.Printf("pybench: %s, %d runs per figure (median), %s", runtimeID, runs, pipVersion)
	fmt.Printf("requirements: %s\n\n", strings.Join(strings.Fields(reqs), " "))

	type row struct {
		name     string
		base, lp time.Duration
		target   string
		ok       func(r float64) bool
	}
	var rows []row
	for _, arches := range [][]lambda.Arch{{lambda.X86_64}, {lambda.X86_64, lambda.ARM64}} {
		var names []string
		for _, a := range arches {
			names = append(names, string(a))
		}
		label := strings.Join(names, "+")
		var coldBase, coldLP, warmBase, warmLP []time.Duration
		for i := 0; i < runs; i++ {
			// Fresh folders and caches for both tools.
			baseDir, lpDir := b.dir("base", label, i), b.dir("lp", label, i)
			order := []func() error{
				func() error {
					d, err := b.baseline(baseDir, arches)
					coldBase = append(coldBase, d)
					return err
				},
				func() error {
					d, err := b.layerpack(lpDir, arches)
					coldLP = append(coldLP, d)
					return err
				},
			}
			if i%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, f := range order {
				if err := f(); err != nil {
					return err
				}
			}
			// Warm: the same command again, nothing changed.
			d, err := b.baseline(baseDir, arches)
			if err != nil {
				return err
			}
			warmBase = append(warmBase, d)
			d, err = b.layerpack(lpDir, arches)
			if err != nil {
				return err
			}
			warmLP = append(warmLP, d)
			fmt.Printf("  run %d %-14s cold: baseline %6.2fs layerpack %6.2fs   warm: baseline %6.2fs layerpack %6.3fs\n",
				i+1, label, coldBase[i].Seconds(), coldLP[i].Seconds(), warmBase[i].Seconds(), warmLP[i].Seconds())
		}
		rows = append(rows,
			row{label + " cold", median(coldBase), median(coldLP), "layerpack/baseline <= 1.2", func(r float64) bool { return r <= 1.2 }},
			row{label + " warm", median(warmBase), median(warmLP), "baseline/layerpack >= 10", func(r float64) bool { return 1/r >= 10 }},
		)
	}
	fmt.Printf("\n%-22s %12s %12s %10s %10s  %s\n", "scenario", "baseline", "layerpack", "lp/base", "base/lp", "target")
	for _, r := range rows {
		ratio := r.lp.Seconds() / r.base.Seconds()
		status := "ok"
		if !r.ok(ratio) {
			status = "MISSED"
		}
		fmt.Printf("%-22s %11.2fs %11.3fs %10.2f %10.1f  %s: %s\n", r.name, r.base.Seconds(), r.lp.Seconds(), ratio, 1/ratio, r.target, status)
	}
	return nil
}

func (b *bench) dir(tool, label string, i int) string {
	d := filepath.Join(b.work, fmt.Sprintf("%s-%s-%d", tool, label, i))
	os.MkdirAll(filepath.Join(d, "cache"), 0o755)
	os.WriteFile(filepath.Join(d, "requirements.txt"), []byte(b.reqs), 0o644)
	return d
}

// env is the environment of both tools: their own caches under dir.
func env(dir string) []string {
	return append(os.Environ(),
		"PIP_CACHE_DIR="+filepath.Join(dir, "cache", "pip"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"LAYERPACK_CACHE_DIR=",
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_ROOT_USER_ACTION=ignore",
	)
}

// baseline runs pip install --platform ... --target, then zip, per architecture.
func (b *bench) baseline(dir string, arches []lambda.Arch) (time.Duration, error) {
	start := time.Now()
	for _, a := range arches {
		build := filepath.Join(dir, "build-"+string(a))
		os.RemoveAll(build)
		zipPath := filepath.Join(dir, "layer-"+string(a)+".zip")
		os.Remove(zipPath)
		target := filepath.Join(build, "python")
		args := []string{"-m", "pip", "install", "--quiet", "--no-warn-conflicts", "--target", target,
			"--only-binary=:all:", "--implementation", "cp", "--python-version", b.rt.Version,
			"--abi", "cp" + strings.ReplaceAll(b.rt.Version, ".", "")}
		for _, p := range python.Platforms(a, b.rt.GLIBC) {
			args = append(args, "--platform", p)
		}
		args = append(args, "-r", filepath.Join(dir, "requirements.txt"))
		if err := cmd(dir, env(dir), b.python, args...); err != nil {
			return 0, err
		}
		if err := cmd(build, env(dir), "zip", "-q", "-r", "-X", zipPath, "python"); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// layerpack runs layerpack build for the architectures.
func (b *bench) layerpack(dir string, arches []lambda.Arch) (time.Duration, error) {
	var archList []string
	for _, a := range arches {
		archList = append(archList, fmt.Sprintf("%q", a))
	}
	cfg := fmt.Sprintf("[layer.deps]\ncompatible_runtimes = [%q]\narchitectures = [%s]\n[layer.deps.python]\nrequirements = \"requirements.txt\"\n",
		b.rt.ID, strings.Join(archList, ", "))
	if err := os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(cfg), 0o644); err != nil {
		return 0, err
	}
	start := time.Now()
	err := cmd(dir, env(dir), b.lp, "build", "--progress", "quiet")
	return time.Since(start), err
}

func cmd(dir string, env []string, name string, args ...string) error {
	c := exec.Command(name, args...)
	c.Dir = dir
	c.Env = env
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
