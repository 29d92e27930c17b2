package cache

import (
	"bytes"
	"os"
	"testing"
)

// TestLast: a record round-trips; a torn, garbled or missing one, and bad
// names or keys, read as none.
func TestLast(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := c.Entries()
	name, key := "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	if _, _, ok := e.Last(name); ok {
		t.Fatal("a record before any was put")
	}
	index := bytes.Repeat([]byte("index"), 1000)
	e.PutLast(name, key, index)
	k, got, ok := e.Last(name)
	if !ok || k != key || !bytes.Equal(got, index) {
		t.Fatalf("Last = %q, %d bytes, %v; want the record put", k, len(got), ok)
	}
	b, err := os.ReadFile(e.lastPath(name))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], b[:10], append(bytes.Clone(b[:20]), b[21:]...), {}} {
		if err := os.WriteFile(e.lastPath(name), bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := e.Last(name); ok {
			t.Errorf("a damaged record of %d bytes was read", len(bad))
		}
	}
	flipped := bytes.Clone(b)
	flipped[len(flipped)/2] ^= 1
	os.WriteFile(e.lastPath(name), flipped, 0o644)
	if _, _, ok := e.Last(name); ok {
		t.Error("a record with a flipped bit was read")
	}
	e.PutLast("../escape", key, index)
	e.PutLast(name, "not/a/key", index)
	if _, _, ok := e.Last("../escape"); ok {
		t.Error("a record under a path name")
	}
	if k, _, ok := e.Last(name); ok && k == "not/a/key" {
		t.Error("a record with a bad key was stored")
	}
}
