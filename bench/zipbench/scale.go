package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// scale times layerpack where the count of things, not bytes, is the load:
//
//   - a no-op build of a project of 50 files layers for both architectures
//     (100 zips), target -noop-target;
//   - a cold build (--no-cache) and a no-op build of one layer of 100,000
//     small files, against Info-ZIP's time on the same tree and, with
//     -baseline-layerpack, against another layerpack binary in the same run.
func scale(c config, bin, out string) (missed int, err error) {
	fmt.Printf("\n== scale: 50 layers x 2 architectures, and a layer of 100,000 files\n")
	many := filepath.Join(out, "many")
	var cfg strings.Builder
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 50 {
		name := fmt.Sprintf("l%02d", i)
		fmt.Fprintf(&cfg, "[layer.%s]\ncompatible_runtimes = [\"nodejs20.x\"]\narchitectures = [\"x86_64\", \"arm64\"]\n[[layer.%s.files]]\nsrc = \"src/%s\"\ndest = \"nodejs/node_modules/%s\"\n", name, name, name, name)
		for j := range 40 {
			if err := writeGen(filepath.Join(many, "src", name, fmt.Sprintf("d%d", j%4), fmt.Sprintf("f%d.js", j)), r, 200+r.IntN(3000)); err != nil {
				return 0, err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(many, "layerpack.toml"), []byte(cfg.String()), 0o644); err != nil {
		return 0, err
	}
	xdg := filepath.Join(out, "xdg-scale")
	timeBuild := func(bin, dir, xdg string, args ...string) (time.Duration, error) {
		cmd := exec.Command(bin, append([]string{"build", "--progress", "quiet"}, args...)...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), "XDG_CACHE_HOME="+xdg, "SOURCE_DATE_EPOCH=")
		var o bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &o
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("layerpack build %s in %s: %w\n%s", strings.Join(args, " "), dir, err, o.String())
		}
		return time.Since(start), nil
	}
	bestOf := func(n int, f func() (time.Duration, error)) (time.Duration, error) {
		var ts []time.Duration
		for range n {
			t, err := f()
			if err != nil {
				return 0, err
			}
			ts = append(ts, t)
		}
		return slices.Min(ts), nil
	}
	if _, err := timeBuild(bin, many, xdg); err != nil {
		return 0, err
	}
	noop50, err := bestOf(max(c.runs, 5), func() (time.Duration, error) { return timeBuild(bin, many, xdg) })
	if err != nil {
		return 0, err
	}
	fmt.Printf("no-op, 50 layers x 2 archs : %6.3f s (best of %d)\n", noop50.Seconds(), max(c.runs, 5))
	missed += verdict("50-layer no-op", fmt.Sprintf("%.0f ms", noop50.Seconds()*1000), fmt.Sprintf("< %.0f ms", c.noopTarget.Seconds()*1000), noop50 < c.noopTarget)

	// One layer of 100,000 files of 100 B to 3 KB in 1,000 folders.
	big := filepath.Join(out, "big")
	for i := range 100000 {
		if err := writeGen(filepath.Join(big, "src", fmt.Sprintf("p%03d", i%1000), fmt.Sprintf("m%d.js", i)), r, 100+r.IntN(3000)); err != nil {
			return 0, err
		}
	}
	if err := os.WriteFile(filepath.Join(big, "layerpack.toml"), []byte("[layer.big]\ncompatible_runtimes = [\"nodejs20.x\"]\narchitectures = [\"x86_64\"]\n[[layer.big.files]]\nsrc = \"src\"\ndest = \"nodejs/node_modules\"\n"), 0o644); err != nil {
		return 0, err
	}
	zipBin, err := exec.LookPath("zip")
	if err != nil {
		return 0, err
	}
	info, err := bestOf(c.runs, func() (time.Duration, error) {
		archive := filepath.Join(out, "scale-infozip.zip")
		os.Remove(archive)
		cmd := exec.Command(zipBin, "-q", "-r", "-X", "-y", "-6", archive, ".")
		cmd.Dir = filepath.Join(big, "src")
		start := time.Now()
		err := cmd.Run()
		return time.Since(start), err
	})
	if err != nil {
		return 0, err
	}
	measure := func(bin, xdg string) (cold, noop time.Duration, err error) {
		if cold, err = bestOf(c.runs, func() (time.Duration, error) { return timeBuild(bin, big, xdg, "--no-cache") }); err != nil {
			return 0, 0, err
		}
		if _, err = timeBuild(bin, big, xdg); err != nil {
			return 0, 0, err
		}
		noop, err = bestOf(c.runs, func() (time.Duration, error) { return timeBuild(bin, big, xdg) })
		return cold, noop, err
	}
	cold, noop, err := measure(bin, filepath.Join(out, "xdg-big"))
	if err != nil {
		return 0, err
	}
	fmt.Printf("Info-ZIP, 100,000 files    : %6.2f s\n", info.Seconds())
	fmt.Printf("cold, 100,000 files        : %6.2f s (Info-ZIP / layerpack %.2fx)\n", cold.Seconds(), info.Seconds()/cold.Seconds())
	fmt.Printf("no-op, 100,000 files       : %6.3f s\n", noop.Seconds())
	if c.baseline != "" {
		bcold, bnoop, err := measure(c.baseline, filepath.Join(out, "xdg-big-baseline"))
		if err != nil {
			return 0, err
		}
		fmt.Printf("baseline cold, 100,000     : %6.2f s (baseline / layerpack %.2fx)\n", bcold.Seconds(), bcold.Seconds()/cold.Seconds())
		fmt.Printf("baseline no-op, 100,000    : %6.3f s (baseline / layerpack %.2fx)\n", bnoop.Seconds(), bnoop.Seconds()/noop.Seconds())
		missed += verdict("100k cold vs baseline", fmt.Sprintf("%.2fx", bcold.Seconds()/cold.Seconds()), ">= 2x", bcold >= 2*cold)
		missed += verdict("100k no-op vs baseline", fmt.Sprintf("%.2fx", bnoop.Seconds()/noop.Seconds()), ">= 2x", bnoop >= 2*noop)
	}
	return missed, nil
}

// writeGen writes n bytes of generated JavaScript-like text to path.
func writeGen(path string, r *rand.Rand, n int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b []byte
	for len(b) < n {
		b = fmt.Appendf(b, "export const %s%d = %q;\n", words[r.IntN(len(words))], r.IntN(100000), words[r.IntN(len(words))])
	}
	return os.WriteFile(path, b[:n], 0o644)
}
