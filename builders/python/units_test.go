package python

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
)

func TestPlatforms(t *testing.T) {
	al2, al2023 := lambda.GlibcVersion{Major: 2, Minor: 26}, lambda.GlibcVersion{Major: 2, Minor: 34}
	for _, tc := range []struct {
		arch  lambda.Arch
		glibc lambda.GlibcVersion
		want  string
	}{
		{lambda.X86_64, al2, "manylinux_2_26_x86_64 manylinux_2_25_x86_64 manylinux_2_24_x86_64 manylinux_2_23_x86_64 manylinux_2_22_x86_64 manylinux_2_21_x86_64 manylinux_2_20_x86_64 manylinux_2_19_x86_64 manylinux_2_18_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_16_x86_64 manylinux_2_15_x86_64 manylinux_2_14_x86_64 manylinux_2_13_x86_64 manylinux_2_12_x86_64 manylinux2010_x86_64 manylinux_2_11_x86_64 manylinux_2_10_x86_64 manylinux_2_9_x86_64 manylinux_2_8_x86_64 manylinux_2_7_x86_64 manylinux_2_6_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64"},
		{lambda.ARM64, al2, "manylinux_2_26_aarch64 manylinux_2_25_aarch64 manylinux_2_24_aarch64 manylinux_2_23_aarch64 manylinux_2_22_aarch64 manylinux_2_21_aarch64 manylinux_2_20_aarch64 manylinux_2_19_aarch64 manylinux_2_18_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64"},
		{lambda.ARM64, al2023, "manylinux_2_34_aarch64 manylinux_2_33_aarch64 manylinux_2_32_aarch64 manylinux_2_31_aarch64 manylinux_2_30_aarch64 manylinux_2_29_aarch64 manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux_2_26_aarch64 manylinux_2_25_aarch64 manylinux_2_24_aarch64 manylinux_2_23_aarch64 manylinux_2_22_aarch64 manylinux_2_21_aarch64 manylinux_2_20_aarch64 manylinux_2_19_aarch64 manylinux_2_18_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64"},
	} {
		if got := strings.Join(Platforms(tc.arch, tc.glibc), " "); got != tc.want {
			t.Errorf("Platforms(%s, %s) =\n%s\nwant\n%s", tc.arch, tc.glibc, got, tc.want)
		}
	}
	x := Platforms(lambda.X86_64, al2023)
	if x[0] != "manylinux_2_34_x86_64" || x[len(x)-1] != "manylinux1_x86_64" || len(x) != 33 {
		t.Errorf("x86_64 AL2023: %v", x)
	}
}

func TestTargets(t *testing.T) {
	var rts []lambda.Runtime
	for _, id := range []string{"python3.13", "python3.11", "provided.al2023", "python3.12", "python3.10"} {
		r, _ := lambda.LookupRuntime(id)
		rts = append(rts, r)
	}
	ts := Targets(rts, lambda.ARM64)
	var got []string
	for _, tg := range ts {
		got = append(got, tg.Version+"/"+tg.ABI()+"/"+tg.GLIBC.String()+"/"+tg.UVPlatform()+"/"+strings.Join(tg.Runtimes, ","))
	}
	want := []string{
		"3.10/cp310/2.26/aarch64-manylinux_2_17/python3.10",
		"3.11/cp311/2.26/aarch64-manylinux_2_17/python3.11",
		"3.12/cp312/2.34/aarch64-manylinux_2_34/python3.12",
		"3.13/cp313/2.34/aarch64-manylinux_2_34/python3.13",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Targets = %v\nwant %v", got, want)
	}
	args := strings.Join(ts[2].pipTargetArgs(), " ")
	if !strings.HasPrefix(args, "--implementation cp --python-version 3.12 --abi cp312 --platform manylinux_2_34_aarch64 --platform manylinux_2_33_aarch64") ||
		!strings.HasSuffix(args, "--platform manylinux2014_aarch64") {
		t.Errorf("pip args: %s", args)
	}
	if ts[0].LocalPlatform() != "linux_aarch64" {
		t.Error(ts[0].LocalPlatform())
	}
}

