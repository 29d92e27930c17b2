package verify

import (
	"archive/zip"
	"bytes"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/secrets"
)

// seenOf is the Seen a writer of files would have collected, and counts how
// many regular files it covers without a full read.
func seenOf(files []file) *Seen {
	s := NewSeen()
	for _, f := range files {
		if strings.HasSuffix(f.name, "/") {
			continue
		}
		d := []byte(f.data)
		s.Add(f.name, int64(len(d)), crc32.ChecksumIEEE(d), d[:min(len(d), secrets.HeadLimit)])
	}
	return s
}

// TestSeenSameFindings: checking from what the writer saw finds what a full read
// finds: secrets (allowed, listed in a RECORD, past the head), ELF and jars.
func TestSeenSameFindings(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	files := []file{
		{name: ".env", data: "DB_PASSWORD=hunter2\n"},
		{name: "nodejs/.npmrc", data: "//registry.npmjs.org/:_authToken=npm_0123456789\n"},
		{name: "allowed/.env", data: "A=b\n"},
		{name: "python/tornado-6.4.dist-info/RECORD", data: "tornado/test/test.key,sha256=x,10\n"},
		{name: "python/tornado/test/test.key", data: "-----BEGIN PRIVATE KEY-----\n"},
		{name: "python/app/deploy.key", data: "-----BEGIN PRIVATE KEY-----\n" + big},
		{name: "lib/big.txt", data: big + "-----BEGIN PRIVATE KEY-----\n"},
		{name: "lib/libarm.so", data: arm64so()},
		{name: "java/lib/native.jar", data: jar(t, file{name: "linux-arm64/libz.so", data: arm64so()})},
		{name: "nodejs/node_modules/x/index.js", data: "module.exports = 1\n"},
		{name: "empty.txt"},
	}
	opt := Options{Arch: lambda.X86_64, AllowSecrets: []string{"allowed/"}}
	full := check(t, opt, files...)
	if len(full.Findings) < 4 {
		t.Fatalf("the test layer should have findings:\n%s", messages(full.Findings))
	}
	opt.Seen = seenOf(files)
	fromSeen := check(t, opt, files...)
	if got, want := messages(fromSeen.Findings), messages(full.Findings); got != want {
		t.Errorf("with Seen:\n%s\nwant (a full read):\n%s", got, want)
	}
	if fromSeen.Entries != full.Entries || fromSeen.UnzippedSize != full.UnzippedSize {
		t.Errorf("report %+v, want %+v", fromSeen, full)
	}
}

// TestSeenSkipsInflating: entries the writer saw are not inflated again, and an
// entry that differs from what was seen is read in full.
func TestSeenSkipsInflating(t *testing.T) {
	files := []file{{name: "a.txt", data: "hello"}, {name: "b.txt", data: "world"}}
	b := zipBytes(t, files...)
	// Damage b.txt's compressed bytes: only a read of its data notices.
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	off, err := zr.File[1].DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(b)
	for i := off; i < off+int64(zr.File[1].CompressedSize64); i++ {
		bad[i] ^= 0xff
	}
	read := func(opt Options) string {
		zr, err := zip.NewReader(bytes.NewReader(bad), int64(len(bad)))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Reader(zr, opt)
		if err != nil {
			t.Fatal(err)
		}
		return messages(rep.Findings)
	}
	if got := read(Options{}); !strings.Contains(got, `[b.txt] "b.txt" cannot be read`) {
		t.Fatalf("a full read missed the damage:\n%s", got)
	}
	// The writer saw both files: trusted, nothing is inflated (and the damage,
	// which a real writer cannot cause, goes unseen: this proves the skip).
	if got := read(Options{Seen: seenOf(files)}); got != "" {
		t.Errorf("with both files seen:\n%s", got)
	}
	// The writer saw other content for b.txt: it is read in full.
	other := seenOf([]file{files[0], {name: "b.txt", data: "WORLD"}})
	if got := read(Options{Seen: other}); !strings.Contains(got, `[b.txt] "b.txt" cannot be read`) {
		t.Errorf("an entry that differs from what was seen was not read:\n%s", got)
	}
	// Nothing seen of b.txt: read in full.
	if got := read(Options{Seen: seenOf(files[:1])}); !strings.Contains(got, `[b.txt] "b.txt" cannot be read`) {
		t.Errorf("an entry not seen was not read:\n%s", got)
	}
	// A head shorter than needed is not trusted.
	short := NewSeen()
	short.Add("b.txt", 5, crc32.ChecksumIEEE([]byte("world")), []byte("wor"))
	short.Add("a.txt", 5, crc32.ChecksumIEEE([]byte("hello")), []byte("hello"))
	if got := read(Options{Seen: short}); !strings.Contains(got, `[b.txt] "b.txt" cannot be read`) {
		t.Errorf("an entry seen only in part was not read:\n%s", got)
	}
}
