package python

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/plan"
)

// These tests run the builder for real on the host (pip with --no-index and
// fixtures made by the tests) and play container steps with engine.Fake. They need
// python3 with pip on the host, and skip without it.

func needHostPip(t *testing.T) {
	t.Helper()
	if err := exec.Command("python3", "-c", "import pip").Run(); err != nil {
		testneed.Missing(t, "needs python3 with pip on the host")
	}
}

// project writes a config folder: layerpack.toml, requirements.txt and a wheels/
// folder of fixtures.
func project(t *testing.T, toml, reqs string, sdist bool) *config.File {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte(reqs), 0o644); err != nil {
		t.Fatal(err)
	}
	wheels := filepath.Join(dir, "wheels")
	os.MkdirAll(wheels, 0o755)
	writeFixtures(t, wheels, sdist)
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const hermetic = "--no-index\n"

// layerToml is a layer config; bytecode is off unless extra sets compile (it is
// compiled in a build container, which most of these tests do not play).
func layerToml(runtimes, extra string) string {
	if !strings.Contains(extra, "compile =") {
		extra = "compile = false\n" + extra
	}
	return "[layer.deps]\ncompatible_runtimes = [" + runtimes + "]\n[layer.deps.python]\nrequirements = \"requirements.txt\"\nfind_links = [\"wheels\"]\n" + extra
}

type result struct {
	stage string
	log   string
	err   error
}

func runBuild(t *testing.T, b *Builder, cfg *config.File, arch lambda.Arch, eng engine.Engine) result {
	t.Helper()
	l := cfg.Layers[0]
	work := t.TempDir()
	stage := filepath.Join(work, "stage")
	os.MkdirAll(stage, 0o755)
	var log bytes.Buffer
	tg := builders.Target{Arch: arch, Runtimes: l.Runtimes}
	var images builders.Images
	for _, need := range b.Engine(l, tg).Images {
		ref, err := plan.ChooseImage(cfg, l, need.Runtime, need.Arch)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, builders.Image{ImageNeed: need, Ref: ref})
	}
	j := &builders.Job{Layer: l, Target: tg, Images: images,
		Stage: stage, Work: filepath.Join(work, "python"), Engine: eng, SourceDateEpoch: 1700000000, Log: &log}
	os.MkdirAll(j.Work, 0o755)
	err := b.Build(context.Background(), j)
	return result{stage: stage, log: log.String(), err: err}
}

// listTree returns "path sha256-prefix" lines for every file, sorted.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel)+" "+hex.EncodeToString(sum[:4]))
		return nil
	})
	sort.Strings(out)
	return out
}

func names(lines []string) string {
	var n []string
	for _, l := range lines {
		n = append(n, strings.Fields(l)[0])
	}
	return strings.Join(n, "\n")
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuildWheelsForEachArch(t *testing.T) {
	needHostPip(t)
	cfg := project(t, layerToml(`"python3.12"`, ""), hermetic+"purepkg==1.0\nplatpkg==2.0\n", false)
	for _, arch := range lambda.Arches {
		t.Run(string(arch), func(t *testing.T) {
			fake := &engine.Fake{}
			r := runBuild(t, New(), cfg, arch, fake)
			if r.err != nil {
				t.Fatalf("%v\n%s", r.err, r.log)
			}
			if n := len(fake.Steps()); n != 0 {
				t.Errorf("wheels only, but %d container steps ran", n)
			}
			sp := filepath.Join(r.stage, "python/lib/python3.12/site-packages")
			// The platform wheel of the layer's CPU, not the host's.
			if got := read(t, filepath.Join(sp, "platpkg/__init__.py")); !strings.Contains(got, arch.GNU()) {
				t.Errorf("platpkg is %q, want the %s wheel", got, arch.GNU())
			}
			// Markers are evaluated for the target CPU: armonly only on arm64.
			_, err := os.Stat(filepath.Join(sp, "armonly.py"))
			if (err == nil) != (arch == lambda.ARM64) {
				t.Errorf("armonly.py present = %v on %s (marker platform_machine == 'aarch64')", err == nil, arch)
			}
			want := []string{
				"helperpkg-1.0.dist-info/METADATA", "helperpkg-1.0.dist-info/RECORD", "helperpkg-1.0.dist-info/WHEEL",
				"helperpkg/__init__.py", "bin/helper-tool",
				"purepkg-1.0.dist-info/licenses/LICENSE", "purepkg/__init__.pyi", "purepkg/tests/test_x.py",
			}
			got := names(listTree(t, sp))
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("%s missing from the tree:\n%s", w, got)
				}
			}
			for _, bad := range []string{"INSTALLER", "REQUESTED", "direct_url.json", ".pyc", "__pycache__"} {
				if strings.Contains(got, bad) {
					t.Errorf("%s left in the tree:\n%s", bad, got)
				}
			}
			if s := read(t, filepath.Join(sp, "bin/helper-tool")); !strings.HasPrefix(s, Shebang+"\n") {
				t.Errorf("bin/helper-tool starts %q, want %q", strings.SplitN(s, "\n", 2)[0], Shebang)
			}
			checkRecords(t, sp)
		})
	}
}

