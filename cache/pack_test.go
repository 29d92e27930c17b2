package cache

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPackRoundTrip: what a build put or used is what the next build's pack
// holds, and nothing else; a torn pack is empty; large blobs go to Entries.
func TestPackRoundTrip(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	name := key(100)[32:]
	p := c.Entries().Pack(name)
	p.PutSmall(key(1), []byte("blob one"))
	p.PutSmall(key(2), []byte("blob two"))
	big := bytes.Repeat([]byte("x"), packMaxBlob+1)
	p.PutSmall(key(3), big)
	p.Close()
	if b, ok := c.Entries().Get(key(3)); !ok || !bytes.Equal(b, big) {
		t.Fatal("a blob over packMaxBlob did not go to the entry store")
	}

	p = c.Entries().Pack(name)
	if b, ok := p.GetSmall(key(1)); !ok || string(b) != "blob one" {
		t.Fatalf("GetSmall(1) = %q, %v", b, ok)
	}
	if _, ok := p.old[key(3)]; ok {
		t.Fatal("a large blob is in the pack")
	}

	p.PutSmall(key(4), []byte("blob four"))
	p.Close() // used 1 and put 4: 2 is dropped

	p = c.Entries().Pack(name)
	for i, want := range map[int]bool{1: true, 2: false, 4: true} {
		if _, ok := p.GetSmall(key(i)); ok != want {
			t.Errorf("after the second build: blob %d in the pack = %v, want %v", i, ok, want)
		}
	}
	p.Close()

	path := filepath.Join(c.Dir, "entries", "packs", name+".pack")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-3], 0o644)
	if _, ok := c.Entries().Pack(name).GetSmall(key(1)); ok {
		t.Fatal("a torn pack gave a blob")
	}
	if p := c.Entries().Pack("../../etc/passwd"); p.path != "" {
		t.Fatalf("a pack name that is not hex made the path %q", p.path)
	}
}

// TestPrunePacks: a pack no build used for PacksMaxAge goes; a recent one stays.
func TestPrunePacks(t *testing.T) {
	c, _ := Open(t.TempDir())
	for i, age := range []time.Duration{time.Hour, PacksMaxAge + time.Hour} {
		p := c.Entries().Pack(key(200 + i)[32:])
		p.PutSmall(key(i), []byte("b"))
		p.Close()
		old := time.Now().Add(-age)
		os.Chtimes(p.path, old, old)
	}
	c.Entries().Prune(EntriesMaxBytes, EntriesMaxAge, time.Now())
	left, _ := os.ReadDir(filepath.Join(c.Dir, "entries", "packs"))
	if len(left) != 1 || left[0].Name() != key(200)[32:]+".pack" {
		t.Fatalf("packs left: %v, want only the recent one", left)
	}
}

// TestMemoFileRoundTrip: the binary memo keeps every entry, and a damaged one
// reads as empty (a rehash, never a wrong sum).
func TestMemoFileRoundTrip(t *testing.T) {
	m := map[string]memoEntry{}
	for i := range 50 {
		s := sha256.Sum256([]byte{byte(i)})
		m[filepath.Join("/src", "d", string(rune('a'+i%26)), key(i))] = memoEntry{Size: int64(i * 1000), Mtime: time.Now().UnixNano() - int64(i), Ino: uint64(i) << 40, Sum: s}
	}
	b := encodeMemo(m)
	got := decodeMemo(b)
	if len(got) != len(m) {
		t.Fatalf("%d entries back, want %d", len(got), len(m))
	}
	for k, v := range m {
		if got[k] != v {
			t.Fatalf("%s: %+v, want %+v", k, got[k], v)
		}
	}
	for _, bad := range [][]byte{b[:len(b)/2], append(bytes.Clone(b[:40]), b[41:]...), nil, []byte("LPH1")} {
		if len(decodeMemo(bad)) != 0 {
			t.Error("a damaged memo gave entries")
		}
	}
}

// TestKnown: a sum is known for exactly the stat data it was hashed with.
func TestKnown(t *testing.T) {
	c, _ := Open(t.TempDir())
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("content"), 0o644)
	h := c.NewHasher()
	if _, err := h.Path(f); err != nil {
		t.Fatal(err)
	}
	h.Save()
	st, _ := os.Lstat(f)
	want := sha256.Sum256([]byte("content"))
	if got := c.NewHasher().Known(f, st); !bytes.Equal(got, want[:]) {
		t.Fatalf("Known = %x, want %x", got, want)
	}
	os.WriteFile(f, []byte("changed"), 0o644)
	later := time.Now().Add(time.Second)
	os.Chtimes(f, later, later)
	st, _ = os.Lstat(f)
	if got := c.NewHasher().Known(f, st); got != nil {
		t.Fatalf("Known after a change = %x, want nil", got)
	}
}

// A build puts at most packBudget bytes in its pack; the rest goes to the entry
// store and is still found.
func TestPackBudget(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	name := key(200)[32:]
	p := c.Entries().Pack(name)
	blob := bytes.Repeat([]byte("y"), packMaxBlob)
	n := packBudget/packMaxBlob + 3
	for i := range n {
		p.PutSmall(key(1000+i), blob)
	}
	p.Close()
	p = c.Entries().Pack(name)
	inPack := 0
	for i := range n {
		if _, ok := p.old[key(1000+i)]; ok {
			inPack++
		}
		b, ok := p.GetSmall(key(1000 + i))
		if !ok {
			b, ok = p.Get(key(1000 + i))
		}
		if !ok || !bytes.Equal(b, blob) {
			t.Fatalf("blob %d lost", i)
		}
	}
	if inPack != packBudget/packMaxBlob {
		t.Errorf("%d blobs in the pack, want the %d its budget holds", inPack, packBudget/packMaxBlob)
	}
}