// The tags the host's pip derives from the builder's options: abi3 and pure wheels
// are accepted, newer glibc and other CPUs are not.
func TestPipAcceptsTheRightTags(t *testing.T) {
	needHostPip(t)
	tg := Targets([]lambda.Runtime{mustRuntime("python3.12")}, lambda.ARM64)[0]
	out, err := runPipDebug(tg)
	if err != nil {
		testneed.Missing(t, fmt.Sprintf("pip debug: %v", err))
	}
	for _, want := range []string{"cp312-cp312-manylinux_2_34_aarch64", "cp312-abi3-manylinux2014_aarch64", "cp38-abi3-manylinux_2_17_aarch64", "py3-none-manylinux_2_28_aarch64", "py3-none-any", "cp312-none-any"} {
		if !strings.Contains(out, "\n  "+want+"\n") {
			t.Errorf("pip does not accept %s", want)
		}
	}
	for _, bad := range []string{"manylinux_2_35", "x86_64", "cp311-cp311", "linux_aarch64"} {
		if strings.Contains(out, bad) {
			t.Errorf("pip accepts %s", bad)
		}
	}
}

func mustRuntime(id string) lambda.Runtime {
	r, ok := lambda.LookupRuntime(id)
	if !ok {
		panic(id)
	}
	return r
}