// checkRecords checks that every RECORD lists exactly the files of its
// distribution that exist, with the right hashes.
func checkRecords(t *testing.T, root string) {
	t.Helper()
	dists, err := ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}
	owned := map[string]bool{}
	for _, d := range dists {
		for _, f := range d.Files {
			owned[f.Path] = true
			if f.Path == d.DistInfo+"/RECORD" {
				continue
			}
			h, _, err := fileHash(filepath.Join(root, f.Path))
			if err != nil {
				t.Errorf("%s lists %s: %v", d.DistInfo, f.Path, err)
			} else if h != f.Hash {
				t.Errorf("%s: %s has hash %s, RECORD says %s", d.DistInfo, f.Path, h, f.Hash)
			}
		}
		rec := read(t, filepath.Join(root, d.DistInfo, "RECORD"))
		if !strings.HasSuffix(rec, d.DistInfo+"/RECORD,,\n") {
			t.Errorf("%s/RECORD does not end with its own line:\n%s", d.DistInfo, rec)
		}
	}
	filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if de.IsDir() {
			if p != root && filepath.Base(p) == "lib" && filepath.Base(root) == "python" {
				return filepath.SkipDir // per-version folders, checked on their own
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if !owned[filepath.ToSlash(rel)] {
			t.Errorf("%s is in the tree but in no RECORD", rel)
		}
		return nil
	})
}

func TestBuildCompilesSdistInContainer(t *testing.T) { testSdist(t, "") }

// With installer = "uv", a requirement without a wheel goes the same way (uv's
// answer is recognised, the sdist path uses pip).
func TestBuildCompilesSdistInContainerUV(t *testing.T) {
	testneed.Tool(t, "uv")
	testSdist(t, "installer = \"uv\"\n")
}

