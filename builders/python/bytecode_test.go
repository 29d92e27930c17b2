package python

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/bytesize"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
)

// bytecodeProject is a layer (no compile key: the default) of purepkg and
// datapkg, a wheel with files a package marks as data: .data/data and
// .data/scripts files, a folder and a file whose names are no identifiers, a
// top-level folder its top_level.txt does not list, and a module in Python 2
// syntax. Its .data/purelib files are importable modules.
func bytecodeProject(t *testing.T, extra string) string {
	t.Helper()
	needHostPip(t)
	dir := t.TempDir()
	wheels := filepath.Join(dir, "wheels")
	os.MkdirAll(wheels, 0o755)
	writeFixtures(t, wheels, false)
	writeWheel(t, wheels, wheelSpec{Name: "datapkg", Version: "1.0", Tag: "py3-none-any",
		Files: map[string]string{
			"datapkg/__init__.py":                      "from datapkg import sub\n",
			"datapkg/sub.py":                           "VALUE = {'a', 'b', 'c'}\n",
			"datapkg/page-templates/page.py":           "print('a template')\n",
			"datapkg/not-a-module.py":                  "print('a file shown by a tool')\n",
			"datapkg/py2.py":                           "print 'python 2'\n",
			"examples/demo.py":                         "print('an example')\n",
			"datapkg-1.0.data/data/share/datapkg/t.py": "print('data')\n",
			"datapkg-1.0.data/purelib/dataextra.py":    "X = 1\n",
			"datapkg-1.0.dist-info/top_level.txt":      "datapkg\ndataextra\n",
		},
		Scripts: map[string]string{"datatool.py": "#!python\nprint('tool')\n"},
	})
	toml := "[layer.deps]\ncompatible_runtimes = [\"python3.11\"]\n[layer.deps.python]\nrequirements = \"requirements.txt\"\nfind_links = [\"wheels\"]\n" + extra
	os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(toml), 0o644)
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte(hermetic+"purepkg==1.0\ndatapkg==1.0\n"), 0o644)
	return dir
}

// needFakePython: the fake engine plays the build image's CPython 3.11 with the
// host's.
func needFakePython(t *testing.T) {
	t.Helper()
	if hostPython("3.11") == "" {
		testneed.Missing(t, "needs python3.11 on the host (the fake engine runs the bytecode step on the host)")
	}
}

// Bytecode is on by default: checked-hash .pyc for the importable modules only,
// compiled in the build image of this machine's architecture for either target,
// listed in RECORD with their hashes; data files, scripts and names that import
// cannot reach stay source only.
func TestBytecodeDefault(t *testing.T) {
	needFakePython(t)
	cfg := loadConfig(t, bytecodeProject(t, ""))
	if p := cfg.Layers[0].Python; p.Compile == nil || !*p.Compile {
		t.Fatalf("compile defaults to %v, want true", p.Compile)
	}
	for _, arch := range lambda.Arches {
		eng := &engine.Fake{Exec: true}
		r := runBuild(t, New(), cfg, arch, eng)
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", arch, r.err, r.log)
		}
		var compiles []engine.Step
		for _, s := range eng.Steps() {
			if strings.Contains(s.Name, "bytecode") {
				compiles = append(compiles, s)
			}
		}
		if len(compiles) != 1 || compiles[0].Arch != hostArch() {
			t.Fatalf("%s: want one bytecode step as %s, got %+v", arch, hostArch(), compiles)
		}
		sp := filepath.Join(r.stage, "python/lib/python3.11/site-packages")
		got := names(listTree(t, sp))
		for _, want := range []string{"datapkg/__pycache__/__init__.cpython-311.pyc", "datapkg/__pycache__/sub.cpython-311.pyc",
			"__pycache__/dataextra.cpython-311.pyc", "purepkg/__pycache__/__init__.cpython-311.pyc"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: no %s:\n%s", arch, want, got)
			}
		}
		for _, not := range []string{"share/datapkg/__pycache__", "bin/__pycache__", "page-templates/__pycache__", "not-a-module.cpython", "py2.cpython", "examples/__pycache__"} {
			if strings.Contains(got, not) {
				t.Errorf("%s: %s compiled:\n%s", arch, not, got)
			}
		}
		if !strings.Contains(r.log, "CPython 3.11 cannot compile 1 of") || !strings.Contains(r.log, "datapkg/py2.py") {
			t.Errorf("%s: the log does not name the module CPython could not compile:\n%s", arch, r.log)
		}
		if !regexp.MustCompile(`bytecode for CPython 3.11: \d+ of \d+ modules in python/lib/python3.11/site-packages \(`).MatchString(r.log) {
			t.Errorf("%s: no bytecode log line:\n%s", arch, r.log)
		}
		pyc := read(t, filepath.Join(sp, "datapkg/__pycache__/sub.cpython-311.pyc"))
		if pyc[4] != 3 { // flags word after the magic: 0b11 = checked hash-based
			t.Errorf("%s: not a checked-hash pyc (flags %v)", arch, []byte(pyc[4:8]))
		}
		if !strings.Contains(pyc, "/opt/python/lib/python3.11/site-packages/datapkg/sub.py") {
			t.Errorf("%s: the pyc does not name its source under /opt", arch)
		}
		checkRecords(t, sp)
		rec := read(t, filepath.Join(sp, "datapkg-1.0.dist-info/RECORD"))
		if !strings.Contains(rec, "datapkg/__pycache__/sub.cpython-311.pyc,sha256=") {
			t.Errorf("%s: RECORD does not list the pyc with its hash:\n%s", arch, rec)
		}
	}
}

