package cache_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/zipper"
)

// TestEntriesWithZipper: the zipper on the on-disk store writes the archive a
// clean Write does, with the store empty, full, and with its blob files deleted,
// truncated or garbled as a crash or a full disk could leave them.
func TestEntriesWithZipper(t *testing.T) {
	var entries []zipper.Entry
	for i := range 40 {
		var data string
		switch i % 4 {
		case 0:
			data = strings.Repeat(fmt.Sprintf("exports.v%d = %d;\n", i, i), 400) // compressible
		case 1:
			b := make([]byte, 6000)
			x := uint32(i + 1)
			for j := range b {
				x = x*1664525 + 1013904223
				b[j] = byte(x >> 24)
			}
			data = string(b) // stored: deflate does not shrink it
		case 2:
			data = strings.Repeat("big file line\n", 100000+i) // over 1 MiB: streamed
		default:
			data = fmt.Sprintf("small %d\n", i) // under the reuse size
		}
		entries = append(entries, zipper.Entry{Name: fmt.Sprintf("f/%02d.txt", i), Mode: 0o644, Size: int64(len(data)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }})
	}
	write := func(r zipper.Reuse) []byte {
		t.Helper()
		var buf bytes.Buffer
		opt := zipper.Options{Level: 6}
		if r != nil {
			opt.Reuse = r
		}
		if _, err := zipper.Write(t.Context(), &buf, entries, opt); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	want := write(nil)
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(c.Dir, "entries")
	blobs := func() []string {
		var ps []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
				ps = append(ps, p)
			}
			return nil
		})
		return ps
	}
	if !bytes.Equal(write(c.Entries()), want) {
		t.Fatal("empty store: archive differs")
	}
	stored := blobs()
	if len(stored) < 20 {
		t.Fatalf("%d blobs stored, want one for each of the 30 files of 4 KiB or more, less shared contents", len(stored))
	}
	if !bytes.Equal(write(c.Entries()), want) {
		t.Fatal("full store: archive differs")
	}
	for i, p := range stored {
		switch i % 3 {
		case 0:
			os.Remove(p)
		case 1:
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()/2)
		case 2:
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o644)
		}
	}
	if !bytes.Equal(write(c.Entries()), want) {
		t.Fatal("damaged store: archive differs")
	}
	if n := len(blobs()); n != len(stored) {
		t.Errorf("%d blobs after the damaged run, want %d (each bad one replaced)", n, len(stored))
	}
	if !bytes.Equal(write(c.Entries()), want) {
		t.Fatal("repaired store: archive differs")
	}
}

// TestLargeBlobsWithZipper: entries whose compressed form is over the zipper's
// in-memory limit are kept as blob files, streamed back (also for entries with a
// known Sum, not read at all), and a damaged one is compressed again: the
// archive is the clean one each time.
func TestLargeBlobsWithZipper(t *testing.T) {
	var entries []zipper.Entry
	opened := map[string]int{}
	for i := range 3 {
		// Random hex compresses to about 55%: 10 MB give more than 4 MiB.
		var b strings.Builder
		x := uint32(i + 7)
		for b.Len() < 10<<20 {
			x = x*1664525 + 1013904223
			y := x*1664525 + 1013904223
			x = y*1664525 + 1013904223
			fmt.Fprintf(&b, "%08x%08x%08x\n", x, y, x^y)
		}
		data := b.String()
		sum := sha256.Sum256([]byte(data))
		name := fmt.Sprintf("lib/big%d.so", i)
		entries = append(entries, zipper.Entry{Name: name, Mode: 0o644, Size: int64(len(data)), Sum: sum[:],
			Open: func() (io.ReadCloser, error) { opened[name]++; return io.NopCloser(strings.NewReader(data)), nil }})
	}
	write := func(r zipper.Reuse) []byte {
		t.Helper()
		var buf bytes.Buffer
		opt := zipper.Options{Level: 6, Workers: 1, InspectLess: func(string) bool { return true },
			Inspect: func(string, int64, uint32, []byte) {}}
		if r != nil {
			opt.Reuse = r
		}
		if _, err := zipper.Write(t.Context(), &buf, entries, opt); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	want := write(nil)
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(write(c.Entries()), want) {
		t.Fatal("empty store: archive differs")
	}
	var blobs []string
	filepath.WalkDir(filepath.Join(c.Dir, "entries"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			if st, _ := d.Info(); st.Size() > 4<<20 {
				blobs = append(blobs, p)
			}
		}
		return nil
	})
	if len(blobs) != 3 {
		t.Fatalf("%d blob files over 4 MiB stored, want 3", len(blobs))
	}
	clear(opened)
	if !bytes.Equal(write(c.Entries()), want) {
		t.Fatal("full store: archive differs")
	}
	if len(opened) != 0 {
		t.Errorf("with their sums known and their blobs stored, files were opened: %v", opened)
	}
	st, _ := os.Stat(blobs[0])
	os.Truncate(blobs[0], st.Size()-10)
	b, _ := os.ReadFile(blobs[1])
	b[len(b)/2] ^= 0x01
	os.WriteFile(blobs[1], b, 0o644)
	clear(opened)
	if !bytes.Equal(write(c.Entries()), want) {
		t.Fatal("damaged store: archive differs")
	}
	if len(opened) != 2 {
		t.Errorf("after damaging two blobs, %d files were read again, want 2: %v", len(opened), opened)
	}
}