func testSdist(t *testing.T, extra string) {
	needHostPip(t)
	if hostPython("3.11") == "" {
		testneed.Missing(t, "needs python3.11 on the host (the fake engine runs container steps on the host)")
	}
	if _, err := exec.LookPath("cc"); err != nil {
		testneed.Missing(t, "needs a C compiler")
	}
	cfg := project(t, layerToml(`"python3.11"`, extra), hermetic+"purepkg==1.0\ncext==1.0\n", true)
	fake := &engine.Fake{Exec: true}
	defer fake.Close()
	r := runBuild(t, New(), cfg, lambda.X86_64, fake)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	steps := fake.Steps()
	if len(steps) != 1 {
		t.Fatalf("want one container step (pip wheel of the sdist), got %d", len(steps))
	}
	s := steps[0]
	if s.Arch != lambda.X86_64 || !strings.Contains(s.Name, "pip wheel cext==1.0") || s.Output != ctrOut {
		t.Errorf("step = %+v", s)
	}
	if s.Image != "docker-image://public.ecr.aws/sam/build-python3.11:latest-x86_64" {
		t.Errorf("image %q, want the SAM build image of the runtime", s.Image)
	}
	if !strings.Contains(s.Env["LP_PIP_ARGS"], "'--no-index'") || !strings.Contains(s.Env["LP_PIP_ARGS"], ctrFindLinks) {
		t.Errorf("the container does not get the index settings: %q", s.Env["LP_PIP_ARGS"])
	}
	if !strings.Contains(r.log, "compiling cext==1.0 in the build container") {
		t.Errorf("log does not say what is compiled:\n%s", r.log)
	}
	sp := filepath.Join(r.stage, "python/lib/python3.11/site-packages")
	got := names(listTree(t, sp))
	if !strings.Contains(got, "cext.cpython-311-x86_64-linux-gnu.so") || !strings.Contains(got, "purepkg/__init__.py") {
		t.Errorf("tree:\n%s", got)
	}
	checkRecords(t, sp)
	// It loads, with the host's python3.11 standing in for the runtime.
	cmd := exec.Command(hostPython("3.11"), "-c", "import cext, purepkg; print(cext.add(2, 3), purepkg.VALUE)")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+sp, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "5 42" {
		t.Errorf("import: %v\n%s", err, out)
	}
}

func TestBuildHostModeNamesWhatNeedsCompiling(t *testing.T) {
	needHostPip(t)
	cfg := project(t, layerToml(`"python3.12"`, "build = \"host\"\n"), hermetic+"purepkg==1.0\ncext==1.0\n", true)
	fake := &engine.Fake{}
	r := runBuild(t, New(), cfg, lambda.ARM64, fake)
	if r.err == nil {
		t.Fatal("build = host with an sdist-only requirement succeeded")
	}
	want := `build = "host" never compiles, but cext==1.0 has no wheel for CPython 3.12 on aarch64 (python3.12) (platforms manylinux_2_34_aarch64 ... manylinux2014_aarch64, ABI cp312, abi3 or pure) and must be compiled from source`
	if !strings.Contains(r.err.Error(), want) {
		t.Errorf("error:\n%v\nwant it to contain:\n%s", r.err, want)
	}
	if len(fake.Steps()) != 0 {
		t.Error("build = host ran a container step")
	}
}

func TestBuildExcludePackages(t *testing.T) {
	needHostPip(t)
	for _, tc := range []struct {
		reqs, exclude string
		gone, kept    []string
	}{
		// purepkg goes, and helperpkg, which only purepkg needs.
		{"purepkg==1.0\nplatpkg==2.0\n", `["purepkg"]`, []string{"purepkg", "helperpkg"}, []string{"platpkg"}},
		// helperpkg is asked for directly: it stays.
		{"purepkg==1.0\nhelperpkg==1.0\n", `["purepkg"]`, []string{"purepkg"}, []string{"helperpkg"}},
		// Excluding a dependency removes it even though a kept package needs it
		// (the runtime provides it).
		{"purepkg==1.0\n", `["HelperPkg"]`, []string{"helperpkg"}, []string{"purepkg"}},
	} {
		cfg := project(t, layerToml(`"python3.12"`, "exclude_packages = "+tc.exclude+"\n"), hermetic+tc.reqs, false)
		r := runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{})
		if r.err != nil {
			t.Fatalf("%v\n%s", r.err, r.log)
		}
		sp := filepath.Join(r.stage, "python/lib/python3.12/site-packages")
		for _, g := range tc.gone {
			if m, _ := filepath.Glob(filepath.Join(sp, g+"*")); len(m) > 0 {
				t.Errorf("%s / exclude %s: %v still there", tc.reqs, tc.exclude, m)
			}
		}
		for _, k := range tc.kept {
			if m, _ := filepath.Glob(filepath.Join(sp, k+"*")); len(m) == 0 {
				t.Errorf("%s / exclude %s: %s removed", tc.reqs, tc.exclude, k)
			}
		}
		if !strings.Contains(r.log, "left out") {
			t.Errorf("no log line saying what was left out:\n%s", r.log)
		}
		checkRecords(t, sp)
	}
}

