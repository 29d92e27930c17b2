package python

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/bytesize"
	"github.com/layerpack/layerpack/lambda"
)

// Bytecode. /opt is read-only in Lambda: a layer without .pyc files is compiled
// from source again on every cold start (and Python cannot write __pycache__
// there). So the builder writes them, for exactly the CPython versions of the
// layer's runtimes, with these rules:
//
//   - The bytes must be the same on every machine. They come from the build
//     image's interpreter of each version (whose digest is in the cache key), run
//     in a container of this machine's architecture: bytecode does not depend on
//     the CPU, so the x86_64 and arm64 layers get the same .pyc bytes. The host's
//     CPython is used only with build = "host" and an explicit compile = true,
//     and its full version string is then in the cache key (the bytes depend on
//     that machine's build of CPython).
//   - checked-hash invalidation: the .pyc holds the source's hash, not its mtime
//     (zip extraction does not keep mtimes one can rely on), and CPython still
//     checks it, so a later layer that replaces a .py file is not shadowed by a
//     stale .pyc. The README's "Cold start" section has the measurement against
//     unchecked-hash and timestamp.
//   - Only importable modules listed by a distribution's RECORD are compiled:
//     never files installed from a wheel's .data/data or .data/scripts (RECORD
//     paths outside site-packages, ../../), never bin/, never a folder or file
//     whose name is not an identifier (templates, examples with dashes, ...),
//     never a top-level name outside the distribution's top_level.txt when it has
//     one.
//   - A size guard: when the layer with its bytecode would be larger than
//     bytecode_budget, the .pyc files are left out and the log says so with the
//     figures.

// pycMode is the invalidation mode written (see above).
const pycMode = "checked-hash"

// pycScript compiles the listed files (one tree-relative path a line) of the
// folder argv[1] into argv[2]/.../__pycache__/NAME.cpython-3XX.pyc, naming each
// source argv[3]/PATH (its path under /opt, for tracebacks). A file this CPython
// cannot compile (Python 2 syntax in a vendored example, say) stays source only,
// as it would be without bytecode; they are listed in argv[2]/../not-compiled.txt.
const pycScript = `import importlib.util, os, py_compile, sys
src, out, prefix, mode, listing = sys.argv[1:6]
inv = py_compile.PycInvalidationMode[mode.upper().replace("-", "_")]
bad = []
with open(listing, encoding="utf-8") as f:
    files = f.read().splitlines()
for rel in files:
    cfile = importlib.util.cache_from_source(os.path.join(out, rel))
    try:
        py_compile.compile(os.path.join(src, rel), cfile=cfile, dfile=prefix + "/" + rel, doraise=True, invalidation_mode=inv)
    except (py_compile.PyCompileError, UnicodeDecodeError, ValueError):
        bad.append(rel)
with open(os.path.join(out, "..", "not-compiled.txt"), "w", encoding="utf-8") as f:
    f.write("".join(rel + "\n" for rel in bad))
`

// ctrPycDir holds the script and the file list in the compile step.
const ctrPycDir = "/layerpack/pyc"

// compileScript runs pycScript with the build image's CPython of $LP_PYVER.
const compileScript = ctrFindPython + `mkdir -p /out/tree
"$PY" -S ` + ctrPycDir + `/compile.py /layerpack/tree /out/tree "$LP_PREFIX" "$LP_PYC_MODE" ` + ctrPycDir + `/files.txt
`

// compileOn is the effective compile setting (config's defaults fill it; a
// section made in code without them gets the same default).
func compileOn(p *config.Python) bool {
	if p.Compile != nil {
		return *p.Compile
	}
	return buildMode(p) != "host"
}

func bytecodeBudget(p *config.Python) int64 {
	if p.BytecodeBudget > 0 {
		return p.BytecodeBudget
	}
	return config.DefaultBytecodeBudget
}

// hostArch is this machine's architecture: compile steps run as it.
func hostArch() lambda.Arch {
	if runtime.GOARCH == "arm64" {
		return lambda.ARM64
	}
	return lambda.X86_64
}

// hostPython returns a host interpreter of exactly version v, or "".
func hostPython(v string) string {
	for _, name := range []string{"python" + v, "python3"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		out, err := exec.Command(p, "-c", `import sys; print("%d.%d" % sys.version_info[:2])`).Output()
		if err == nil && strings.TrimSpace(string(out)) == v {
			return p
		}
	}
	return ""
}

