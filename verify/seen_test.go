package verify

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"hash/crc32"
	"strings"
	"sync"
	"testing"

	"github.com/layerpack/layerpack/elfinfo"
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

// memELF is an ELFMemo in memory that counts its calls.
type memELF struct {
	mu       sync.Mutex
	m        map[string]*elfinfo.Info
	gets     int
	hits     int
	puts     int
	override *elfinfo.Info // returned for every hit when set
}

func (m *memELF) Get(sum []byte) (*elfinfo.Info, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	i, ok := m.m[string(sum)]
	if ok {
		m.hits++
		if m.override != nil {
			i = m.override
		}
	}
	return i, ok
}

func (m *memELF) Put(sum []byte, info *elfinfo.Info) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	m.m[string(sum)] = info
}

// TestELFMemo: an ELF entry whose content the writer hashed is inspected once and
// then answered from the memo, with the same findings; an entry that differs from
// what was seen is read again whatever the memo holds.
func TestELFMemo(t *testing.T) {
	files := []file{{name: "lib/libarm.so", data: arm64so()}, {name: "lib/libx.so", data: x86so()}, {name: "a.txt", data: "a"}}
	seen := func(fs []file) *Seen {
		s := seenOf(fs)
		for _, f := range fs {
			sum := sha256.Sum256([]byte(f.data))
			s.Hashed(f.name, sum[:])
		}
		return s
	}
	opt := Options{Arch: lambda.X86_64}
	want := messages(check(t, opt, files...).Findings)
	if !strings.Contains(want, "libarm.so") {
		t.Fatalf("the arm64 library in an x86_64 layer should be a finding:\n%s", want)
	}
	memo := &memELF{m: map[string]*elfinfo.Info{}}
	opt.Seen, opt.ELFMemo = seen(files), memo
	if got := messages(check(t, opt, files...).Findings); got != want {
		t.Errorf("first check with the memo:\n%s\nwant:\n%s", got, want)
	}
	if memo.puts != 2 || memo.hits != 0 {
		t.Fatalf("first check: %d puts, %d hits; want 2 puts (one per ELF file), no hit", memo.puts, memo.hits)
	}
	opt.Seen = seen(files)
	if got := messages(check(t, opt, files...).Findings); got != want {
		t.Errorf("second check, from the memo:\n%s\nwant:\n%s", got, want)
	}
	if memo.hits != 2 {
		t.Fatalf("second check: %d hits, want 2", memo.hits)
	}
	// The memo's answer is what counts (which proves the file was not read) ...
	x86, _ := elfinfo.Inspect(strings.NewReader(x86so()))
	memo.override = x86
	opt.Seen = seen(files)
	if got := messages(check(t, opt, files...).Findings); strings.Contains(got, "libarm.so") {
		t.Errorf("with the memo saying x86_64, the arm64 library was still reported:\n%s", got)
	}
	// ... unless the zip's entry is not what the writer saw.
	opt.Seen = seen([]file{{name: "lib/libarm.so", data: arm64so() + "x"}, files[1], files[2]})
	if got := messages(check(t, opt, files...).Findings); got != want {
		t.Errorf("an entry that differs from what was seen, from the memo:\n%s\nwant (a full read):\n%s", got, want)
	}
}