func TestBuildPruneAndCompile(t *testing.T) {
	needHostPip(t)
	if hostPython("3.11") == "" {
		testneed.Missing(t, "needs python3.11 on the host")
	}
	cfg := project(t, layerToml(`"python3.11"`, "prune = \"safe\"\nprune_stubs = true\ncompile = true\n"), hermetic+"purepkg==1.0\n", false)
	r := runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{Exec: true})
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	sp := filepath.Join(r.stage, "python/lib/python3.11/site-packages")
	got := names(listTree(t, sp))
	if strings.Contains(got, ".pyi") {
		t.Errorf("prune_stubs left .pyi files:\n%s", got)
	}
	// purepkg is not on the tests allowlist: its tests stay.
	if !strings.Contains(got, "purepkg/tests/test_x.py") {
		t.Errorf("tests of a package outside the allowlist removed:\n%s", got)
	}
	if !strings.Contains(got, "purepkg/__pycache__/__init__.cpython-311.pyc") {
		t.Errorf("compile = true wrote no .pyc:\n%s", got)
	}
	if !strings.Contains(r.log, "prune saved") {
		t.Errorf("no prune log line:\n%s", r.log)
	}
	pyc, _ := os.ReadFile(filepath.Join(sp, "purepkg/__pycache__/__init__.cpython-311.pyc"))
	// Flags word after the magic: 0b11 = checked hash-based pyc.
	if len(pyc) < 8 || pyc[4] != 3 {
		t.Errorf("pyc is not a checked hash-based pyc (flags %v)", pyc[4:8])
	}
	if !bytes.Contains(pyc, []byte("/opt/python/lib/python3.11/site-packages/purepkg/__init__.py")) {
		t.Error("pyc does not name its source under /opt")
	}
	checkRecords(t, sp)
	// The same bytes twice.
	r2 := runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{Exec: true})
	if r2.err != nil {
		t.Fatal(r2.err)
	}
	if a, b := strings.Join(listTree(t, r.stage), "\n"), strings.Join(listTree(t, r2.stage), "\n"); a != b {
		t.Errorf("two builds differ:\n%s\n---\n%s", a, b)
	}
}

