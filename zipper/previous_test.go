package zipper

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// writePrev writes entries to a file with an Index, optionally from prev, and
// returns the archive's bytes, its Previous for the next write and the stats.
func writePrev(t *testing.T, dir string, entries []Entry, opt Options, lim limits) ([]byte, *Previous, Stats) {
	t.Helper()
	f, err := os.CreateTemp(dir, "prev-*.zip")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	opt.Index = true
	st, err := write(t.Context(), f, entries, opt, lim)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := st.Index.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPrevious(f, idx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b, p, st
}

// changeOne returns entries with the content of the file named name replaced.
func changeOne(entries []Entry, name, data string) []Entry {
	out := slices.Clone(entries)
	for i := range out {
		if out[i].Name == name {
			out[i].Size = int64(len(data))
			out[i].Sum = nil
			out[i].Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }
		}
	}
	return out
}

// TestPreviousSameBytes: an archive written from the previous one, with and
// without known sums, with one file changed, is byte for byte a clean Write's,
// and everything unchanged came from the previous archive.
func TestPreviousSameBytes(t *testing.T) {
	when := goldenTime(t)
	for _, tc := range []struct {
		name string
		lim  limits
	}{
		{"default limits", defaultLimits},
		{"tiny limits", tinyLimits(t.TempDir())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var mu sync.Mutex
			var opens []string
			base := memEntries(reuseTree)
			for _, sums := range []bool{false, true} {
				entries := base
				if sums {
					entries = withSums(base, &opens, &mu)
				}
				opt := Options{Level: 6, Time: when, Workers: 3}
				first, prev, st1 := writePrev(t, dir, entries, opt, tc.lim)
				var clean bytes.Buffer
				if _, err := write(t.Context(), &clean, entries, opt, tc.lim); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(first, clean.Bytes()) {
					t.Fatal("an Index changed the archive")
				}
				// Unchanged: everything with data is copied.
				opt.Previous = prev
				again, _, st2 := writePrev(t, dir, entries, opt, tc.lim)
				if !bytes.Equal(again, first) {
					t.Fatal("unchanged tree, from Previous: archive differs")
				}
				if st2.Copied == 0 || st2.Copied != st1.Index.Len() {
					t.Errorf("copied %d entries, want the %d indexed", st2.Copied, st1.Index.Len())
				}
				// One file changed: the rest still comes from the previous archive.
				changed := changeOne(entries, "copy/mid.js", textLines(2999))
				clean.Reset()
				if _, err := write(t.Context(), &clean, changed, Options{Level: 6, Time: when}, tc.lim); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				opens = nil
				mu.Unlock()
				got, _, st3 := writePrev(t, dir, changed, opt, tc.lim)
				if !bytes.Equal(got, clean.Bytes()) {
					t.Fatal("one file changed, from Previous: archive differs from a clean write")
				}
				if st3.Copied != st2.Copied-1 {
					t.Errorf("one file changed: copied %d entries, want %d", st3.Copied, st2.Copied-1)
				}
				if sums {
					mu.Lock()
					o := slices.Clone(opens)
					mu.Unlock()
					o = slices.DeleteFunc(o, func(n string) bool { return n == "data/empty.txt" }) // read to check it is still empty
					if len(o) != 0 {
						t.Errorf("with known sums, unchanged files were opened: %q", o)
					}
				}
			}
		})
	}
}

// TestPreviousDamaged: a previous archive whose data was garbled, or one made
// at another level, gives the clean archive still; garbled entries are
// compressed again.
func TestPreviousDamaged(t *testing.T) {
	when := goldenTime(t)
	dir := t.TempDir()
	entries := memEntries(reuseTree)
	opt := Options{Level: 6, Time: when}
	want, prev, st := writePrev(t, dir, entries, opt, defaultLimits)

	// Garble every byte of the data region past the first local header.
	bad := bytes.Clone(want)
	for i := 64; i < len(bad)*3/4; i += 7 {
		bad[i] ^= 0x5a
	}
	idx, _ := st.Index.MarshalBinary()
	path := filepath.Join(dir, "bad.zip")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	garbled, err := NewPrevious(f, idx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *Previous
		opt  Options
	}{
		{"garbled data", garbled, opt},
		{"other level", prev, Options{Level: 7, Time: when}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opt
			var clean bytes.Buffer
			if _, err := Write(t.Context(), &clean, entries, o); err != nil {
				t.Fatal(err)
			}
			o.Previous = tc.p
			var buf bytes.Buffer
			st, err := Write(t.Context(), &buf, entries, o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), clean.Bytes()) {
				t.Fatal("archive differs from a clean write")
			}
			if tc.name == "other level" && st.Copied != 0 {
				t.Errorf("copied %d entries from an archive of another level", st.Copied)
			}
			if tc.name == "garbled data" && st.Copied >= prev.idx.Len() {
				t.Errorf("copied %d of %d entries from a garbled archive", st.Copied, prev.idx.Len())
			}
		})
	}
}

// TestIndexDecode: a torn, garbled or foreign index is refused, as is an index
// of an archive of another size.
func TestIndexDecode(t *testing.T) {
	dir := t.TempDir()
	_, _, st := writePrev(t, dir, memEntries(reuseTree), Options{Level: 6, Time: goldenTime(t)}, defaultLimits)
	b, err := st.Index.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var x Index
	if err := x.UnmarshalBinary(b); err != nil || x.Len() != st.Index.Len() {
		t.Fatalf("round trip: %v, %d entries, want %d", err, x.Len(), st.Index.Len())
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], b[:len(b)/2], append([]byte("LPX0"), b[4:]...), bytes.Repeat([]byte{0xff}, 100)} {
		if err := new(Index).UnmarshalBinary(bad); err == nil {
			t.Errorf("a damaged index of %d bytes was accepted", len(bad))
		}
	}
	flipped := bytes.Clone(b)
	flipped[len(flipped)/2] ^= 1
	if err := new(Index).UnmarshalBinary(flipped); err == nil {
		t.Error("an index with a flipped bit was accepted")
	}
	other, err := os.CreateTemp(dir, "other-*.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.WriteString("not the archive")
	if _, err := NewPrevious(other, b); err == nil {
		t.Error("an index was paired with an archive of another size")
	}
}
