package python

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/plan"
)

// pureBackend is a PEP 517 backend that packs NAME/*.py into a pure wheel,
// offline (no setuptools).
const pureBackend = `import base64, hashlib, os, zipfile

NAME, VERSION = open("NAME").read().split()
REQS = open("REQUIRES").read().split("\n") if os.path.exists("REQUIRES") else []

def _metadata():
    m = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (NAME, VERSION)
    return m + "".join("Requires-Dist: %s\n" % r for r in REQS if r)

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = "%s-%s.dist-info" % (NAME, VERSION)
    os.makedirs(os.path.join(metadata_directory, d))
    with open(os.path.join(metadata_directory, d, "METADATA"), "w") as f:
        f.write(_metadata())
    return d

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    di = "%s-%s.dist-info" % (NAME, VERSION)
    files = {di + "/METADATA": _metadata().encode(),
             di + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: test-backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    for f in sorted(os.listdir(NAME)):
        if f.endswith(".py"):
            files[NAME + "/" + f] = open(os.path.join(NAME, f), "rb").read()
    os.makedirs("build-output-in-place", exist_ok=True)  # as setuptools' build/ does
    record = ""
    for n in sorted(files):
        h = base64.urlsafe_b64encode(hashlib.sha256(files[n]).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (n, h, len(files[n]))
    files[di + "/RECORD"] = (record + di + "/RECORD,,\n").encode()
    name = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for n in sorted(files):
            z.writestr(zipfile.ZipInfo(n, (2020, 1, 1, 0, 0, 0)), files[n])
    return name
`

const inTreeBackend = "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n"

// writePurePkg writes a local package folder: NAME/__init__.py says VALUE.
func writePurePkg(t testing.TB, dir, name, value string, requires ...string) {
	t.Helper()
	files := map[string]string{
		"pyproject.toml":      inTreeBackend,
		"backend.py":          pureBackend,
		"NAME":                name + " 1.0\n",
		name + "/__init__.py": "VALUE = " + value + "\n",
		"REQUIRES":            strings.Join(requires, "\n"),
	}
	for n, c := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeCompiledPkg writes a local package folder with a C extension NAME.
func writeCompiledPkg(t testing.TB, dir, name string) {
	t.Helper()
	files := map[string]string{"pyproject.toml": inTreeBackend, "backend.py": extBackend, "NAME": name + " 1.0\n", name + ".c": extSource(name, false)}
	os.MkdirAll(dir, 0o755)
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeHash hashes every path and file under dir, to prove a build left it alone.
func treeHash(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		l := rel
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			s := sha256.Sum256(b)
			l += " " + hex.EncodeToString(s[:])
		}
		lines = append(lines, l)
		return nil
	})
	sort.Strings(lines)
	s := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(s[:])
}

func TestParseLocalRequirements(t *testing.T) {
	dir := t.TempDir()
	writePurePkg(t, filepath.Join(dir, "localpkg"), "localpkg", "1")
	writePurePkg(t, filepath.Join(dir, "libs", "other"), "other", "2")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "more.txt"), []byte("-e ../libs/other\n-r ../requirements.txt\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "cons.txt"), []byte("six==1.16.0\n"), 0o644)
	main := filepath.Join(dir, "requirements.txt")
	os.WriteFile(main, []byte("./localpkg[fast]\n-r sub/more.txt\n-c sub/cons.txt\nsix\n"), 0o644)
	r, err := ParseRequirements(main, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ls := r.Locals()
	if len(ls) != 2 || ls[0].Local != filepath.Join(dir, "localpkg") || ls[0].LocalExtras != "[fast]" || ls[0].Editable ||
		ls[1].Local != filepath.Join(dir, "libs", "other") || !ls[1].Editable || ls[1].File != filepath.Join(dir, "sub", "more.txt") {
		t.Errorf("locals: %+v", ls)
	}
	// The include cycle (more.txt includes requirements.txt) is read once; every
	// file is an input.
	if len(r.Files) != 3 || len(r.Reqs) != 3 || len(r.Constraints) != 1 {
		t.Errorf("files %v, %d requirements, %d constraints", r.Files, len(r.Reqs), len(r.Constraints))
	}
	out := filepath.Join(t.TempDir(), "r.txt")
	if _, err := r.WriteWith(out, filepath.Join(filepath.Dir(out), "c.txt"), func(l Line) string { return "/w/" + filepath.Base(l.Local) + l.LocalExtras }); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, out), "/w/localpkg[fast]\n/w/other\nsix\n-c c.txt\n"; got != want {
		t.Errorf("WriteWith:\n%s\nwant:\n%s", got, want)
	}
	for _, tc := range []struct{ line, want string }{
		{"./missing\n", "requirements.txt:1: local package ./missing: stat " + filepath.Join(dir, "missing") + ": no such file or directory (a path is relative to the requirements file that names it)"},
		{"./sub\n", "requirements.txt:1: local package ./sub: " + filepath.Join(dir, "sub") + " has neither pyproject.toml nor setup.py"},
		{"-e git+https://example.com/x.git#egg=x\n", "requirements.txt:1: only a local folder can be editable here (-e git+https://example.com/x.git#egg=x)"},
		{"./sub/more.txt\n", "is neither a package folder nor an sdist or wheel file"},
	} {
		os.WriteFile(main, []byte(tc.line), 0o644)
		if _, err := ParseRequirements(main, os.Getenv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.line, err, tc.want)
		}
	}
}