func TestBuildSeveralPythonVersions(t *testing.T) {
	needHostPip(t)
	cfgText := layerToml(`"python3.11", "python3.12"`, "")
	cfg := project(t, cfgText, hermetic+"purepkg==1.0\nabipkg==1.0\n", false)
	wheels := filepath.Join(cfg.Dir, "wheels")
	for _, v := range []string{"311", "312"} {
		writeWheel(t, wheels, wheelSpec{Name: "abipkg", Version: "1.0", Tag: "cp" + v + "-cp" + v + "-manylinux2014_x86_64",
			Files: map[string]string{"abipkg/__init__.py": "BUILT_FOR = 'cp" + v + "'\n"}})
	}
	r := runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{})
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	got := names(listTree(t, r.stage))
	for _, want := range []string{
		"python/purepkg/__init__.py", "python/helperpkg/__init__.py", "python/bin/helper-tool",
		"python/lib/python3.11/site-packages/abipkg/__init__.py",
		"python/lib/python3.12/site-packages/abipkg/__init__.py",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("%s missing:\n%s", want, got)
		}
	}
	if strings.Contains(got, "python/lib/python3.11/site-packages/purepkg") {
		t.Errorf("a pure package was installed per version:\n%s", got)
	}
	if s := read(t, filepath.Join(r.stage, "python/lib/python3.12/site-packages/abipkg/__init__.py")); !strings.Contains(s, "cp312") {
		t.Errorf("3.12 tree has the %q build", s)
	}
	checkRecords(t, filepath.Join(r.stage, "python"))
	checkRecords(t, filepath.Join(r.stage, "python/lib/python3.11/site-packages"))
	checkRecords(t, filepath.Join(r.stage, "python/lib/python3.12/site-packages"))
	// flat cannot hold two builds of abipkg.
	cfg2 := project(t, layerToml(`"python3.11", "python3.12"`, "layout = \"flat\"\n"), hermetic+"purepkg==1.0\nabipkg==1.0\n", false)
	for _, v := range []string{"311", "312"} {
		writeWheel(t, filepath.Join(cfg2.Dir, "wheels"), wheelSpec{Name: "abipkg", Version: "1.0", Tag: "cp" + v + "-cp" + v + "-manylinux2014_x86_64",
			Files: map[string]string{"abipkg/__init__.py": "BUILT_FOR = 'cp" + v + "'\n"}})
	}
	r = runBuild(t, New(), cfg2, lambda.X86_64, &engine.Fake{})
	want := `layout = "flat" puts every package in python/, but Python 3.11 and 3.12 need different installs of abipkg; use layout = "site-packages" (one folder per version)`
	if r.err == nil || !strings.Contains(r.err.Error(), want) {
		t.Errorf("flat with two builds: %v, want %s", r.err, want)
	}
}

func TestBuildHashesAndUnpinnedWarning(t *testing.T) {
	needHostPip(t)
	cfg := project(t, layerToml(`"python3.12"`, ""), hermetic+"purepkg\n", false)
	r := runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{})
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	want := "warning: requirements.txt does not pin helperpkg, purepkg to one version (name==X.Y): the layer is not reproducible over time"
	if !strings.Contains(r.log, want) {
		t.Errorf("log:\n%s\nwant: %s", r.log, want)
	}
	// A wrong hash fails the build: hashes are enforced.
	cfg = project(t, layerToml(`"python3.12"`, ""), hermetic+"purepkg==1.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\nhelperpkg==1.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n", false)
	r = runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{})
	if r.err == nil || !strings.Contains(r.err.Error(), "HASHES") && !strings.Contains(r.err.Error(), "hash") {
		t.Errorf("a wrong --hash did not fail the build: %v", r.err)
	}
	// The right hashes pass, with --require-hashes, and no unpinned warning.
	var lines []string
	for _, n := range []string{"purepkg", "helperpkg"} {
		whl, _ := filepath.Glob(filepath.Join(cfg.Dir, "wheels", n+"-1.0-*.whl"))
		b, _ := os.ReadFile(whl[0])
		sum := sha256.Sum256(b)
		lines = append(lines, n+"==1.0 \\\n    --hash=sha256:"+hex.EncodeToString(sum[:]))
	}
	os.WriteFile(filepath.Join(cfg.Dir, "requirements.txt"), []byte(hermetic+strings.Join(lines, "\n")+"\n"), 0o644)
	r = runBuild(t, New(), cfg, lambda.X86_64, &engine.Fake{})
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	if strings.Contains(r.log, "not reproducible") {
		t.Errorf("hash-pinned requirements warned:\n%s", r.log)
	}
}