func TestMarkers(t *testing.T) {
	arm312 := TargetEnv("3.12", "aarch64")
	x311 := TargetEnv("3.11", "x86_64")
	for _, tc := range []struct {
		marker string
		env    Env
		extra  string
		want   bool
	}{
		{`platform_machine == "aarch64"`, arm312, "", true},
		{`platform_machine == "aarch64"`, x311, "", false},
		{`python_version < "3.12"`, arm312, "", false},
		{`python_version < "3.12"`, x311, "", true},
		{`python_version >= "3.9" and python_version < "3.12"`, x311, "", true},
		{`python_version == "3.1"`, x311, "", false}, // 3.11 is not 3.1 (versions, not strings)
		{`python_full_version >= "3.11.0"`, x311, "", true},
		{`python_version == "3.11.*"`, x311, "", true},
		{`sys_platform == 'win32' or (platform_system == "Linux" and implementation_name == "cpython")`, arm312, "", true},
		{`extra == "socks"`, arm312, "", false},
		{`extra == "socks"`, arm312, "Socks", true},
		{`extra == 'test' and python_version < "3.13"`, arm312, "test", true},
		{`"arm" in platform_machine`, arm312, "", false},
		{`"aarch" in platform_machine`, arm312, "", true},
		{`platform_machine not in "x86_64 AMD64"`, arm312, "", true},
		{`os.name == "posix"`, arm312, "", true},
		{`python_version ~= "3.11"`, arm312, "", true},
	} {
		m, err := ParseMarker(tc.marker)
		if err != nil {
			t.Errorf("%s: %v", tc.marker, err)
			continue
		}
		if got := m.Eval(tc.env, tc.extra); got != tc.want {
			t.Errorf("%s (python %s, %s, extra %q) = %v, want %v", tc.marker, tc.env["python_version"], tc.env["platform_machine"], tc.extra, got, tc.want)
		}
	}
	for _, bad := range []string{`python_version <`, `foo == "1"`, `python_version == "3" and`, `(python_version == "3"`} {
		if _, err := ParseMarker(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestParseRequirement(t *testing.T) {
	for _, tc := range []struct{ in, name, extras, spec, url, marker, pin string }{
		{"requests", "requests", "", "", "", "", ""},
		{"Requests[Socks, security] >= 2.8.1, == 2.8.* ; python_version < '2.7'", "Requests", "socks,security", ">=2.8.1,==2.8.*", "", "python_version < '2.7'", ""},
		{"numpy==1.26.4", "numpy", "", "==1.26.4", "", "", "1.26.4"},
		{"numpy==1.26.*", "numpy", "", "==1.26.*", "", "", ""},
		{"pip @ https://example.com/pip-1.0.whl ; python_version >= '3'", "pip", "", "", "https://example.com/pip-1.0.whl", "python_version >= '3'", ""},
		{"name (>=1.0)", "name", "", ">=1.0", "", "", ""},
		{"zope.interface===5.0", "zope.interface", "", "===5.0", "", "", "5.0"},
	} {
		r, err := ParseRequirement(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if r.Name != tc.name || strings.Join(r.Extras, ",") != tc.extras || r.Specifier != tc.spec || r.URL != tc.url || r.Marker.String() != tc.marker && !(r.Marker == nil && tc.marker == "") || r.Pin() != tc.pin {
			t.Errorf("%s: got %+v marker %v pin %q", tc.in, r, r.Marker, r.Pin())
		}
	}
	if Normalize("Zope.Interface__x") != "zope-interface-x" {
		t.Error(Normalize("Zope.Interface__x"))
	}
}

func TestVersionCompare(t *testing.T) {
	order := []string{"1.0.dev1", "1.0a1", "1.0a2.dev3", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0.post1", "1.1", "1.10", "2!0.1"}
	for i := 0; i+1 < len(order); i++ {
		a, err1 := ParseVersion(order[i])
		b, err2 := ParseVersion(order[i+1])
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if a.Compare(b) >= 0 {
			t.Errorf("%s should sort before %s", order[i], order[i+1])
		}
	}
	a, _ := ParseVersion("3.12")
	b, _ := ParseVersion("3.12.0")
	if a.Compare(b) != 0 {
		t.Error("3.12 != 3.12.0")
	}
}

func TestParseRequirements(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "base.txt"), []byte("six==1.16.0 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cons.txt"), []byte("urllib3==2.2.1\n"), 0o644)
	main := filepath.Join(dir, "requirements.txt")
	os.WriteFile(main, []byte(`# comment
--index-url https://${LP_USER}:${LP_TOKEN}@pypi.example/simple
-r base.txt
-c cons.txt
--find-links ./wheels
requests[socks]>=2   # not pinned
boto3==1.34.0 ; python_version >= "3.9"
urllib3
https://example.com/pkg-1.0-py3-none-any.whl
`), 0o644)
	env := map[string]string{"LP_USER": "u", "LP_TOKEN": "t0k"}
	r, err := ParseRequirements(main, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Files) != 3 || r.Files[1] != filepath.Join(dir, "base.txt") {
		t.Errorf("files: %v", r.Files)
	}
	if !r.HasHashes() || strings.Join(r.HashesFor("SIX"), " ") != "sha256:aaaa sha256:bbbb" {
		t.Errorf("hashes: %v", r.HashesFor("six"))
	}
	if got := strings.Join(r.Unpinned(), ","); got != "requests" {
		t.Errorf("unpinned = %s (urllib3 is pinned by the constraint, the URL is pinned)", got)
	}
	if r.Options[0][1] != "https://u:t0k@pypi.example/simple" {
		t.Errorf("options: %v", r.Options)
	}
	if r.FindLinks[0] != filepath.Join(dir, "wheels") {
		t.Errorf("find-links: %v", r.FindLinks)
	}
	roots := r.Roots(TargetEnv("3.12", "x86_64"))
	if !reflect.DeepEqual(roots["requests"], []string{"socks"}) || roots["boto3"] == nil && len(roots) != 4 {
		t.Errorf("roots: %v", roots)
	}
	if _, ok := r.Roots(TargetEnv("3.8", "x86_64"))["boto3"]; ok {
		t.Error("boto3's marker ignored")
	}
	out := filepath.Join(t.TempDir(), "r.txt")
	if _, err := r.Write(out, filepath.Join(filepath.Dir(out), "c.txt")); err != nil {
		t.Fatal(err)
	}
	got := read(t, out)
	want := "six==1.16.0 --hash=sha256:aaaa --hash=sha256:bbbb\nrequests[socks]>=2\nboto3==1.34.0 ; python_version >= \"3.9\"\nurllib3\nhttps://example.com/pkg-1.0-py3-none-any.whl\n-c c.txt\n"
	if got != want {
		t.Errorf("Write:\n%s\nwant:\n%s", got, want)
	}
	// An editable line is a local package (installed normally, see
	// TestParseLocalRequirements); a missing folder is an error naming the line.
	os.WriteFile(main, []byte("-e ./src\n"), 0o644)
	if _, err := ParseRequirements(main, os.Getenv); err == nil || !strings.Contains(err.Error(), "requirements.txt:1: local package ./src: stat ") {
		t.Errorf("-e: %v", err)
	}
}

// A fake installed tree for the tree tests.
func fakeTree(t *testing.T, dists map[string][]string) string {
	t.Helper()
	root := t.TempDir()
	for name, requires := range dists {
		di := name + "-1.0.dist-info"
		os.MkdirAll(filepath.Join(root, di), 0o755)
		meta := "Metadata-Version: 2.1\nName: " + name + "\nVersion: 1.0\n"
		for _, r := range requires {
			meta += "Requires-Dist: " + r + "\n"
		}
		os.WriteFile(filepath.Join(root, di, "METADATA"), []byte(meta), 0o644)
		pkg := strings.ReplaceAll(name, "-", "_")
		os.MkdirAll(filepath.Join(root, pkg), 0o755)
		os.WriteFile(filepath.Join(root, pkg, "__init__.py"), []byte("# "+name+"\n"), 0o644)
		os.WriteFile(filepath.Join(root, di, "RECORD"), []byte(pkg+"/__init__.py,,\n"+di+"/METADATA,,\n"+di+"/RECORD,,\n"), 0o644)
	}
	return root
}

func TestExcludedClosure(t *testing.T) {
	root := fakeTree(t, map[string][]string{
		"boto3":              {"botocore (<1.35.0,>=1.34.0)", "jmespath<2.0.0,>=0.7.1", "s3transfer<0.11.0,>=0.10.0", "awscrt==0.19.19; extra == 'crt'"},
		"botocore":           {"jmespath<2.0.0,>=0.7.1", "python-dateutil<3.0.0,>=2.1", "urllib3<1.27,>=1.25.4; python_version < \"3.10\"", "urllib3!=2.2.0,<3,>=1.25.4; python_version >= \"3.10\""},
		"s3transfer":         {"botocore<2.0a.0,>=1.33.2"},
		"jmespath":           nil,
		"python-dateutil":    {"six>=1.5"},
		"six":                nil,
		"urllib3":            nil,
		"requests":           {"urllib3<3,>=1.21.1", "charset-normalizer<4,>=2", "PySocks!=1.5.7,>=1.5.6; extra == \"socks\""},
		"charset-normalizer": nil,
		"pysocks":            nil,
		"orphan":             nil, // installed, reachable from nothing the builder knows
	})
	dists, err := ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}
	env := TargetEnv("3.12", "x86_64")
	roots := map[string][]string{"boto3": nil, "requests": {"socks"}}
	got := ExcludedClosure(dists, roots, map[string]bool{"boto3": true}, env)
	want := []string{"boto3", "botocore", "jmespath", "python-dateutil", "s3transfer", "six"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exclude boto3: %v, want %v (urllib3 stays: requests needs it)", got, want)
	}
	// Without the socks extra nothing asks for pysocks, but exclusion does not
	// remove what it did not make unneeded.
	got = ExcludedClosure(dists, map[string][]string{"boto3": nil, "requests": nil}, map[string]bool{"boto3": true}, env)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exclude boto3 (no extra): %v", got)
	}
	// Excluding requests too removes urllib3, pysocks, charset-normalizer.
	got = ExcludedClosure(dists, roots, map[string]bool{"boto3": true, "requests": true}, env)
	if strings.Join(got, " ") != "boto3 botocore charset-normalizer jmespath pysocks python-dateutil requests s3transfer six urllib3" {
		t.Errorf("exclude both: %v", got)
	}
	byKey := map[string]*Dist{}
	for _, d := range dists {
		byKey[d.Key()] = d
	}
	if _, err := RemoveDist(root, byKey["python-dateutil"]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "python_dateutil")); !os.IsNotExist(err) {
		t.Error("RemoveDist left the package folder")
	}
	if _, err := os.Stat(filepath.Join(root, "python-dateutil-1.0.dist-info")); !os.IsNotExist(err) {
		t.Error("RemoveDist left the dist-info")
	}
}

