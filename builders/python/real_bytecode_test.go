package python

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
	"github.com/layerpack/layerpack/sbom"
)

// goldenBytecode pins the CodeSha256 of the default (bytecode) build of
// bytecodeFixtures for python3.11, compiled by the CPython of the Debian 12 test
// image (scripts/testenv.sh). A change means the layer's bytes changed: the
// builder, the fixtures, the zipper, or that image's CPython.
var goldenBytecode = map[lambda.Arch]string{
	lambda.X86_64: "G9rOZVrUKd5r0liuau13g8/skh9ilNTvJFX9yb32W20=",
	lambda.ARM64:  "Fa7NN3k2ESxaXa6ZAKM9aIdHDyps1WEM9ZJM+uSg3ck=",
}

func bytecodeFixtures(t *testing.T) func(string) {
	return func(dir string) {
		writeFixtures(t, dir, false)
		writeWheel(t, dir, wheelSpec{Name: "datapkg", Version: "1.0", Tag: "py3-none-any",
			Files: map[string]string{
				"datapkg/__init__.py": "from datapkg import sub\n",
				// Constants whose marshalled form could depend on the machine: a
				// frozenset (hash order), floats, a big int, non-ASCII text.
				"datapkg/sub.py": "VALUE = {'a', 'b', 'c', 'déjà'}\nF = (1.5, 1e300, -0.0)\nBIG = 2**200\ndef f(x):\n    return x in {1, 2, 'z'}\n",
				"datapkg-1.0.data/data/share/datapkg/t.py": "print('data')\n",
			},
			Scripts: map[string]string{"datatool.py": "#!python\nprint('tool')\n"},
		})
	}
}

// The default Python layer has bytecode: the same .pyc bytes in the x86_64 and
// arm64 layers (compiled once, in the image of this machine's architecture), the
// same CodeSha256 from two clean builds and as pinned, every .pyc in RECORD with
// its hash, the same SBOM as without bytecode, and Python really loads the .pyc
// from the read-only /opt.
func TestRealBytecode(t *testing.T) {
	env := lambdatest.Need(t)
	eng := env.Engine(t)
	reqs := hermetic + "purepkg==1.0\nplatpkg==2.0\ndatapkg==1.0\n"
	mk := func(extra string) string {
		return realProject(t, env, "[layer.deps]\ncompatible_runtimes = [\"python3.11\"]\n[layer.deps.python]\nrequirements = \"requirements.txt\"\nfind_links = [\"wheels\"]\n"+extra, reqs, bytecodeFixtures(t))
	}
	res, log, err := realBuild(t, eng, mk(""))
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if strings.Count(log, "bytecode for CPython 3.11") != 2 {
		t.Errorf("want a bytecode line per architecture:\n%s", log)
	}
	x86, arm := zipEntries(t, res[lambda.X86_64].Path), zipEntries(t, res[lambda.ARM64].Path)
	same := 0
	for name, b := range x86 {
		if !strings.HasSuffix(name, ".pyc") {
			continue
		}
		src := strings.Replace(path.Dir(path.Dir(name))+"/"+strings.TrimSuffix(path.Base(name), ".cpython-311.pyc")+".py", "./", "", 1)
		if !bytes.Equal(x86[src], arm[src]) {
			continue // a module that differs by CPU (platpkg)
		}
		if !bytes.Equal(b, arm[name]) {
			t.Errorf("%s differs between the x86_64 and arm64 layers", name)
		}
		same++
	}
	if same < 4 {
		t.Errorf("only %d .pyc files compared between the architectures", same)
	}
	for _, arch := range lambda.Arches {
		entries := zipEntries(t, res[arch].Path)
		if _, ok := entries["python/lib/python3.11/site-packages/share/datapkg/__pycache__/t.cpython-311.pyc"]; ok {
			t.Errorf("%s: a .data/data file was compiled", arch)
		}
		checkZipRecords(t, entries)
		// Imported from the read-only /opt, from the .pyc (python -v says
		// "X.pyc matches X.py" when it loads a valid .pyc), with nothing written.
		out := env.Run(t, arch, res[arch].Path, `export PYTHONPATH=/opt/python/lib/python3.11/site-packages
if touch /opt/x 2>/dev/null; then echo "/opt is writable"; fi
python3 -v -c 'import datapkg, purepkg, platpkg; assert datapkg.sub.f(2)' 2>&1 | grep -E "/opt/.*(matches|bytecode|mismatch|could not)" || true
echo exit-ok`, nil)
		for _, m := range []string{"datapkg/__pycache__/__init__", "datapkg/__pycache__/sub", "purepkg/__pycache__/__init__", "platpkg/__pycache__/__init__"} {
			want := "/opt/python/lib/python3.11/site-packages/" + m + ".cpython-311.pyc matches /opt/python/lib/python3.11/site-packages/" + strings.Replace(m, "__pycache__/", "", 1) + ".py"
			if !strings.Contains(out, want) {
				t.Errorf("%s: python did not load %s.cpython-311.pyc:\n%s", arch, m, out)
			}
		}
		if strings.Contains(out, "writable") || strings.Contains(out, "mismatch") || !strings.Contains(out, "exit-ok") {
			t.Errorf("%s:\n%s", arch, out)
		}
	}
	// Two clean builds in two folders, and the golden hashes.
	res2, log, err := realBuild(t, eng, mk(""))
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, log)
	}
	for _, arch := range lambda.Arches {
		got := res[arch].CodeSha256
		if got != res2[arch].CodeSha256 {
			t.Errorf("%s: two clean builds differ: %s %s", arch, got, res2[arch].CodeSha256)
		}
		if got != goldenBytecode[arch] {
			t.Errorf("%s: CodeSha256 %s, golden %s (update goldenBytecode if the change is meant)", arch, got, goldenBytecode[arch])
		}
	}
	// Without bytecode: the same distributions in the SBOM.
	off, log, err := realBuild(t, nil, mk("compile = false\n"), lambda.X86_64)
	if err != nil {
		t.Fatalf("compile = false: %v\n%s", err, log)
	}
	if a, b := sbomComponents(t, res[lambda.X86_64].Path), sbomComponents(t, off[lambda.X86_64].Path); !reflect.DeepEqual(a, b) {
		t.Errorf("the SBOM differs with bytecode:\n%v\n%v", a, b)
	}
}