// The size guard: over bytecode_budget the layer ships without bytecode, and the
// log gives the figures.
func TestBytecodeBudget(t *testing.T) {
	needFakePython(t)
	// The layer's size without bytecode, then a budget 100 bytes above it.
	r := runBuild(t, New(), loadConfig(t, bytecodeProject(t, "compile = false\n")), lambda.X86_64, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	size, _ := dirSize(r.stage)
	cfg := loadConfig(t, bytecodeProject(t, fmt.Sprintf("bytecode_budget = %d\n", size+100)))
	if got := cfg.Layers[0].Python.BytecodeBudget; got != size+100 {
		t.Fatalf("bytecode_budget = %d, want %d", got, size+100)
	}
	r = runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{Exec: true})
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	sp := filepath.Join(r.stage, "python/lib/python3.11/site-packages")
	if got := names(listTree(t, sp)); strings.Contains(got, ".pyc") || strings.Contains(got, "__pycache__") {
		t.Errorf("bytecode shipped over the budget:\n%s", got)
	}
	if !strings.Contains(r.log, "bytecode left out: the layer would be") || !strings.Contains(r.log, "over bytecode_budget "+bytesize.Format(size+100)+"; it ships "+bytesize.Format(size)+" without") {
		t.Errorf("the log does not say why bytecode was left out:\n%s", r.log)
	}
	checkRecords(t, sp)
	// The default budget takes the same layer.
	cfg = loadConfig(t, bytecodeProject(t, ""))
	if r := runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{Exec: true}); r.err != nil || strings.Contains(r.log, "left out") {
		t.Errorf("default budget: %v\n%s", r.err, r.log)
	}
}

// compile = false still ships source only, needs no container, and the
// bytecode input leaves the key.
func TestBytecodeOff(t *testing.T) {
	cfg := loadConfig(t, bytecodeProject(t, "compile = false\n"))
	l := cfg.Layers[0]
	tg := builders.Target{Arch: lambda.X86_64, Runtimes: l.Runtimes}
	if n := New().Engine(l, tg); n.Use != builders.MaybeEngine {
		t.Errorf("compile = false: engine use %v, want maybe", n.Use)
	}
	r := runBuild(t, New(), cfg, lambda.X86_64, nil)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	if got := names(listTree(t, r.stage)); strings.Contains(got, ".pyc") {
		t.Errorf("compile = false wrote bytecode:\n%s", got)
	}
	ins, err := New().Inputs(l, tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.Name == "bytecode" {
			t.Errorf("compile = false keys bytecode: %+v", in)
		}
	}
}

// build = "host": no bytecode by default (no container); compile = true uses the
// host's CPython, whose full version is then in the key.
func TestBytecodeHostBuild(t *testing.T) {
	needFakePython(t)
	cfg := loadConfig(t, bytecodeProject(t, "build = \"host\"\n"))
	if p := cfg.Layers[0].Python; *p.Compile {
		t.Errorf("build = \"host\": compile defaults to true")
	}
	cfg = loadConfig(t, bytecodeProject(t, "build = \"host\"\ncompile = true\n"))
	l := cfg.Layers[0]
	tg := builders.Target{Arch: lambda.ARM64, Runtimes: l.Runtimes}
	if n := New().Engine(l, tg); n.Use != builders.NoEngine {
		t.Errorf("build = \"host\": engine use %v", n.Use)
	}
	ins, err := New().Inputs(l, tg)
	if err != nil {
		t.Fatal(err)
	}
	build, _ := hostPythonBuild(hostPython("3.11"))
	found := false
	for _, in := range ins {
		if in.Name == "host-python:3.11" && in.Value == build && strings.HasPrefix(build, "cpython-311 3.11.") {
			found = true
		}
	}
	if !found {
		t.Errorf("the key lacks the host CPython build %q: %+v", build, ins)
	}
	r := runBuild(t, New(), cfg, lambda.ARM64, nil)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	if got := names(listTree(t, r.stage)); !strings.Contains(got, "datapkg/__pycache__/sub.cpython-311.pyc") {
		t.Errorf("no bytecode from the host's CPython:\n%s", got)
	}
}

