package ociimage

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/layerpack/layerpack/lambda"
)

type zent struct {
	name, body string
	mode       fs.FileMode
}

// makeZip writes a zip with archive/zip directly, so the golden digest depends on
// this package only, not on the zipper.
func makeZip(t testing.TB, dir, name string, ents []zent) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: zip.Store, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var sample = []zent{
	{"lib/", "", fs.ModeDir | 0o755},
	{"lib/data.txt", "data\n", 0o644},
	{"lib/link", "data.txt", fs.ModeSymlink | 0o777},
	{"bin/hello", "#!/bin/sh\necho hello\n", 0o755}, // bin/ has no folder entry: it is added
	{"extensions/ext", "#!/bin/sh\n", 0o755},
	// Past USTAR's 100-byte name field, and not ASCII: PAX records.
	{"share/" + strings.Repeat("long-name-", 11) + "é.txt", "x", 0o644},
}

var sampleMeta = Meta{Name: "hello", Description: "says hello", License: "MIT", Runtimes: []string{"provided.al2023", "python3.12"}}

var epoch = time.Unix(1700000000, 0)

func writeSample(t *testing.T, root string) *Result {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	amd := makeZip(t, root, "hello-x86_64.zip", sample)
	arm := makeZip(t, root, "hello-arm64.zip", append(append([]zent(nil), sample...), zent{"arm", "arm64\n", 0o644}))
	r, err := WriteLayout(filepath.Join(root, "dist", "hello.oci"),
		[]Source{{Arch: lambda.X86_64, Zip: amd}, {Arch: lambda.ARM64, Zip: arm}}, sampleMeta, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// goldenIndex is the index digest of the sample. It changes only when the image
// bytes change: a new gzip encoder version or level, a tar or JSON change. Such a
// change alters every user's image digests: say so in the release notes.
const goldenIndex = "sha256:92c91e8f34fcd85820e8540e77ddf947fbd6e19f480f7e86596f59ac54523e8c"

func TestGoldenDigest(t *testing.T) {
	r := writeSample(t, t.TempDir())
	if got := r.IndexDigest.String(); got != goldenIndex {
		t.Errorf("index digest = %s, want %s (image bytes changed)", got, goldenIndex)
	}
}

// The same zips give the same digests from another folder, time zone and umask.
func TestDeterministicAcrossEnvironments(t *testing.T) {
	a := writeSample(t, t.TempDir())
	old := syscall.Umask(0o077)
	loc := time.Local
	time.Local = time.FixedZone("X", -11*3600)
	defer func() { syscall.Umask(old); time.Local = loc }()
	b := writeSample(t, filepath.Join(t.TempDir(), "other", "place"))
	if a.IndexDigest != b.IndexDigest {
		t.Fatalf("index digest differs: %s vs %s", a.IndexDigest, b.IndexDigest)
	}
	for i := range a.Manifests {
		if a.Manifests[i] != b.Manifests[i] {
			t.Errorf("manifest %d differs: %+v vs %+v", i, a.Manifests[i], b.Manifests[i])
		}
	}
}

func readBlob(t *testing.T, dir string, d digest.Digest) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(b) != d {
		t.Fatalf("blob %s has digest %s", d, digest.FromBytes(b))
	}
	return b
}

func TestImageContents(t *testing.T) {
	root := t.TempDir()
	r := writeSample(t, root)
	dir := r.Dir
	var top v1.Index
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(dir, "index.json"))), &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].Digest != r.IndexDigest || top.Manifests[0].Annotations[v1.AnnotationRefName] != RefName {
		t.Fatalf("index.json: %+v", top)
	}
	if s := string(must(os.ReadFile(filepath.Join(dir, "oci-layout")))); s != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", s)
	}
	var idx v1.Index
	if err := json.Unmarshal(readBlob(t, dir, r.IndexDigest), &idx); err != nil {
		t.Fatal(err)
	}
	want := []string{"linux/amd64/", "linux/arm64/v8"}
	if len(idx.Manifests) != 2 {
		t.Fatalf("index has %d manifests", len(idx.Manifests))
	}
	for i, m := range idx.Manifests {
		p := m.Platform
		if got := p.OS + "/" + p.Architecture + "/" + p.Variant; got != want[i] {
			t.Errorf("manifest %d platform %s, want %s", i, got, want[i])
		}
		if m.Digest != r.Manifests[i].Digest {
			t.Errorf("manifest %d digest %s, result says %s", i, m.Digest, r.Manifests[i].Digest)
		}
	}
	// The x86_64 image in detail.
	var man v1.Manifest
	if err := json.Unmarshal(readBlob(t, dir, idx.Manifests[0].Digest), &man); err != nil {
		t.Fatal(err)
	}
	if man.MediaType != v1.MediaTypeImageManifest || len(man.Layers) != 1 || man.Layers[0].MediaType != v1.MediaTypeImageLayerGzip {
		t.Fatalf("manifest: %+v", man)
	}
	cfgBytes := readBlob(t, dir, man.Config.Digest)
	var cfg v1.Image
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.Created.Equal(epoch) || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config: created %v os %s arch %s", cfg.Created, cfg.OS, cfg.Architecture)
	}
	if strings.Contains(string(cfgBytes), "ntrypoint") || strings.Contains(string(cfgBytes), `"Cmd"`) {
		t.Errorf("config has an entrypoint or cmd: %s", cfgBytes)
	}
	code, _ := lambda.FileCodeSha256(filepath.Join(root, "hello-x86_64.zip"))
	wantLabels := map[string]string{
		LabelTitle: "hello", LabelDescription: "says hello", LabelLicenses: "MIT",
		LabelRuntimes: "provided.al2023 python3.12", LabelCodeSha256: code, LabelArch: "x86_64",
	}
	if fmt.Sprint(cfg.Config.Labels) != fmt.Sprint(wantLabels) {
		t.Errorf("labels = %v\nwant %v", cfg.Config.Labels, wantLabels)
	}
	layer := readBlob(t, dir, man.Layers[0].Digest)
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	raw := must(io.ReadAll(zr))
	if digest.FromBytes(raw) != cfg.RootFS.DiffIDs[0] || r.Manifests[0].DiffID != cfg.RootFS.DiffIDs[0] {
		t.Errorf("diff id %s, tar hashes to %s", cfg.RootFS.DiffIDs[0], digest.FromBytes(raw))
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: uid %d gid %d uname %q gname %q mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		for k := range h.PAXRecords {
			if k != "path" && k != "linkpath" {
				t.Errorf("%s: PAX record %s (only names may need PAX)", h.Name, k)
			}
		}
		if strings.HasPrefix(h.Name, "opt/share/long") && h.PAXRecords["path"] == "" {
			t.Errorf("%s: long name without a PAX path record: %v", h.Name, h.PAXRecords)
		}
		body := string(must(io.ReadAll(tr)))
		got = append(got, strings.TrimSuffix(fmt.Sprintf("%c %o %s %s%s", h.Typeflag, h.Mode, h.Name, h.Linkname, body), " "))
	}
	wantTar := []string{
		"5 755 opt/",
		"5 755 opt/bin/",
		"0 755 opt/bin/hello #!/bin/sh\necho hello\n",
		"5 755 opt/extensions/",
		"0 755 opt/extensions/ext #!/bin/sh\n",
		"5 755 opt/lib/",
		"0 644 opt/lib/data.txt data\n",
		"2 777 opt/lib/link data.txt",
		"5 755 opt/share/",
		"0 644 opt/share/" + strings.Repeat("long-name-", 11) + "é.txt x",
	}
	if strings.Join(got, "|") != strings.Join(wantTar, "|") {
		t.Errorf("tar:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantTar, "\n"))
	}
}