// The compile step gives the same bytes in the x86_64 and the arm64 image (QEMU):
// bytecode does not depend on the CPU, which is why one machine's architecture
// compiles for both.
func TestRealBytecodeSameOnBothCPUs(t *testing.T) {
	env := lambdatest.Need(t)
	eng := env.Engine(t)
	tree := t.TempDir()
	files := map[string]string{
		"m/__init__.py": "from m.sub import *\n",
		"m/sub.py":      "S = {'x', 'y', 'zé', 3.25, 2**100}\nasync def g():\n    return [i async for i in h()]\nasync def h():\n    yield 1\nclass C:\n    __slots__ = ('a', 'b')\n    def m(self, *a, k=frozenset({1, 2}), **kw):\n        return f'{self!r:>{10}}'\n",
	}
	var list []string
	for p, c := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(tree, p)), 0o755)
		os.WriteFile(filepath.Join(tree, p), []byte(c), 0o644)
		list = append(list, p)
	}
	sort.Strings(list)
	var logBuf bytes.Buffer
	rt, _ := lambda.LookupRuntime("python3.11")
	layer := &config.Layer{Name: "deps", Runtimes: []lambda.Runtime{rt}, Python: &config.Python{}}
	got := map[lambda.Arch]map[string][]byte{}
	for _, arch := range lambda.Arches {
		var images builders.Images
		for _, a := range lambda.Arches {
			images = append(images, builders.Image{ImageNeed: builders.ImageNeed{Runtime: "python3.11", Arch: a}, Ref: env.Image(a)})
		}
		work := t.TempDir()
		jb := &job{b: New(), p: layer.Python, log: newMaskWriter(&logBuf, nil), j: &builders.Job{
			Layer: layer, Target: builders.Target{Arch: arch, Runtimes: layer.Runtimes}, Images: images,
			Work: work, Engine: eng, SourceDateEpoch: 1700000000, NoCache: true, Log: &logBuf,
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		dest := filepath.Join(work, "out")
		err := jb.compileVersion(ctx, "3.11", arch, placed{dir: tree, rel: "python/lib/python3.11/site-packages", versions: []string{"3.11"}}, list, dest)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", arch, err, logBuf.String())
		}
		got[arch] = map[string][]byte{}
		filepath.WalkDir(filepath.Join(dest, "tree"), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				rel, _ := filepath.Rel(filepath.Join(dest, "tree"), p)
				got[arch][rel], _ = os.ReadFile(p)
			}
			return nil
		})
	}
	if len(got[lambda.X86_64]) != 2 {
		t.Fatalf("want 2 .pyc files, got %d", len(got[lambda.X86_64]))
	}
	for name, b := range got[lambda.X86_64] {
		if !bytes.Equal(b, got[lambda.ARM64][name]) {
			t.Errorf("%s: the x86_64 and arm64 images compile different bytes", name)
		}
	}
}

// zipEntries reads every file of a zip.
func zipEntries(t *testing.T, p string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	m := map[string][]byte{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		m[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return m
}

// checkZipRecords: every .pyc of the zip is listed by a RECORD with its hash and
// size, and every RECORD line names a file of the zip with those.
func checkZipRecords(t *testing.T, entries map[string][]byte) {
	t.Helper()
	listed := map[string]bool{}
	for name, b := range entries {
		if !strings.HasSuffix(name, ".dist-info/RECORD") {
			continue
		}
		root := path.Dir(path.Dir(name))
		rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, r := range rows {
			full := root + "/" + r[0]
			listed[full] = true
			if strings.HasSuffix(r[0], "/RECORD") {
				continue
			}
			content, ok := entries[full]
			if !ok {
				t.Errorf("%s lists %s, not in the zip", name, r[0])
				continue
			}
			sum := sha256.Sum256(content)
			if r[1] != "sha256="+base64.RawURLEncoding.EncodeToString(sum[:]) {
				t.Errorf("%s: %s hash %s does not match", name, r[0], r[1])
			}
		}
	}
	for name := range entries {
		if strings.HasSuffix(name, ".pyc") && !listed[name] {
			t.Errorf("%s is in no RECORD", name)
		}
	}
}

func sbomComponents(t *testing.T, zipPath string) []string {
	t.Helper()
	bom, err := sbom.FromZip(zipPath, sbom.Options{Name: "deps"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if bom.Components != nil {
		for _, c := range *bom.Components {
			out = append(out, c.Name+" "+c.Version+" "+c.PackageURL)
		}
	}
	sort.Strings(out)
	return out
}