// hostPythonBuild is what the bytecode of a host interpreter depends on: its full
// version and build (sys.version) and cache tag, for the cache key.
func hostPythonBuild(py string) (string, error) {
	out, err := exec.Command(py, "-c", `import sys; print(sys.implementation.cache_tag, sys.version.replace("\n", " "))`).Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v", py, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// dataFiles returns the tree-relative paths a wheel installed from its .data/data,
// .data/scripts or .data/headers folders: pip and uv record them relative to
// site-packages, so outside it (../../share/x). Read before NormalizeTree rewrites
// RECORD to tree-relative paths.
func dataFiles(root string, into map[string]bool) error {
	recs, err := filepath.Glob(filepath.Join(root, "*.dist-info", "RECORD"))
	if err != nil {
		return err
	}
	for _, r := range recs {
		f, err := os.Open(r)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "../") && !strings.HasPrefix(line, `"../`) {
				continue
			}
			p := strings.TrimPrefix(line, `"`)
			if i := strings.LastIndex(p, ","); i >= 0 {
				if j := strings.LastIndex(p[:i], ","); j >= 0 {
					p = p[:j]
				}
			}
			p = strings.TrimSuffix(p, `"`)
			if tp, ok := treePath(root, p); ok {
				into[tp] = true
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	return nil
}

// identifier reports whether s is a Python identifier (ASCII only: a module with
// another name is left to compile at run time, which is only slower).
func identifier(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// importable reports whether the tree-relative path p names a module that import
// can reach from the folder: every folder an identifier (a package or a namespace
// package), the file NAME.py with NAME an identifier.
func importable(p string) bool {
	if !strings.HasSuffix(p, ".py") {
		return false
	}
	parts := strings.Split(strings.TrimSuffix(p, ".py"), "/")
	for _, part := range parts {
		if !identifier(part) {
			return false
		}
	}
	return true
}

// topLevelNames reads a distribution's top_level.txt (setuptools writes it);
// nil when it has none.
func topLevelNames(root string, d *Dist) map[string]bool {
	b, err := os.ReadFile(filepath.Join(root, d.DistInfo, "top_level.txt"))
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			top, _, _ := strings.Cut(strings.ReplaceAll(l, `\`, "/"), "/")
			names[top] = true
		}
	}
	return names
}

// modulesToCompile lists, sorted, the modules of a placed folder to compile.
func modulesToCompile(root string, data map[string]bool) ([]string, error) {
	dists, err := ReadTree(root)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, d := range dists {
		tops := topLevelNames(root, d)
		for _, f := range d.Files {
			top, _, _ := strings.Cut(f.Path, "/")
			switch {
			case top == d.DistInfo || top == "bin" || data[f.Path] || !importable(f.Path):
				continue
			case tops != nil && !tops[top] && !tops[strings.TrimSuffix(top, ".py")]:
				continue
			}
			if st, err := os.Lstat(filepath.Join(root, filepath.FromSlash(f.Path))); err != nil || !st.Mode().IsRegular() {
				continue
			}
			files = append(files, f.Path)
		}
	}
	sort.Strings(files)
	return dedupe(files), nil
}

// compile writes the bytecode of every placed folder for each Python version
// that imports from it, then applies the size guard and lists the .pyc files in
// RECORD. out is the builder's future /opt.
func (jb *job) compile(ctx context.Context, out string, places []placed) error {
	var pycBytes int64
	var pycs []string
	for _, pl := range places {
		files, err := modulesToCompile(pl.dir, jb.data)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			continue
		}
		for _, v := range pl.versions {
			dest := filepath.Join(jb.j.Work, "pyc-"+v+"-"+strings.ReplaceAll(pl.rel, "/", "_"))
			if err := jb.compileVersion(ctx, v, hostArch(), pl, files, dest); err != nil {
				return fmt.Errorf("CPython %s: %w", v, err)
			}
			if _, err := os.Stat(filepath.Join(dest, "tree")); err != nil {
				return fmt.Errorf("the bytecode step wrote nothing: %w", err)
			}
			n, list, err := pycFiles(filepath.Join(dest, "tree"))
			if err != nil {
				return err
			}
			if b, err := os.ReadFile(filepath.Join(dest, "not-compiled.txt")); err == nil && len(b) > 0 {
				bad := strings.Fields(string(b))
				more := ""
				if len(bad) > 10 {
					bad, more = bad[:10], fmt.Sprintf(" and %d more", len(bad)-10)
				}
				jb.logf("CPython %s cannot compile %d of %d modules in %s, shipped as source only: %s%s", v, len(strings.Fields(string(b))), len(files), pl.rel, strings.Join(bad, ", "), more)
			}
			if err := mergeTree(filepath.Join(dest, "tree"), pl.dir); err != nil {
				return err
			}
			if err := os.RemoveAll(dest); err != nil {
				return err
			}
			for _, p := range list {
				pycs = append(pycs, filepath.Join(pl.dir, filepath.FromSlash(p)))
			}
			pycBytes += n
			jb.logf("bytecode for CPython %s: %d of %d modules in %s (%s)", v, len(list), len(files), pl.rel, bytesize.Format(n))
		}
	}
	if len(pycs) == 0 {
		return nil
	}
	total, err := dirSize(out)
	if err != nil {
		return err
	}
	if staged, err := dirSize(jb.j.Stage); err == nil {
		total += staged
	}
	if budget := bytecodeBudget(jb.p); total > budget {
		for _, p := range pycs {
			if err := os.Remove(p); err != nil {
				return err
			}
			os.Remove(filepath.Dir(p)) // the __pycache__ folder, when now empty
		}
		jb.logf("bytecode left out: the layer would be %s unzipped with it (%s of .pyc, %d files), over bytecode_budget %s; it ships %s without (cold starts compile from source; raise bytecode_budget or set compile = false to silence this)",
			bytesize.Format(total), bytesize.Format(pycBytes), len(pycs), bytesize.Format(budget), bytesize.Format(total-pycBytes))
		return nil
	}
	for _, pl := range places {
		if err := addBytecodeToRecords(pl.dir); err != nil {
			return err
		}
	}
	return nil
}

// pycFiles sums and lists (tree-relative) the .pyc files under dir.
func pycFiles(dir string) (int64, []string, error) {
	var n int64
	var list []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".pyc") {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
			rel, _ := filepath.Rel(dir, p)
			list = append(list, filepath.ToSlash(rel))
		}
		return nil
	})
	return n, list, err
}

// compileVersion writes dest/tree/.../__pycache__/*.pyc for files of pl with
// CPython v: in the build image of v running as arch, or with build = "host" the
// host's pythonV.
func (jb *job) compileVersion(ctx context.Context, v string, arch lambda.Arch, pl placed, files []string, dest string) error {
	in := dest + ".in"
	if err := os.MkdirAll(in, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(in)
	if err := os.WriteFile(filepath.Join(in, "compile.py"), []byte(pycScript), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(in, "files.txt"), []byte(strings.Join(files, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	prefix := "/opt/" + pl.rel
	epoch := strconv.FormatInt(jb.j.SourceDateEpoch, 10)
	if buildMode(jb.p) == "host" {
		py := hostPython(v)
		if py == "" {
			return fmt.Errorf("layer.%s.python.compile = true with build = \"host\" needs python%s on the host", jb.j.Layer.Name, v)
		}
		env := []string{"SOURCE_DATE_EPOCH=" + epoch, "PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1"}
		return jb.runHost(ctx, "py_compile (python"+v+")", env, py, "-S", filepath.Join(in, "compile.py"), pl.dir, filepath.Join(dest, "tree"), prefix, pycMode, filepath.Join(in, "files.txt"))
	}
	eng, err := jb.engine()
	if err != nil {
		return fmt.Errorf("bytecode is compiled in the build image of each Python version: %w (set compile = false, or build = \"host\", to build without containers)", err)
	}
	t := Target{Version: v, Arch: arch, Runtimes: []string{"python" + v}}
	image := jb.j.Images.For(jb.runtimeFor(v), arch)
	if image == "" {
		return fmt.Errorf("no build image was chosen for python%s on %s", v, arch)
	}
	env := jb.stepEnv(t, nil)
	env["LP_PREFIX"] = prefix
	env["LP_PYC_MODE"] = pycMode
	// Before CPython 3.11 sets of constants were marshalled in hash order (3.11
	// sorts them): a fixed seed keeps python3.9 and 3.10 bytecode stable.
	env["PYTHONHASHSEED"] = "0"
	step := jb.j.Step(fmt.Sprintf("%s: bytecode (CPython %s, %s)", jb.j.Layer.Name, v, pl.rel), arch, image, engine.Step{
		Script: compileScript,
		Dir:    "/",
		Env:    env,
		Mounts: []engine.Mount{{Source: pl.dir, Target: "/layerpack/tree"}, {Source: in, Target: ctrPycDir}},
		Output: ctrOut,
		Dest:   dest,
	})
	return eng.Run(ctx, step)
}

// runtimeFor is the runtime whose build image compiles for version v: the first
// of the target's runtimes of that version (Engine asked plan for that one).
func (jb *job) runtimeFor(v string) string {
	for _, tg := range Targets(jb.j.Target.Runtimes, jb.j.Target.Arch) {
		if tg.Version == v {
			return tg.Runtimes[0]
		}
	}
	return "python" + v
}

var pycName = regexp.MustCompile(`^(.+)\.cpython-\d+(?:\.opt-\d)?\.pyc$`)

// addBytecodeToRecords adds the .pyc files next to each distribution's modules to
// its RECORD, with their hashes.
func addBytecodeToRecords(root string) error {
	dists, err := ReadTree(root)
	if err != nil {
		return err
	}
	for _, d := range dists {
		have := map[string]bool{}
		for _, f := range d.Files {
			have[f.Path] = true
		}
		var add []RecordEntry
		for _, f := range d.Files {
			if !strings.HasSuffix(f.Path, ".py") {
				continue
			}
			dir, file := path.Split(f.Path)
			stem := strings.TrimSuffix(file, ".py")
			ents, _ := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir), "__pycache__"))
			for _, e := range ents {
				if m := pycName.FindStringSubmatch(e.Name()); m != nil && m[1] == stem {
					p := dir + "__pycache__/" + e.Name()
					if !have[p] {
						have[p] = true
						add = append(add, RecordEntry{Path: p})
					}
				}
			}
		}
		if len(add) == 0 {
			continue
		}
		sort.Slice(add, func(i, j int) bool { return add[i].Path < add[j].Path })
		d.Files = append(d.Files, add...)
		if err := writeRecord(root, d, nil); err != nil {
			return err
		}
	}
	return nil
}