func TestReplacesExistingLayout(t *testing.T) {
	root := t.TempDir()
	writeSample(t, root)
	junk := filepath.Join(root, "dist", "hello.oci", "blobs", "sha256", "junk")
	if err := os.WriteFile(junk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	writeSample(t, root)
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Errorf("old layout content survived: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(root, "dist", ".hello.oci*"))
	if len(left) > 0 {
		t.Errorf("temp folders left: %v", left)
	}
}

func TestHostileZipsRefused(t *testing.T) {
	cases := map[string]struct {
		ents []zent
		want string
	}{
		"dotdot":           {[]zent{{"../evil", "x", 0o644}}, `"../evil": name has an empty, . or .. part`},
		"dotdot inside":    {[]zent{{"a/../../evil", "x", 0o644}}, "name has an empty, . or .. part"},
		"absolute":         {[]zent{{"/etc/passwd", "x", 0o644}}, "absolute name"},
		"backslash":        {[]zent{{`..\evil`, "x", 0o644}}, "backslash"},
		"duplicate":        {[]zent{{"a", "x", 0o644}, {"a", "y", 0o644}}, "duplicate"},
		"escaping link":    {[]zent{{"lib/x", "../../etc/passwd", fs.ModeSymlink | 0o777}}, `symlink to "../../etc/passwd": points outside /opt`},
		"absolute link":    {[]zent{{"x", "/etc/passwd", fs.ModeSymlink | 0o777}}, "points outside /opt"},
		"opt-prefix trick": {[]zent{{"x", "/optx/y", fs.ModeSymlink | 0o777}}, "points outside /opt"},
		// Each link stays inside by itself; together they leave /opt.
		"link chain":     {[]zent{{"s", ".", fs.ModeSymlink | 0o777}, {"l", "s/../etc/passwd", fs.ModeSymlink | 0o777}}, `"l": symlink to "s/../etc/passwd": points outside /opt`},
		"absolute chain": {[]zent{{"s", "/opt", fs.ModeSymlink | 0o777}, {"l", "/opt/s/../etc", fs.ModeSymlink | 0o777}}, "points outside /opt"},
		"loop":           {[]zent{{"a", "b", fs.ModeSymlink | 0o777}, {"b", "a/x", fs.ModeSymlink | 0o777}}, "too many levels of symlinks"},
		"below a link":   {[]zent{{"d", "lib", fs.ModeSymlink | 0o777}, {"d/x", "x", 0o644}}, `inside "d", which is a symlink`},
		"device":         {[]zent{{"dev", "", fs.ModeDevice | 0o644}}, "unsupported file type"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			z := makeZip(t, dir, "bad.zip", c.ents)
			out := filepath.Join(dir, "bad.oci")
			_, err := WriteLayout(out, []Source{{Arch: lambda.X86_64, Zip: z}}, Meta{Name: "bad"}, epoch)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a layout was written for a refused zip")
			}
		})
	}
}

func TestLinksInsideAccepted(t *testing.T) {
	dir := t.TempDir()
	z := makeZip(t, dir, "ok.zip", []zent{
		{"lib/libx.so.1", "elf", 0o755},
		{"lib/libx.so", "libx.so.1", fs.ModeSymlink | 0o777},
		{"bin/tool", "../lib/libx.so", fs.ModeSymlink | 0o777},
		{"abs", "/opt/lib/libx.so", fs.ModeSymlink | 0o777},
		{"dangling", "nothing/here", fs.ModeSymlink | 0o777},
	})
	if _, err := WriteLayout(filepath.Join(dir, "ok.oci"), []Source{{Arch: lambda.ARM64, Zip: z}}, Meta{Name: "ok"}, epoch); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