func TestNormalizeTree(t *testing.T) {
	root := fakeTree(t, map[string][]string{"tool": nil})
	di := filepath.Join(root, "tool-1.0.dist-info")
	os.WriteFile(filepath.Join(di, "INSTALLER"), []byte("pip\n"), 0o644)
	os.WriteFile(filepath.Join(di, "REQUESTED"), nil, 0o644)
	os.WriteFile(filepath.Join(di, "direct_url.json"), []byte(`{"url": "file:///home/me/tool-1.0.whl"}`), 0o644)
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "tool"), []byte("#!/home/me/.venv/bin/python3.12\nimport tool\n"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "long"), []byte("#!/bin/sh\n'''exec' \"/a path/python3\" \"$0\" \"$@\"\n' '''\nimport tool\n"), 0o755)
	os.MkdirAll(filepath.Join(root, "tool", "__pycache__"), 0o755)
	os.WriteFile(filepath.Join(root, "tool", "__pycache__", "__init__.cpython-312.pyc"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(di, "RECORD"), []byte("tool/__init__.py,sha256=stale,1\n../../bin/tool,sha256=x,3\n../../bin/long,sha256=x,3\ntool/__pycache__/__init__.cpython-312.pyc,,\ntool-1.0.dist-info/INSTALLER,,\ntool-1.0.dist-info/direct_url.json,,\ntool-1.0.dist-info/METADATA,,\ntool-1.0.dist-info/RECORD,,\n"), 0o644)
	if err := NormalizeTree(root); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"tool-1.0.dist-info/INSTALLER", "tool-1.0.dist-info/REQUESTED", "tool-1.0.dist-info/direct_url.json", "tool/__pycache__"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s kept", gone)
		}
	}
	if got := read(t, filepath.Join(root, "bin", "tool")); got != Shebang+"\nimport tool\n" {
		t.Errorf("bin/tool = %q", got)
	}
	if got := read(t, filepath.Join(root, "bin", "long")); got != Shebang+"\nimport tool\n" {
		t.Errorf("bin/long = %q", got)
	}
	rec := read(t, filepath.Join(di, "RECORD"))
	// tool/__init__.py keeps the hash it came with (not changed by the builder);
	// the scripts get their real paths and new hashes, files listed without a
	// hash get one; removed files are gone.
	h, _, _ := fileHash(filepath.Join(root, "bin", "tool"))
	hm, nm, _ := fileHash(filepath.Join(di, "METADATA"))
	want := "tool/__init__.py,sha256=stale,1\nbin/tool," + h + ",35\nbin/long," + h + ",35\ntool-1.0.dist-info/METADATA," + hm + "," + strconv.FormatInt(nm, 10) + "\ntool-1.0.dist-info/RECORD,,\n"
	if rec != want {
		t.Errorf("RECORD:\n%s\nwant:\n%s", rec, want)
	}
}