// localProject is a config folder whose requirements name local packages: a
// pure one beside the file, an editable one through a -r include in a subfolder.
func localProject(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(layerToml(`"python3.12"`, extra)), 0o644)
	os.MkdirAll(filepath.Join(dir, "wheels"), 0o755)
	writeFixtures(t, filepath.Join(dir, "wheels"), false)
	writePurePkg(t, filepath.Join(dir, "localpkg"), "localpkg", "1", "helperpkg==1.0")
	writePurePkg(t, filepath.Join(dir, "libs", "other"), "other", "2")
	os.MkdirAll(filepath.Join(dir, "reqs"), 0o755)
	os.WriteFile(filepath.Join(dir, "reqs", "more.txt"), []byte("-e ../libs/other\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte(hermetic+"./localpkg\n-r reqs/more.txt\n"), 0o644)
	return dir
}

// Pure local packages build on the host (no container step) from copies: the
// user's folders are unchanged, the packages and their dependencies are in the
// layer, the -e line installs normally with a warning.
func TestBuildLocalPurePackages(t *testing.T) {
	needHostPip(t)
	dir := localProject(t, "")
	before := treeHash(t, dir)
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	fake := &engine.Fake{}
	r := runBuild(t, New(), cfg, lambda.ARM64, fake)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	if len(fake.Steps()) != 0 {
		t.Errorf("pure local packages ran %d container steps", len(fake.Steps()))
	}
	sp := filepath.Join(r.stage, "python/lib/python3.12/site-packages")
	for _, f := range []string{"localpkg/__init__.py", "other/__init__.py", "helperpkg/__init__.py", "localpkg-1.0.dist-info/RECORD"} {
		if _, err := os.Stat(filepath.Join(sp, f)); err != nil {
			t.Errorf("%s missing: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(sp, "localpkg-1.0.dist-info/direct_url.json")); err == nil {
		t.Error("direct_url.json (a host path) shipped")
	}
	checkRecords(t, sp)
	if !strings.Contains(r.log, "warning: more.txt:1: -e ../libs/other is installed as a regular package") {
		t.Errorf("no warning for -e:\n%s", r.log)
	}
	if after := treeHash(t, dir); after != before {
		t.Error("the build wrote into the project folder")
	}
}

// build = "host" refuses a local package that compiles, naming it.
func TestBuildLocalCompiledHostMode(t *testing.T) {
	needHostPip(t)
	if _, err := exec.LookPath("cc"); err != nil {
		testneed.Missing(t, "needs a C compiler")
	}
	dir := localProject(t, "build = \"host\"\n")
	writeCompiledPkg(t, filepath.Join(dir, "cpkg"), "cpkg")
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte(hermetic+"./cpkg\n"), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	r := runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{})
	want := `build = "host" never compiles, but the local package ./cpkg (requirements.txt:2) builds a platform wheel (compiled code)`
	if r.err == nil || !strings.Contains(r.err.Error(), want) {
		t.Errorf("error: %v\nwant: %s", r.err, want)
	}
}

// A compiled local package ("auto") is built in the build container (played by
// the fake engine on the host) from a copy at the fixed build folder, and loads.
// The same with build = "container", where pip installs it in the image.
func TestBuildLocalCompiledInContainer(t *testing.T) {
	needFakeCompile(t)
	for _, mode := range []string{"auto", "container"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(layerToml(`"python3.11"`, "build = \""+mode+"\"\n")), 0o644)
		os.MkdirAll(filepath.Join(dir, "wheels"), 0o755)
		writeFixtures(t, filepath.Join(dir, "wheels"), false)
		writeCompiledPkg(t, filepath.Join(dir, "native", "cpkg"), "cpkg")
		os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte(hermetic+"purepkg==1.0\n./native/cpkg\n"), 0o644)
		cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
		if err != nil {
			t.Fatal(err)
		}
		before := treeHash(t, dir)
		fake := &engine.Fake{Exec: true}
		r := runBuild(t, New(), cfg, lambda.X86_64, fake)
		fake.Close()
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", mode, r.err, r.log)
		}
		steps := fake.Steps()
		if len(steps) != 1 {
			t.Fatalf("%s: %d container steps, want 1", mode, len(steps))
		}
		mounted := false
		for _, m := range steps[0].Mounts {
			mounted = mounted || m.Target == ctrLocal
		}
		if !mounted {
			t.Errorf("%s: the local package is not mounted: %+v", mode, steps[0].Mounts)
		}
		sp := filepath.Join(r.stage, "python/lib/python3.11/site-packages")
		checkRecords(t, sp)
		cmd := exec.Command(hostPython("3.11"), "-c", "import cpkg, purepkg; print(cpkg.add(2, 3), purepkg.VALUE)")
		cmd.Env = append(os.Environ(), "PYTHONPATH="+sp, "PYTHONDONTWRITEBYTECODE=1")
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "5 42" {
			t.Errorf("%s: import: %v\n%s", mode, err, out)
		}
		if treeHash(t, dir) != before {
			t.Errorf("%s: the build wrote into the project folder", mode)
		}
	}
}

