// Command crossbench times one C compile, `layerpack build` of a native layer that
// compiles the SQLite amalgamation (sqlite3.c, ~9 MB, from the better-sqlite3 npm
// package) into a shared library, four ways in one run on the same daemon:
//
//   - x86_64, the image's gcc (cross_compile = "emulate": native on an x86_64 daemon),
//     the baseline;
//   - x86_64 with zig cc (cross_compile = "cross");
//   - arm64 with zig cc (cross_compile = "cross"): the fast path;
//   - arm64 with the image's gcc under QEMU (cross_compile = "emulate").
//
// and prints each as a ratio to the baseline. Goal: arm64 fast path within 1.5x of
// x86_64. Every build runs with --no-cache and a warm-up build first, so the
// figures are the compile and the step around it, not the first sync of the image.
// zig's glibc stubs and compiler-rt (seconds) are in its figures: a --no-cache step
// gets a fresh zig cache.
//
//	go run ./bench/crossbench -layerpack bin/layerpack [-runs 1] [-opt -O1]
//
// It needs the test environment (scripts/testenv.sh setup; eval "$(scripts/testenv.sh env)")
// and npm on the host to fetch the package.
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
)

const sqlitePackage = "better-sqlite3@11.10.0"

func main() {
	lp := flag.String("layerpack", "bin/layerpack", "layerpack binary")
	runs := flag.Int("runs", 1, "runs per variant (the median is reported)")
	opt := flag.String("opt", "-O1", "optimisation flag of the compile (-O2 takes about twice as long)")
	keep := flag.Bool("keep", false, "keep the work folder")
	warm := flag.Bool("warm", true, "build once first, to sync the images")
	flag.Parse()
	if err := run(*lp, *runs, *opt, *keep, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "crossbench:", err)
		os.Exit(1)
	}
}

type variant struct {
	name, arch, mode string
}

var variants = []variant{
	{"x86_64 gcc (baseline)", "x86_64", "emulate"},
	{"x86_64 zig cc", "x86_64", "cross"},
	{"arm64 zig cc (fast path)", "arm64", "cross"},
	{"arm64 gcc under QEMU", "arm64", "emulate"},
}

func run(lp string, runs int, opt string, keep, warm bool) error {
	for _, v := range []string{"LAYERPACK_TEST_BUILDKIT", "LAYERPACK_TEST_ROOTFS_X86_64", "LAYERPACK_TEST_ROOTFS_ARM64"} {
		if os.Getenv(v) == "" {
			// make bench runs elsewhere too; this one needs a daemon and images.
			fmt.Printf("crossbench: skipped, %s is not set (scripts/testenv.sh setup, then eval \"$(scripts/testenv.sh env)\")\n", v)
			return nil
		}
	}
	lp, err := filepath.Abs(lp)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "crossbench-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("work folder:", work)
	} else {
		defer os.RemoveAll(work)
	}
	src := filepath.Join(work, "sqlite")
	if err := fetchSQLite(work, src); err != nil {
		return err
	}
	images := filepath.Join(work, "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		return err
	}
	for arch, v := range map[string]string{"x86_64": "LAYERPACK_TEST_ROOTFS_X86_64", "arm64": "LAYERPACK_TEST_ROOTFS_ARM64"} {
		if err := os.Symlink(os.Getenv(v), filepath.Join(images, arch)); err != nil {
			return err
		}
	}
	var cfg strings.Builder
	cfg.WriteString("[images]\ndefault = \"rootfs://images/{arch}\"\n")
	for i, v := range variants {
		// A different -D per variant: the same step text would be one BuildKit
		// cache entry for both modes of an architecture.
		fmt.Fprintf(&cfg, `
[layer.v%d]
compatible_runtimes = ["provided.al2023"]
architectures = [%q]
cross_compile = %q
[layer.v%d.native]
context = "sqlite"
script = "mkdir -p /opt/lib && ${CC:-cc} %s -fPIC -shared -DLAYERPACK_BENCH_VARIANT=%d -DSQLITE_THREADSAFE=1 -o /opt/lib/libsqlite3.so sqlite3.c"
bundle_libs = false
`, i, v.arch, v.mode, i, opt, i)
	}
	if err := os.WriteFile(filepath.Join(work, "layerpack.toml"), []byte(cfg.String()), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "BUILDKIT_HOST="+os.Getenv("LAYERPACK_TEST_BUILDKIT"), "LAYERPACK_CACHE_DIR="+filepath.Join(work, "cache"))
	if d := os.Getenv("LAYERPACK_TEST_ZIG_DIR"); d != "" {
		env = append(env, "LAYERPACK_ZIG_DIR="+d)
	}
	build := func(layer string) (time.Duration, error) {
		cmd := exec.Command(lp, "build", "--no-cache", "--progress", "quiet", layer)
		cmd.Dir, cmd.Env = work, env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("layerpack build %s: %v\n%s", layer, err, out)
		}
		return time.Since(start), nil
	}
	// Warm-up: each architecture's image synced once (zig's glibc stubs and
	// compiler-rt are rebuilt by every --no-cache step: fresh cache mounts).
	if warm {
		fmt.Println("warm-up builds (image sync)...")
		for _, l := range []string{"v1", "v2"} {
			if _, err := build(l); err != nil {
				return err
			}
		}
	}
	times := make([]time.Duration, len(variants))
	for i, v := range variants {
		var ds []time.Duration
		for r := 0; r < runs; r++ {
			d, err := build(fmt.Sprintf("v%d", i))
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
		times[i] = ds[len(ds)/2]
		fmt.Printf("  %-26s %8.1f s\n", v.name, times[i].Seconds())
	}
	base := times[0].Seconds()
	fmt.Printf("\nsqlite3.c %s, layerpack build --no-cache, median of %d:\n", opt, runs)
	for i, v := range variants {
		fmt.Printf("  %-26s %8.1f s  %5.2fx x86_64 gcc\n", v.name, times[i].Seconds(), times[i].Seconds()/base)
	}
	fmt.Printf("  arm64: fast path %.2fx x86_64 zig (goal <= 1.5x); QEMU %.2fx fast path\n",
		times[2].Seconds()/times[1].Seconds(), times[3].Seconds()/times[2].Seconds())
	return nil
}

// fetchSQLite unpacks sqlite3.c and sqlite3.h of the npm package into dst.
func fetchSQLite(work, dst string) error {
	cmd := exec.Command("npm", "pack", "--silent", sqlitePackage)
	cmd.Dir = work
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("npm pack %s: %w", sqlitePackage, err)
	}
	tgz := filepath.Join(work, strings.TrimSpace(string(out)))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	tar := exec.Command("tar", "-xzf", tgz, "-C", dst, "--strip-components=3", "package/deps/sqlite3/sqlite3.c", "package/deps/sqlite3/sqlite3.h")
	if out, err := tar.CombinedOutput(); err != nil {
		return fmt.Errorf("unpacking %s: %v\n%s", tgz, err, out)
	}
	return nil
}
