package zipper

import (
	"archive/zip"
	"bytes"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"testing"
)

// TestInspect: every regular file is reported once, with the size, CRC and head
// the archive holds, whether compressed, stored, spilled, reread or reused.
func TestInspect(t *testing.T) {
	when := goldenTime(t)
	tree := append(append([]node(nil), reuseTree...), node{path: "secret/.env", perm: 0o600, data: "AWS_SECRET_ACCESS_KEY=x\n"})
	store := newMemReuse()
	for _, tc := range []struct {
		name  string
		lim   limits
		reuse Reuse
	}{
		{"default limits", defaultLimits, nil},
		{"tiny limits", tinyLimits(t.TempDir()), nil},
		{"empty store", defaultLimits, store},
		{"full store", defaultLimits, store},
		{"tiny limits, store", tinyLimits(t.TempDir()), store},
		{"tiny limits, full store", tinyLimits(t.TempDir()), store},
	} {
		type seen struct {
			size int64
			crc  uint32
			head string
			n    int
		}
		var mu sync.Mutex
		got := map[string]*seen{}
		opt := Options{Level: 6, Time: when, Workers: 3, Reuse: tc.reuse, Store: func(n string) bool { return strings.HasSuffix(n, ".bin") }}
		opt.Inspect = func(name string, size int64, crc uint32, head []byte) {
			mu.Lock()
			defer mu.Unlock()
			s := got[name]
			if s == nil {
				s = &seen{}
				got[name] = s
			}
			s.size, s.crc, s.head = size, crc, string(head)
			s.n++
		}
		var buf bytes.Buffer
		if _, err := write(t.Context(), &buf, memEntries(tree), opt, tc.lim); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		files := 0
		for _, f := range zr.File {
			if !f.Mode().IsRegular() {
				if got[f.Name] != nil {
					t.Errorf("%s: %s (%v) was inspected", tc.name, f.Name, f.Mode())
				}
				continue
			}
			files++
			s := got[f.Name]
			if s == nil {
				t.Errorf("%s: %s not inspected", tc.name, f.Name)
				continue
			}
			rc, _ := f.Open()
			data, _ := io.ReadAll(rc)
			head := data[:min(len(data), InspectHead)]
			if s.n != 1 || s.size != int64(f.UncompressedSize64) || s.crc != f.CRC32 || s.crc != crc32.ChecksumIEEE(data) || s.head != string(head) {
				t.Errorf("%s: %s: inspected %d times, size %d crc %08x head %d bytes; archive: size %d crc %08x head %d bytes",
					tc.name, f.Name, s.n, s.size, s.crc, len(s.head), f.UncompressedSize64, f.CRC32, len(head))
			}
		}
		if len(got) != files {
			t.Errorf("%s: %d names inspected, %d regular files in the archive", tc.name, len(got), files)
		}
	}
	if store.hits == 0 {
		t.Error("the store was never used")
	}
}