// The local packages' files are in the cache key: editing one rebuilds the layer
// (not "(cached)") with the new content; an unchanged project is cached. Real
// pipeline, persistent cache, host only.
func TestLocalPackageEditsChangeTheKey(t *testing.T) {
	needHostPip(t)
	dir := localProject(t, "")
	cch, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	run := func() *pipeline.Result {
		t.Helper()
		cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
		if err != nil {
			t.Fatal(err)
		}
		items, err := plan.Make(cfg, nil, []lambda.Arch{lambda.X86_64}, []builders.Builder{New()})
		if err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		res, err := pipeline.Run(context.Background(), pipeline.Options{Config: cfg, Items: items, OutDir: out, Cache: cch,
			Engine: &engine.Fake{}, Epoch: time.Unix(315532800, 0), Log: &log})
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		return res[0]
	}
	first := run()
	if again := run(); !again.Cached || again.CodeSha256 != first.CodeSha256 {
		t.Errorf("unchanged project: cached=%v %s %s", again.Cached, again.CodeSha256, first.CodeSha256)
	}
	os.WriteFile(filepath.Join(dir, "libs", "other", "other", "__init__.py"), []byte("VALUE = 3\n"), 0o644)
	edited := run()
	if edited.Cached || edited.CodeSha256 == first.CodeSha256 {
		t.Errorf("after an edit under libs/other: cached=%v, same sum %v", edited.Cached, edited.CodeSha256 == first.CodeSha256)
	}
}

// plan names the local packages and how they are built.
func TestStepsNameLocalPackages(t *testing.T) {
	dir := localProject(t, "")
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Layers[0]
	steps := strings.Join(New().Steps(l, builders.Target{Arch: lambda.X86_64, Runtimes: l.Runtimes}), "\n")
	if !strings.Contains(steps, "local packages localpkg, libs/other: a wheel of each built from a copy on the host") {
		t.Errorf("steps:\n%s", steps)
	}
	in, err := New().Inputs(l, builders.Target{Arch: lambda.X86_64, Runtimes: l.Runtimes})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range in {
		names = append(names, i.Name)
	}
	for _, want := range []string{"file:requirements.txt", "file:reqs/more.txt", "local:localpkg", "local:libs/other"} {
		if !strings.Contains(strings.Join(names, "\n")+"\n", want+"\n") {
			t.Errorf("inputs lack %s: %v", want, names)
		}
	}
}