func TestPrune(t *testing.T) {
	root := fakeTree(t, map[string][]string{"numpy": nil, "mylib": nil})
	files := map[string]string{
		"numpy/core/tests/test_a.py": strings.Repeat("x", 1000),
		"numpy/tests/__init__.py":    "",
		"numpy/testing/__init__.py":  "keep",
		"numpy/__init__.pyi":         "stub",
		"mylib/tests/__init__.py":    "imported at run time, maybe",
		"mylib/py.typed":             "",
	}
	rec := "numpy/__init__.py,,\n"
	for p, body := range files {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(body), 0o644)
	}
	for p := range files {
		if strings.HasPrefix(p, "numpy/") {
			rec += p + ",,\n"
		}
	}
	os.WriteFile(filepath.Join(root, "numpy-1.0.dist-info", "RECORD"), []byte(rec+"numpy-1.0.dist-info/METADATA,,\nnumpy-1.0.dist-info/RECORD,,\n"), 0o644)
	os.WriteFile(filepath.Join(root, "mylib-1.0.dist-info", "RECORD"), []byte("mylib/__init__.py,,\nmylib/tests/__init__.py,,\nmylib/py.typed,,\nmylib-1.0.dist-info/METADATA,,\nmylib-1.0.dist-info/RECORD,,\n"), 0o644)
	res, err := Prune(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || res.Bytes != 1000 {
		t.Errorf("pruned %+v, want 2 files, 1000 bytes", res)
	}
	for p, keep := range map[string]bool{"numpy/core/tests": false, "numpy/tests": false, "numpy/testing/__init__.py": true, "numpy/__init__.pyi": true, "mylib/tests/__init__.py": true, "mylib/py.typed": true} {
		_, err := os.Stat(filepath.Join(root, p))
		if (err == nil) != keep {
			t.Errorf("%s kept = %v, want %v", p, err == nil, keep)
		}
	}
	if strings.Contains(read(t, filepath.Join(root, "numpy-1.0.dist-info", "RECORD")), "tests/") {
		t.Error("RECORD still lists pruned files")
	}
	res, _ = Prune(root, true)
	if res.Files != 1 {
		t.Errorf("prune_stubs removed %d files, want 1", res.Files)
	}
}

