package python

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Fixtures are made by the tests, never downloaded: hand-written wheels (a pure one,
// platform ones for x86_64 and aarch64 that say which CPU they were built for) and
// an sdist of a C extension whose build backend is in the sdist itself (no
// setuptools, so it builds offline, in a build container or on the host).

// wheelSpec describes a hand-written wheel.
type wheelSpec struct {
	Name, Version, Tag string // Tag: "py3-none-any", "py3-none-manylinux2014_aarch64"
	Files              map[string]string
	Requires           []string
	Scripts            map[string]string // NAME.data/scripts/...
	Licence            string
}

// writeWheel writes the wheel into dir and returns its path.
func writeWheel(t testing.TB, dir string, w wheelSpec) string {
	t.Helper()
	di := fmt.Sprintf("%s-%s.dist-info", w.Name, w.Version)
	files := map[string][]byte{}
	for k, v := range w.Files {
		files[k] = []byte(v)
	}
	for k, v := range w.Scripts {
		files[fmt.Sprintf("%s-%s.data/scripts/%s", w.Name, w.Version, k)] = []byte(v)
	}
	var meta strings.Builder
	fmt.Fprintf(&meta, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", w.Name, w.Version)
	for _, r := range w.Requires {
		fmt.Fprintf(&meta, "Requires-Dist: %s\n", r)
	}
	files[di+"/METADATA"] = []byte(meta.String())
	purelib := strings.HasSuffix(w.Tag, "-none-any")
	files[di+"/WHEEL"] = []byte(fmt.Sprintf("Wheel-Version: 1.0\nGenerator: layerpack-test\nRoot-Is-Purelib: %v\nTag: %s\n", purelib, w.Tag))
	if w.Licence != "" {
		files[di+"/licenses/LICENSE"] = []byte(w.Licence)
	}
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	sort.Strings(names)
	var rec strings.Builder
	for _, n := range names {
		sum := sha256.Sum256(files[n])
		fmt.Fprintf(&rec, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[n]))
	}
	fmt.Fprintf(&rec, "%s/RECORD,,\n", di)
	files[di+"/RECORD"] = []byte(rec.String())
	names = append(names, di+"/RECORD")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
		mode := os.FileMode(0o644)
		if strings.Contains(n, ".data/scripts/") {
			mode = 0o755
		}
		h.SetMode(mode)
		f, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.whl", strings.ReplaceAll(w.Name, "-", "_"), w.Version, w.Tag))
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// extBackend is a PEP 517 build backend that compiles one C file into an extension
// module with the C compiler and writes the wheel by hand: the sdist needs nothing
// from an index to build. It compiles in the folder pip builds in, with -g, as
// setuptools does: the folder is then in the module's debug info and build id.
const extBackend = `import base64, hashlib, os, subprocess, sys, sysconfig, tempfile, zipfile

NAME, VERSION = open("NAME").read().split()

def _tag():
    impl = "cp%d%d" % sys.version_info[:2]
    return "%s-%s-%s" % (impl, impl, sysconfig.get_platform().replace("-", "_").replace(".", "_"))

def _metadata():
    return "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (NAME, VERSION)

def get_requires_for_build_wheel(config_settings=None):
    return []

def get_requires_for_build_sdist(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = "%s-%s.dist-info" % (NAME, VERSION)
    os.makedirs(os.path.join(metadata_directory, d))
    with open(os.path.join(metadata_directory, d, "METADATA"), "w") as f:
        f.write(_metadata())
    return d

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    with tempfile.TemporaryDirectory() as tmp:
        so = os.path.join(tmp, NAME + suffix)
        # Like setuptools: debug info (which names the build folder), and the
        # environment's CFLAGS and LDFLAGS after the backend's own.
        flags = os.environ.get("CFLAGS", "").split() + os.environ.get("LDFLAGS", "").split()
        subprocess.check_call([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O2", "-g"] + flags +
                              ["-I", sysconfig.get_paths()["include"], NAME + ".c", "-o", so])
        di = "%s-%s.dist-info" % (NAME, VERSION)
        files = {
            NAME + suffix: open(so, "rb").read(),
            di + "/METADATA": _metadata().encode(),
            di + "/WHEEL": ("Wheel-Version: 1.0\nGenerator: test-backend\nRoot-Is-Purelib: false\nTag: %s\n" % _tag()).encode(),
        }
    record = ""
    for n in sorted(files):
        h = base64.urlsafe_b64encode(hashlib.sha256(files[n]).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (n, h, len(files[n]))
    files[di + "/RECORD"] = (record + di + "/RECORD,,\n").encode()
    name = "%s-%s-%s.whl" % (NAME, VERSION, _tag())
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for n in sorted(files):
            z.writestr(zipfile.ZipInfo(n, (2020, 1, 1, 0, 0, 0)), files[n])
    return name
`

// extSource is a C extension with one function, add(a, b). With needsNewGlibc it
// also calls dlopen, which glibc 2.34 moved into libc with a new symbol version:
// built on a glibc 2.34+ system the module then needs GLIBC_2.34.
func extSource(name string, needsNewGlibc bool) string {
	extra, call := "", ""
	if needsNewGlibc {
		extra = "#include <dlfcn.h>\n"
		call = "    if (a == -12345) { return PyLong_FromVoidPtr(dlopen(NULL, RTLD_LAZY)); }\n"
	}
	return `#define PY_SSIZE_T_CLEAN
#include <Python.h>
` + extra + `
static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
` + call + `    return PyLong_FromLong(a + b);
}
static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "` + name + `", NULL, -1, methods};
PyMODINIT_FUNC PyInit_` + name + `(void) { return PyModule_Create(&mod); }
`
}

// writeExtSdist writes NAME-VERSION.tar.gz, an sdist of a one-file C extension.
func writeExtSdist(t testing.TB, dir, name, version string, needsNewGlibc bool) string {
	t.Helper()
	root := name + "-" + version + "/"
	files := []struct{ name, body string }{
		{"PKG-INFO", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)},
		{"pyproject.toml", "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n"},
		{"backend.py", extBackend},
		{"NAME", name + " " + version + "\n"},
		{name + ".c", extSource(name, needsNewGlibc)},
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Name: root + f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+"-"+version+".tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFixtures fills dir with the standard fixture set: purepkg (pure, requires
// helperpkg), helperpkg (pure, with a console script), platpkg (one wheel per CPU,
// each saying which CPU it is for) and, with sdist, cext (C, sdist only).
func writeFixtures(t testing.TB, dir string, sdist bool) {
	t.Helper()
	writeWheel(t, dir, wheelSpec{Name: "purepkg", Version: "1.0", Tag: "py3-none-any",
		Files:    map[string]string{"purepkg/__init__.py": "from helperpkg import helper\nVALUE = helper() + 1\n", "purepkg/tests/test_x.py": "def test(): pass\n", "purepkg/__init__.pyi": "VALUE: int\n"},
		Requires: []string{"helperpkg>=1.0", "winonly; sys_platform == 'win32'", "armonly; platform_machine == 'aarch64'"},
		Licence:  "MIT licence text\n"})
	writeWheel(t, dir, wheelSpec{Name: "helperpkg", Version: "1.0", Tag: "py3-none-any",
		Files:   map[string]string{"helperpkg/__init__.py": "def helper():\n    return 41\n"},
		Scripts: map[string]string{"helper-tool": "#!python\nimport helperpkg\nprint(helperpkg.helper())\n"}})
	writeWheel(t, dir, wheelSpec{Name: "armonly", Version: "1.0", Tag: "py3-none-any",
		Files: map[string]string{"armonly.py": "ARM = True\n"}})
	for _, cpu := range []string{"x86_64", "aarch64"} {
		writeWheel(t, dir, wheelSpec{Name: "platpkg", Version: "2.0", Tag: "py3-none-manylinux2014_" + cpu,
			Files: map[string]string{"platpkg/__init__.py": fmt.Sprintf("CPU = %q\n", cpu)}})
	}
	// A newer platpkg whose wheels need a glibc newer than any Lambda runtime has:
	// never selected.
	writeWheel(t, dir, wheelSpec{Name: "platpkg", Version: "3.0", Tag: "py3-none-manylinux_2_39_x86_64",
		Files: map[string]string{"platpkg/__init__.py": "CPU = 'too new'\n"}})
	if sdist {
		writeExtSdist(t, dir, "cext", "1.0", false)
	}
}
