// Command zipbench measures the zipper against its targets and exits non-zero
// when one is missed:
//
//  1. speed and size on a real node_modules tree (about 200 MB, installed
//     with npm and cached): Info-ZIP `zip -q -r -X -y -6` against
//     zipper.WriteFile at level 6 (-level), best of -runs each, same files for both;
//     targets: at least 4x faster, at most 3% larger.
//  2. scale (scale.go): a no-op build of 50 layers x 2 architectures, and a
//     cold and a no-op build of a layer of 100,000 files;
//  3. peak memory zipping a generated 1 GiB tree (many small files and a few
//     of 200+ MB), in a child process whose max RSS is read from rusage;
//     target: at most 256 MiB.
//
// It is a tool, not a test: `go run ./bench/zipbench` (make bench).
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/layerpack/layerpack/zipper"
)

type config struct {
	runs      int
	tree      string
	cache     string
	workers   int
	level     int
	memSize   int64
	skipSpeed bool
	skipMem   bool
	skipBuild bool
	skipScale bool
	keep      bool
	layerpack string
	baseline  string

	speedTarget float64
	sizeTarget  float64
	rssTarget   int64
	buildTarget float64
	incrTarget  time.Duration
	noopTarget  time.Duration
}

func main() {
	var c config
	flag.IntVar(&c.runs, "runs", 3, "timed runs of each zipper (the best counts)")
	flag.StringVar(&c.tree, "tree", "", "zip this existing folder instead of the cached npm tree")
	flag.StringVar(&c.cache, "cache", defaultCache(), "where the generated trees are kept between runs")
	flag.IntVar(&c.workers, "workers", 0, "zipper workers (0: NumCPU)")
	flag.IntVar(&c.level, "level", 6, "zipper deflate level (the baseline stays zip -6)")
	flag.Int64Var(&c.memSize, "mem-size", 1<<30, "size of the generated tree for the memory test, in bytes")
	flag.BoolVar(&c.skipSpeed, "skip-speed", false, "skip the speed and size comparison")
	flag.BoolVar(&c.skipMem, "skip-memory", false, "skip the peak memory test")
	flag.BoolVar(&c.skipBuild, "skip-build", false, "skip the end-to-end layerpack build comparison")
	flag.BoolVar(&c.skipScale, "skip-scale", false, "skip the 50-layer and 100,000-file builds")
	flag.DurationVar(&c.noopTarget, "noop-target", 150*time.Millisecond, "maximum no-op build time of 50 layers x 2 architectures")
	flag.StringVar(&c.layerpack, "layerpack", "", "layerpack binary for the end-to-end test (default: go build ./cmd/layerpack)")
	flag.StringVar(&c.baseline, "baseline-layerpack", "", "another layerpack binary (an older commit) to time in the same end-to-end runs")
	flag.Float64Var(&c.buildTarget, "build-target", 4, "minimum end-to-end ratio (Info-ZIP time / build --no-cache time)")
	flag.DurationVar(&c.incrTarget, "incremental-target", 250*time.Millisecond, "maximum rebuild time after one file changed")
	flag.BoolVar(&c.keep, "keep", false, "keep the archives written (their folder is printed)")
	flag.Float64Var(&c.speedTarget, "speed-target", 4, "minimum speed ratio (Info-ZIP time / zipper time)")
	flag.Float64Var(&c.sizeTarget, "size-target", 1.03, "maximum size ratio (zipper size / Info-ZIP size)")
	flag.Int64Var(&c.rssTarget, "rss-target", 256<<20, "maximum peak RSS of the memory test, in bytes")
	// The child process of the memory test.
	childDir := flag.String("child-zip", "", "internal: zip this folder and report")
	childOut := flag.String("child-out", "", "internal: archive path for -child-zip")
	flag.Parse()

	if *childDir != "" {
		if err := child(*childDir, *childOut, c.level, c.workers); err != nil {
			fmt.Fprintln(os.Stderr, "zipbench child:", err)
			os.Exit(1)
		}
		return
	}
	missed, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zipbench:", err)
		os.Exit(2)
	}
	if missed > 0 {
		fmt.Printf("\n%d target(s) missed\n", missed)
		os.Exit(1)
	}
	fmt.Println("\nall targets met")
}