func TestCredentialsNeverShown(t *testing.T) {
	toml := layerToml(`"python3.12"`, "index_url = \"https://alice:s3cretpw@pypi.example.invalid/simple\"\nextra_index_urls = [\"https://${LP_TEST_TOKEN}@extra.example.invalid/simple\", \"https://public.example.invalid/simple\"]\n")
	cfg := project(t, toml, "purepkg==1.0\n", false)
	b := &Builder{Getenv: func(k string) string {
		if k == "LP_TEST_TOKEN" {
			return "tok3nvalue"
		}
		return os.Getenv(k)
	}}
	l := cfg.Layers[0]
	tg := builders.Target{Arch: lambda.ARM64, Runtimes: l.Runtimes}
	steps := strings.Join(b.Steps(l, tg), "\n")
	if strings.Contains(steps, "s3cret") || strings.Contains(steps, "alice") || !strings.Contains(steps, "https://***@pypi.example.invalid/simple") {
		t.Errorf("plan steps:\n%s", steps)
	}
	ins, err := b.Inputs(l, tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		for _, s := range []string{"s3cret", "tok3n", "alice"} {
			if strings.Contains(in.Name+in.Value, s) {
				t.Errorf("input %s = %q shows a credential", in.Name, in.Value)
			}
		}
	}
	// Container steps get the credentials as secrets only.
	work := t.TempDir()
	jb := &job{b: b, j: &builders.Job{Layer: l, Work: work}, p: l.Python, idx: b.index(l.Python, &source{reqs: &Requirements{}})}
	ci, err := jb.containerIndex()
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(ci.args, " ")
	if strings.Contains(args, "s3cret") || strings.Contains(args, "tok3n") || !strings.Contains(args, "--extra-index-url https://public.example.invalid/simple") {
		t.Errorf("container args: %s", args)
	}
	var envs []string
	for _, s := range ci.secrets {
		envs = append(envs, s.Env)
	}
	if strings.Join(envs, ",") != "PIP_INDEX_URL,PIP_EXTRA_INDEX_URL" {
		t.Errorf("secrets: %v", envs)
	}
	// Logs are masked.
	var buf bytes.Buffer
	w := newMaskWriter(&buf, jb.idx.Secrets())
	w.Write([]byte("Looking in indexes: https://alice:s3cretpw@pypi.example.invalid/simple, https://tok3nvalue@extra.example.invalid/simple; token tok3nvalue\n"))
	if got := buf.String(); strings.Contains(got, "s3cret") || strings.Contains(got, "tok3n") {
		t.Errorf("log: %s", got)
	}
}

func TestContainerModeUsesEngine(t *testing.T) {
	cfg := project(t, layerToml(`"python3.12"`, "build = \"container\"\n"), "--index-url https://pypi.example.invalid/simple\npurepkg==1.0\n-c constraints.txt\n", false)
	os.WriteFile(filepath.Join(cfg.Dir, "constraints.txt"), []byte("helperpkg==1.0\n"), 0o644)
	var reqFile, consFile string
	fake := &engine.Fake{Hook: func(_ context.Context, s *engine.Step) error {
		for _, m := range s.Mounts {
			if m.Target == ctrReq {
				reqFile = read(t, filepath.Join(m.Source, "requirements.txt"))
				consFile = read(t, filepath.Join(m.Source, "constraints.txt"))
			}
		}
		// Play pip: a tree with one distribution.
		tree := filepath.Join(s.Dest, "tree")
		os.MkdirAll(filepath.Join(tree, "purepkg-1.0.dist-info"), 0o755)
		os.MkdirAll(filepath.Join(tree, "purepkg"), 0o755)
		os.WriteFile(filepath.Join(tree, "purepkg/__init__.py"), []byte("X = 1\n"), 0o644)
		os.WriteFile(filepath.Join(tree, "purepkg-1.0.dist-info/METADATA"), []byte("Metadata-Version: 2.1\nName: purepkg\nVersion: 1.0\n"), 0o644)
		os.WriteFile(filepath.Join(tree, "purepkg-1.0.dist-info/INSTALLER"), []byte("pip\n"), 0o644)
		os.WriteFile(filepath.Join(tree, "purepkg-1.0.dist-info/RECORD"), []byte("purepkg/__init__.py,,\npurepkg-1.0.dist-info/METADATA,,\npurepkg-1.0.dist-info/INSTALLER,,\npurepkg-1.0.dist-info/RECORD,,\n"), 0o644)
		return nil
	}}
	r := runBuild(t, New(), cfg, lambda.ARM64, fake)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	steps := fake.Steps()
	if len(steps) != 1 || steps[0].Arch != lambda.ARM64 || steps[0].Script != containerInstallScript || steps[0].Env["LP_PYVER"] != "3.12" {
		t.Fatalf("steps: %+v", steps)
	}
	if strings.Contains(reqFile, "--index-url") || !strings.Contains(reqFile, "purepkg==1.0\n-c constraints.txt") || consFile != "helperpkg==1.0\n" {
		t.Errorf("requirements given to the container:\n%s---\n%s", reqFile, consFile)
	}
	if !strings.Contains(steps[0].Env["LP_PIP_ARGS"], "'--index-url' 'https://pypi.example.invalid/simple'") {
		t.Errorf("LP_PIP_ARGS = %s", steps[0].Env["LP_PIP_ARGS"])
	}
	sp := filepath.Join(r.stage, "python/lib/python3.12/site-packages")
	checkRecords(t, sp)
	if _, err := os.Stat(filepath.Join(sp, "purepkg-1.0.dist-info/INSTALLER")); err == nil {
		t.Error("INSTALLER kept")
	}
}

