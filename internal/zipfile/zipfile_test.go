package zipfile

import (
	"archive/zip"
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// countingReader counts the reads that reach the file.
type countingReader struct {
	r     io.ReaderAt
	reads int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.r.ReadAt(p, off)
}

// TestWindowMatchesFile reads at random offsets and lengths, sequential runs,
// jumps back, reads past the end and reads longer than the window: every
// answer (bytes, count, error) is the one the file itself gives.
func TestWindowMatchesFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 100, minWindow, 3*MaxWindow + 17} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		file := bytes.NewReader(data)
		w := NewWindow(file, int64(size))
		off := int64(0)
		for i := range 3000 {
			var n int
			switch rng.IntN(6) {
			case 0: // a jump anywhere, also past the end
				off = rng.Int64N(int64(size) + 10)
				n = 1 + rng.IntN(100) // os.File and bytes.Reader differ on empty reads
			case 1: // longer than the window
				n = MaxWindow + rng.IntN(1000)
			default: // the next bytes, as archive/zip reads headers
				off += int64(rng.IntN(3000))
				n = 30 + rng.IntN(200)
			}
			got, want := make([]byte, n), make([]byte, n)
			gn, gerr := w.ReadAt(got, off)
			wn, werr := file.ReadAt(want, off)
			if gn != wn || gerr != werr || !bytes.Equal(got[:gn], want[:wn]) {
				t.Fatalf("size %d, read %d: ReadAt(%d bytes, %d) = %d, %v; the file gives %d, %v", size, i, n, off, gn, gerr, wn, werr)
			}
			if off > int64(size) {
				off = 0
			}
		}
	}
	if _, err := NewWindow(bytes.NewReader(nil), 0).ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("a negative offset gave no error")
	}
}

// TestWindowFewReads: reading a zip's local headers one after another costs a
// few large reads, not one each; a short file (size larger than the data)
// ends with io.EOF.
func TestWindowFewReads(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 2000 {
		w, err := zw.Create(string(rune('a'+i%26)) + "/" + string(rune('a'+i/26%26)) + string(rune('0'+i%10)) + "/f")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(bytes.Repeat([]byte{byte(i)}, 500))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	c := &countingReader{r: bytes.NewReader(buf.Bytes())}
	zr, err := zip.NewReader(NewWindow(c, int64(buf.Len())), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if _, err := f.DataOffset(); err != nil {
			t.Fatal(err)
		}
	}
	if c.reads > 40 {
		t.Errorf("%d reads of the file for %d entries; want a few dozen at most", c.reads, len(zr.File))
	}
	w := NewWindow(bytes.NewReader([]byte("abc")), 10)
	p := make([]byte, 5)
	if n, err := w.ReadAt(p, 1); n != 2 || err != io.EOF {
		t.Errorf("reading past the data: %d, %v; want 2, EOF", n, err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "none.zip")); !os.IsNotExist(err) {
		t.Errorf("a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.zip")
	os.WriteFile(bad, []byte("not a zip"), 0o644)
	if _, err := Open(bad); err == nil || err.Error() != "opening "+bad+": zip: not a valid zip file" {
		t.Errorf("not a zip: %v", err)
	}
}