// layerpackBin is -layerpack as an absolute path, or a binary built into out.
func layerpackBin(c config, out string) (string, error) {
	if c.layerpack != "" {
		return filepath.Abs(c.layerpack)
	}
	bin := filepath.Join(out, "layerpack")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/layerpack")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building layerpack (run from the repository, or give -layerpack): %w", err)
	}
	return bin, nil
}

func defaultCache() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "layerpack-bench")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "layerpack-bench")
	}
	return filepath.Join(os.TempDir(), "layerpack-bench")
}

func run(c config) (missed int, err error) {
	workers := c.workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	fmt.Printf("zipbench: %s %s, Go %s, %d CPUs, %d workers\n",
		zipper.Encoder, zipper.EncoderVersion(), runtime.Version(), runtime.NumCPU(), workers)
	printLoad("before")
	defer printLoad("after")
	out, err := os.MkdirTemp("", "zipbench-")
	if err != nil {
		return 0, err
	}
	if c.keep {
		fmt.Println("archives in", out)
	} else {
		defer os.RemoveAll(out)
	}

	if !c.skipSpeed {
		m, err := speed(c, out)
		if err != nil {
			return 0, err
		}
		missed += m
	}
	if !c.skipBuild {
		m, err := endToEnd(c, out)
		if err != nil {
			return 0, err
		}
		missed += m
	}
	if !c.skipScale {
		bin, err := layerpackBin(c, out)
		if err != nil {
			return 0, err
		}
		if c.baseline != "" {
			if c.baseline, err = filepath.Abs(c.baseline); err != nil {
				return 0, err
			}
		}
		m, err := scale(c, bin, out)
		if err != nil {
			return 0, err
		}
		missed += m
	}
	if !c.skipMem {
		m, err := memory(c, out)
		if err != nil {
			return 0, err
		}
		missed += m
	}
	return missed, nil
}

// speed compares Info-ZIP and the zipper on a node_modules tree.
func speed(c config, out string) (missed int, err error) {
	tree := c.tree
	if tree == "" {
		if tree, err = nodeTree(c.cache); err != nil {
			return 0, err
		}
	}
	zipBin, err := exec.LookPath("zip")
	if err != nil {
		return 0, errors.New("Info-ZIP zip is not installed (apt-get install zip)")
	}
	files, size, err := treeSize(tree)
	if err != nil {
		return 0, err
	}
	fmt.Printf("\n== speed and size: %s (%d files, %.1f MB)\n", tree, files, float64(size)/1e6)

	infoZip := filepath.Join(out, "infozip.zip")
	ours := filepath.Join(out, "zipper.zip")
	var tInfo, tOurs []time.Duration
	var st zipper.Stats
	// Alternate the two so drift in machine load hits both alike. CPU times
	// are printed too: wall times well above them (Info-ZIP) or above half of
	// them (zipper, on two cores) mean other processes took the CPUs.
	for i := range c.runs {
		os.Remove(infoZip) // zip would update an existing archive
		start := time.Now()
		cmd := exec.Command(zipBin, "-q", "-r", "-X", "-y", "-6", infoZip, ".")
		cmd.Dir = tree
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("zip: %w", err)
		}
		tInfo = append(tInfo, time.Since(start))
		cpuInfo := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()

		cpu0 := selfCPU()
		start = time.Now()
		entries, err := zipper.Scan(tree)
		if err != nil {
			return 0, err
		}
		st, err = zipper.WriteFile(context.Background(), ours, entries, zipper.Options{Level: c.level, Workers: c.workers})
		if err != nil {
			return 0, err
		}
		tOurs = append(tOurs, time.Since(start))
		cpuOurs := selfCPU() - cpu0
		fmt.Printf("  run %d: Info-ZIP %.2f s (cpu %.2f s), zipper %.2f s (cpu %.2f s)\n",
			i+1, tInfo[i].Seconds(), cpuInfo.Seconds(), tOurs[i].Seconds(), cpuOurs.Seconds())
	}
	if err := sameFiles(infoZip, ours); err != nil {
		return 0, err
	}
	sInfo, sOurs := fileSize(infoZip), fileSize(ours)
	bInfo, bOurs := slices.Min(tInfo), slices.Min(tOurs)
	speedRatio := bInfo.Seconds() / bOurs.Seconds()
	sizeRatio := float64(sOurs) / float64(sInfo)
	fmt.Printf("Info-ZIP zip -6 : %6.2f s  %8.1f MB  (best of %d)\n", bInfo.Seconds(), float64(sInfo)/1e6, c.runs)
	fmt.Printf("zipper level %d  : %6.2f s  %8.1f MB  (best of %d; %d entries, %d stored)\n", c.level, bOurs.Seconds(), float64(sOurs)/1e6, c.runs, st.Entries, st.Stored)
	missed += verdict("speed ratio", fmt.Sprintf("%.2fx", speedRatio), fmt.Sprintf(">= %.2gx", c.speedTarget), speedRatio >= c.speedTarget)
	missed += verdict("size ratio", fmt.Sprintf("%.3f", sizeRatio), fmt.Sprintf("<= %.3g", c.sizeTarget), sizeRatio <= c.sizeTarget)
	return missed, nil
}