// With bytecode, an auto build always runs a container step, so the images'
// digests are keyed: the target's images and this machine's architecture's.
func TestBytecodeEngineNeeds(t *testing.T) {
	cfg := loadConfig(t, bytecodeProject(t, ""))
	l := cfg.Layers[0]
	other := lambda.ARM64
	if hostArch() == lambda.ARM64 {
		other = lambda.X86_64
	}
	n := New().Engine(l, builders.Target{Arch: other, Runtimes: l.Runtimes})
	want := []builders.ImageNeed{{Runtime: "python3.11", Arch: other}, {Runtime: "python3.11", Arch: hostArch()}}
	if n.Use != builders.UsesEngine || len(n.Images) != 2 || n.Images[0] != want[0] || n.Images[1] != want[1] {
		t.Errorf("engine needs %+v, want always with %+v", n, want)
	}
}

func TestImportable(t *testing.T) {
	for p, want := range map[string]bool{
		"six.py": true, "a/b/_c.py": true, "a/__init__.py": true, "a/b-c/d.py": false, "a/1x.py": false,
		"a/x.pyi": false, "a/x-y.py": false, "a.data/x.py": false, "a/x.txt": false,
	} {
		if got := importable(p); got != want {
			t.Errorf("importable(%q) = %v", p, got)
		}
	}
}

func loadConfig(t *testing.T, dir string) *config.File {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Several Python versions: the shared python/ folder gets one set of .pyc per
// version, each per-version folder its own version's only. The fake engine plays
// the build images' interpreters (a .pyc naming the version that compiled it).
func TestBytecodeSeveralVersions(t *testing.T) {
	needHostPip(t)
	cfg := project(t, layerToml(`"python3.11", "python3.12"`, "compile = true\n"), hermetic+"purepkg==1.0\nabipkg==1.0\n", false)
	wheels := filepath.Join(cfg.Dir, "wheels")
	for _, v := range []string{"311", "312"} {
		writeWheel(t, wheels, wheelSpec{Name: "abipkg", Version: "1.0", Tag: "cp" + v + "-cp" + v + "-manylinux2014_x86_64",
			Files: map[string]string{"abipkg/__init__.py": "BUILT_FOR = 'cp" + v + "'\n"}})
	}
	var compiled []string
	fake := &engine.Fake{Hook: func(_ context.Context, s *engine.Step) error {
		if !strings.Contains(s.Name, "bytecode") {
			return fmt.Errorf("unexpected step %s", s.Name)
		}
		var in string
		for _, m := range s.Mounts {
			if m.Target == ctrPycDir {
				in = m.Source
			}
		}
		list, err := os.ReadFile(filepath.Join(in, "files.txt"))
		if err != nil {
			return err
		}
		tag := "cpython-" + strings.ReplaceAll(s.Env["LP_PYVER"], ".", "")
		compiled = append(compiled, s.Env["LP_PYVER"]+" "+s.Env["LP_PREFIX"]+" "+s.Image)
		for _, rel := range strings.Fields(string(list)) {
			dir, file := filepath.Split(rel)
			p := filepath.Join(s.Dest, "tree", dir, "__pycache__", strings.TrimSuffix(file, ".py")+"."+tag+".pyc")
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(tag+" "+rel), 0o644); err != nil {
				return err
			}
		}
		return nil
	}}
	r := runBuild(t, New(), cfg, lambda.X86_64, fake)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	sort.Strings(compiled)
	img := func(v string) string {
		return "docker-image://public.ecr.aws/sam/build-python" + v + ":latest-" + string(hostArch())
	}
	want := []string{
		"3.11 /opt/python " + img("3.11"), "3.11 /opt/python/lib/python3.11/site-packages " + img("3.11"),
		"3.12 /opt/python " + img("3.12"), "3.12 /opt/python/lib/python3.12/site-packages " + img("3.12"),
	}
	if strings.Join(compiled, "\n") != strings.Join(want, "\n") {
		t.Errorf("bytecode steps:\n%s\nwant:\n%s", strings.Join(compiled, "\n"), strings.Join(want, "\n"))
	}
	got := names(listTree(t, r.stage))
	for _, w := range []string{
		"python/purepkg/__pycache__/__init__.cpython-311.pyc", "python/purepkg/__pycache__/__init__.cpython-312.pyc",
		"python/lib/python3.11/site-packages/abipkg/__pycache__/__init__.cpython-311.pyc",
		"python/lib/python3.12/site-packages/abipkg/__pycache__/__init__.cpython-312.pyc",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("%s missing:\n%s", w, got)
		}
	}
	for _, not := range []string{"python3.11/site-packages/abipkg/__pycache__/__init__.cpython-312.pyc", "python3.12/site-packages/abipkg/__pycache__/__init__.cpython-311.pyc"} {
		if strings.Contains(got, not) {
			t.Errorf("%s: bytecode for the wrong version:\n%s", not, got)
		}
	}
	checkRecords(t, filepath.Join(r.stage, "python"))
	checkRecords(t, filepath.Join(r.stage, "python/lib/python3.11/site-packages"))
	checkRecords(t, filepath.Join(r.stage, "python/lib/python3.12/site-packages"))
}