func TestUVInstaller(t *testing.T) {
	needHostPip(t)
	cfg := project(t, layerToml(`"python3.12"`, "installer = \"uv\"\n"), hermetic+"purepkg==1.0\nplatpkg==2.0\n", false)
	if _, err := exec.LookPath("uv"); err != nil {
		// Falls back to pip, saying so.
		r := runBuild(t, New(), cfg, lambda.ARM64, &engine.Fake{})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !strings.Contains(r.log, `installer = "uv" but uv is not on PATH: using pip`) {
			t.Errorf("log:\n%s", r.log)
		}
		testneed.Missing(t, "uv is not on PATH: only the fallback to pip was tested")
	}
	r := runBuild(t, New(), cfg, lambda.ARM64, &engine.Fake{})
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	sp := filepath.Join(r.stage, "python/lib/python3.12/site-packages")
	if got := read(t, filepath.Join(sp, "platpkg/__init__.py")); !strings.Contains(got, "aarch64") {
		t.Errorf("uv picked %q", got)
	}
	if _, err := os.Stat(filepath.Join(sp, "armonly.py")); err != nil {
		t.Error("uv did not evaluate platform_machine for the target")
	}
	checkRecords(t, sp)
	// pip and uv give the same tree (INSTALLER, which differs, is removed).
	cfgPip := project(t, layerToml(`"python3.12"`, ""), hermetic+"purepkg==1.0\nplatpkg==2.0\n", false)
	rp := runBuild(t, New(), cfgPip, lambda.ARM64, &engine.Fake{})
	if rp.err != nil {
		t.Fatal(rp.err)
	}
	if a, b := strings.Join(listTree(t, r.stage), "\n"), strings.Join(listTree(t, rp.stage), "\n"); a != b {
		t.Errorf("uv and pip trees differ:\nuv:\n%s\npip:\n%s", a, b)
	}
}