func TestProjectLocks(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte("[project]\nname = \"app\"\nversion = \"0.1\"\ndependencies = [\"requests[socks]>=2\", \"colorama; sys_platform == 'win32'\"]\n"), 0o644)
	p, err := LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.RequirementsFor(TargetEnv("3.12", "x86_64")); strings.Join(got, "|") != "requests[socks]>=2|colorama; sys_platform == 'win32'" || p.Lock != "" {
		t.Errorf("no lock: %v", got)
	}
	os.WriteFile(filepath.Join(dir, "uv.lock"), []byte(`version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1"
source = { virtual = "." }
dependencies = [
    { name = "requests", extra = ["socks"] },
    { name = "colorama", marker = "sys_platform == 'win32'" },
    { name = "tomli", marker = "python_full_version < '3.12'" },
]

[[package]]
name = "requests"
version = "2.32.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "urllib3" }]
sdist = { url = "https://x/requests-2.32.3.tar.gz", hash = "sha256:aa" }
wheels = [{ url = "https://x/requests-2.32.3-py3-none-any.whl", hash = "sha256:bb" }]

[package.optional-dependencies]
socks = [{ name = "pysocks" }]

[[package]]
name = "urllib3"
version = "2.2.2"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://x/u.whl", hash = "sha256:cc" }]

[[package]]
name = "pysocks"
version = "1.7.1"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://x/p.whl", hash = "sha256:dd" }]

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://x/c.whl", hash = "sha256:ee" }]

[[package]]
name = "tomli"
version = "2.0.1"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://x/t.whl", hash = "sha256:ff" }]
`), 0o644)
	p, err = LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.RequirementsFor(TargetEnv("3.11", "aarch64"))
	if err != nil {
		t.Fatal(err)
	}
	want := "pysocks==1.7.1 --hash=sha256:dd|requests==2.32.3 --hash=sha256:aa --hash=sha256:bb|tomli==2.0.1 --hash=sha256:ff|urllib3==2.2.2 --hash=sha256:cc"
	if strings.Join(got, "|") != want || p.Lock != "uv.lock" {
		t.Errorf("uv.lock for 3.11:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	got, _ = p.RequirementsFor(TargetEnv("3.12", "aarch64"))
	if strings.Contains(strings.Join(got, "|"), "tomli") {
		t.Errorf("tomli's marker ignored for 3.12: %v", got)
	}
	if roots := p.RootNames(TargetEnv("3.12", "x86_64")); len(roots) != 1 || roots["requests"][0] != "socks" {
		t.Errorf("roots: %v", roots)
	}

	os.Remove(filepath.Join(dir, "uv.lock"))
	os.WriteFile(filepath.Join(dir, "poetry.lock"), []byte(`[[package]]
name = "requests"
version = "2.31.0"
optional = false
files = [{file = "requests-2.31.0-py3-none-any.whl", hash = "sha256:r1"}]

[package.dependencies]
urllib3 = ">=1.21.1,<3"
PySocks = {version = ">=1.5.6,<1.5.7 || >1.5.7", optional = true}

[package.extras]
socks = ["PySocks (>=1.5.6,!=1.5.7)"]

[[package]]
name = "urllib3"
version = "2.0.7"
files = [{file = "urllib3-2.0.7-py3-none-any.whl", hash = "sha256:u1"}]

[[package]]
name = "pysocks"
version = "1.7.1"
files = [{file = "PySocks-1.7.1-py3-none-any.whl", hash = "sha256:p1"}]

[[package]]
name = "colorama"
version = "0.4.6"
files = []
`), 0o644)
	p, err = LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err = p.RequirementsFor(TargetEnv("3.12", "x86_64"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "pysocks==1.7.1 --hash=sha256:p1|requests==2.31.0 --hash=sha256:r1|urllib3==2.0.7 --hash=sha256:u1" {
		t.Errorf("poetry.lock: %v", got)
	}

	os.Remove(filepath.Join(dir, "poetry.lock"))
	os.WriteFile(filepath.Join(dir, "pdm.lock"), []byte(`[[package]]
name = "requests"
version = "2.31.0"
dependencies = ["urllib3<3,>=1.21.1", "tomli; python_version < \"3.11\""]
files = [{file = "requests-2.31.0-py3-none-any.whl", hash = "sha256:r1"}]

[[package]]
name = "requests"
version = "2.31.0"
extras = ["socks"]
dependencies = ["requests==2.31.0", "PySocks!=1.5.7,>=1.5.6"]
files = [{file = "requests-2.31.0-py3-none-any.whl", hash = "sha256:r1"}]

[[package]]
name = "urllib3"
version = "2.0.7"
files = [{file = "urllib3-2.0.7-py3-none-any.whl", hash = "sha256:u1"}]

[[package]]
name = "pysocks"
version = "1.7.1"
files = [{file = "PySocks-1.7.1-py3-none-any.whl", hash = "sha256:p1"}]
`), 0o644)
	p, err = LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err = p.RequirementsFor(TargetEnv("3.12", "x86_64"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "pysocks==1.7.1 --hash=sha256:p1|requests==2.31.0 --hash=sha256:r1|urllib3==2.0.7 --hash=sha256:u1" {
		t.Errorf("pdm.lock: %v", got)
	}
}

func TestPoetrySpec(t *testing.T) {
	for in, want := range map[string]string{"^1.2.3": ">=1.2.3,<2", "^0.2.3": ">=0.2.3,<0.3", "~1.2.3": ">=1.2.3,<1.3", "~1": ">=1,<2", "1.0": "==1.0", ">=1,<2": ">=1,<2", "*": ""} {
		if got := poetrySpec(in); got != want {
			t.Errorf("poetrySpec(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHostPipConfig(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".config", "pip"), 0o755)
	os.WriteFile(filepath.Join(home, ".config", "pip", "pip.conf"), []byte("[global]\nindex-url = https://mirror.example/simple\nextra-index-url =\n    https://a.example/simple\n    https://b.example/simple\nfind-links = wheels\n"), 0o644)
	env := map[string]string{"HOME": home, "PIP_TRUSTED_HOST": "a.example", "XDG_CONFIG_DIRS": filepath.Join(home, "none")}
	c := readHostPipConfig(func(k string) string { return env[k] }, []string{"PIP_TRUSTED_HOST=a.example", "HOME=" + home})
	want := Index{URL: "https://mirror.example/simple", Extra: []string{"https://a.example/simple", "https://b.example/simple"},
		FindLinks: []string{filepath.Join(home, ".config", "pip", "wheels")}, Trusted: []string{"a.example"}}
	if !reflect.DeepEqual(c.Index, want) {
		t.Errorf("index = %+v\nwant %+v", c.Index, want)
	}
	if len(c.Files) == 0 || c.Files[len(c.Files)-1] != filepath.Join(home, ".config", "pip", "pip.conf") || c.Env["PIP_TRUSTED_HOST"] != "a.example" {
		t.Errorf("files %v env %v", c.Files, c.Env)
	}
}

// runPipDebug lists the tags the host pip accepts for a target.
func runPipDebug(tg Target) (string, error) {
	args := append([]string{"-m", "pip", "debug", "--verbose"}, tg.pipTargetArgs()...)
	out, err := exec.Command("python3", args...).Output()
	return "\n" + string(out), err
}