// memory zips a generated 1 GiB tree in a child process and reads its peak RSS.
func memory(c config, out string) (missed int, err error) {
	tree, err := bigTree(c.cache, c.memSize)
	if err != nil {
		return 0, err
	}
	files, size, err := treeSize(tree)
	if err != nil {
		return 0, err
	}
	fmt.Printf("\n== peak memory: %s (%d files, %.1f MB)\n", tree, files, float64(size)/1e6)
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	archive := filepath.Join(out, "big.zip")
	cmd := exec.Command(self, "-child-zip", tree, "-child-out", archive, "-workers", fmt.Sprint(c.workers), "-level", fmt.Sprint(c.level))
	cmd.Stderr = os.Stderr
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("child: %w", err)
	}
	wall := time.Since(start)
	var st zipper.Stats
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return 0, fmt.Errorf("child output %q: %w", stdout.String(), err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, errors.New("no rusage for the child on this system")
	}
	rss := maxRSSBytes(ru)
	fmt.Printf("zipper level %d  : %6.2f s  %8.1f MB -> %.1f MB  (%d entries, %d stored)\n",
		c.level, wall.Seconds(), float64(st.UnzippedSize)/1e6, float64(st.ZippedSize)/1e6, st.Entries, st.Stored)
	missed += verdict("peak RSS", fmt.Sprintf("%.1f MiB", float64(rss)/(1<<20)), fmt.Sprintf("<= %d MiB", c.rssTarget>>20), rss <= c.rssTarget)
	return missed, nil
}

func child(dir, out string, level, workers int) error {
	entries, err := zipper.Scan(dir)
	if err != nil {
		return err
	}
	st, err := zipper.WriteFile(context.Background(), out, entries, zipper.Options{Level: level, Workers: workers})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(st)
}

// printLoad shows the load average (where there is one): the timings mean
// little if other work kept the CPUs busy.
func printLoad(when string) {
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average %s: %s", when, load)
	}
}

// selfCPU is the user and system time of this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func verdict(what, got, target string, ok bool) int {
	res := "ok"
	if !ok {
		res = "MISSED"
	}
	fmt.Printf("%-16s: %-12s target %-10s %s\n", what, got, target, res)
	if ok {
		return 0
	}
	return 1
}

// sameFiles checks that both archives list the same entries, so the
// comparison is fair.
func sameFiles(a, b string) error {
	na, err := names(a)
	if err != nil {
		return err
	}
	nb, err := names(b)
	if err != nil {
		return err
	}
	if !slices.Equal(na, nb) {
		var onlyA, onlyB []string
		for _, n := range na {
			if _, ok := slices.BinarySearch(nb, n); !ok {
				onlyA = append(onlyA, n)
			}
		}
		for _, n := range nb {
			if _, ok := slices.BinarySearch(na, n); !ok {
				onlyB = append(onlyB, n)
			}
		}
		return fmt.Errorf("the archives hold different files: only in %s: %.10q; only in %s: %.10q", a, onlyA, b, onlyB)
	}
	fmt.Printf("same %d entries in both archives\n", len(na))
	return nil
}

func names(path string) ([]string, error) {
	r, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var n []string
	for _, f := range r.File {
		n = append(n, f.Name)
	}
	slices.Sort(n)
	return n, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func treeSize(root string) (files int, size int64, err error) {
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files++
		size += fi.Size()
		return nil
	})
	return files, size, err
}

// complete reports whether the cached tree dir was finished with this spec:
// its marker, a sibling file, is written last.
func complete(dir, spec string) bool {
	b, err := os.ReadFile(dir + ".complete")
	return err == nil && string(b) == spec
}

func markComplete(dir, spec string) error {
	return os.WriteFile(dir+".complete", []byte(spec), 0o644)
}