// The host's pip configuration (pip.conf, PIP_*) reaches container steps: index
// URLs as pip options, those with credentials only as secret environment values,
// local find-links folders as mounts. cert = and client-cert = name host files and
// are not passed (the engine's PIP_CERT points at the mounted host CA bundle).
func TestHostPipConfigReachesContainer(t *testing.T) {
	cfg := project(t, "[layer.deps]\ncompatible_runtimes = [\"python3.12\"]\n[layer.deps.python]\nrequirements = \"requirements.txt\"\nbuild = \"container\"\ncompile = false\n", "purepkg==1.0\n", false)
	home := t.TempDir()
	wheels := filepath.Join(home, ".config", "pip", "wheels")
	os.MkdirAll(wheels, 0o755)
	os.WriteFile(filepath.Join(home, ".config", "pip", "pip.conf"), []byte("[global]\n"+
		"index-url = https://alice:s3cretpw@mirror.example.invalid/simple\n"+
		"extra-index-url =\n    https://public.example.invalid/simple\n    https://tok3nvalue@private.example.invalid/simple\n"+
		"find-links = wheels https://bob:l1nkpw@links.example.invalid/wheels\n"+
		"cert = /host/only/ca.pem\nclient-cert = /host/only/client.pem\n"), 0o644)
	env := map[string]string{"HOME": home, "XDG_CONFIG_DIRS": filepath.Join(home, "none"), "PIP_CERT": "/host/only/pip-cert.pem"}
	b := &Builder{Getenv: func(k string) string { return env[k] }, Environ: func() []string {
		var out []string
		for k, v := range env {
			out = append(out, k+"="+v)
		}
		return out
	}}
	fake := &engine.Fake{Hook: func(_ context.Context, s *engine.Step) error {
		tree := filepath.Join(s.Dest, "tree")
		os.MkdirAll(filepath.Join(tree, "purepkg-1.0.dist-info"), 0o755)
		os.WriteFile(filepath.Join(tree, "purepkg.py"), []byte("X = 1\n"), 0o644)
		os.WriteFile(filepath.Join(tree, "purepkg-1.0.dist-info/METADATA"), []byte("Metadata-Version: 2.1\nName: purepkg\nVersion: 1.0\n"), 0o644)
		os.WriteFile(filepath.Join(tree, "purepkg-1.0.dist-info/RECORD"), []byte("purepkg.py,,\npurepkg-1.0.dist-info/METADATA,,\npurepkg-1.0.dist-info/RECORD,,\n"), 0o644)
		return nil
	}}
	r := runBuild(t, b, cfg, lambda.X86_64, fake)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	steps := fake.Steps()
	if len(steps) != 1 {
		t.Fatalf("steps: %+v", steps)
	}
	s := steps[0]
	args := s.Env["LP_PIP_ARGS"]
	for _, want := range []string{"'--extra-index-url' 'https://public.example.invalid/simple'", "'--find-links' '" + ctrFindLinks + "/"} {
		if !strings.Contains(args, want) {
			t.Errorf("LP_PIP_ARGS lacks %s: %s", want, args)
		}
	}
	var all []string
	for k, v := range s.Env {
		all = append(all, k+"="+v)
	}
	for _, m := range s.Mounts {
		all = append(all, m.Source+" "+m.Target)
	}
	for _, bad := range []string{"s3cretpw", "tok3nvalue", "l1nkpw", "/host/only", "PIP_CERT"} {
		if strings.Contains(strings.Join(all, "\n"), bad) {
			t.Errorf("the step's definition holds %s:\n%s", bad, strings.Join(all, "\n"))
		}
	}
	mounted := false
	for _, m := range s.Mounts {
		mounted = mounted || m.Source == wheels
	}
	if !mounted {
		t.Errorf("find-links folder %s not mounted: %+v", wheels, s.Mounts)
	}
	secrets := map[string]string{}
	for _, sec := range s.Secrets {
		v, err := os.ReadFile(sec.Source)
		if err != nil {
			t.Fatal(err)
		}
		secrets[sec.Env] = string(v)
	}
	want := map[string]string{
		"PIP_INDEX_URL":       "https://alice:s3cretpw@mirror.example.invalid/simple",
		"PIP_EXTRA_INDEX_URL": "https://tok3nvalue@private.example.invalid/simple",
		"PIP_FIND_LINKS":      "https://bob:l1nkpw@links.example.invalid/wheels",
	}
	if !reflect.DeepEqual(secrets, want) {
		t.Errorf("secrets %v, want %v", secrets, want)
	}
	if strings.Contains(r.log, "s3cretpw") || strings.Contains(r.log, "tok3nvalue") || strings.Contains(r.log, "l1nkpw") {
		t.Errorf("log:\n%s", r.log)
	}
}
