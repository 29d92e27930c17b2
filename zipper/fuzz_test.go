package zipper

import (
	"bytes"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// fuzzInput turns bytes into entries: mostly valid trees built from a small
// alphabet of name elements (so duplicates, file/folder clashes and escaping
// symlinks happen too), now and then a raw name, with contents that are either
// raw bytes or repeated (compressible) ones.
type fuzzInput struct {
	b []byte
}

func (f *fuzzInput) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *fuzzInput) take(n int) []byte {
	n = min(n, len(f.b))
	p := f.b[:n]
	f.b = f.b[n:]
	return p
}

var fuzzElems = []string{"a", "b", "node_modules", "é", "日本", "x.js", ".bin", "-", "A", "a.b", "..", "."}

func (f *fuzzInput) name() string {
	c := f.byte()
	if c >= 0xf0 { // raw bytes, mostly invalid
		return string(f.take(int(c & 0x0f)))
	}
	depth := 1 + int(c%3)
	elems := make([]string, depth)
	for i := range elems {
		e := f.byte()
		if e >= 250 { // rare: "." or ".."
			elems[i] = fuzzElems[10+int(e%2)]
		} else {
			elems[i] = fuzzElems[int(e)%10]
		}
	}
	return strings.Join(elems, "/")
}

func (f *fuzzInput) entries() []Entry {
	n := int(f.byte() % 12)
	var es []Entry
	for range n {
		if len(f.b) == 0 {
			break
		}
		kind := f.byte()
		e := Entry{Name: f.name(), Mode: fs.FileMode(f.byte()) & 0o777}
		switch kind % 16 {
		case 0, 8:
			e.Mode |= fs.ModeDir
			if kind&0x10 != 0 {
				e.Name += "/"
			}
		case 1, 9:
			e.Mode = fs.ModeSymlink
			e.Link = strings.Repeat("../", int(kind>>6)) + f.name()
		case 2:
			e.Mode |= fs.ModeNamedPipe
		default:
			data := f.take(int(f.byte() % 80))
			if rep := int(kind >> 4); rep > 1 {
				data = bytes.Repeat(data, rep*50)
			}
			s := string(data)
			e.Size = int64(len(s))
			e.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
		}
		es = append(es, e)
	}
	return es
}

// FuzzRoundTrip writes random entries and checks that the archive parses by
// the APPNOTE (parseRaw) and that archive/zip reads back every name, mode and
// byte. Invalid input must give an error, never a panic. Small limits send
// files through every path: in memory, spilled to a file, read twice.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{3, 3, 0, 1, 0o644 & 0xff, 5, 'h', 'e', 'l', 'l', 'o', 1, 2, 5, 6, 7, 0, 0, 3, 7, 0o7, 200})
	f.Add([]byte{5, 0x33, 2, 3, 4, 0xed, 40, 'a', 'b', 'c', 'd', 1, 0, 8, 0, 0x10, 0, 2, 1, 0, 0})
	f.Add([]byte{4, 0x21, 1, 3, 0, 1, 0x23, 2, 2, 2, 0, 0x97, 1, 'A', 0, 3, 0x83, 0xff, 0xfe, 0x80})
	f.Add(bytes.Repeat([]byte{7, 0x43, 2, 1, 2, 0xff, 250}, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{b: data}
		ctl := in.byte()
		entries := in.entries()
		opt := Options{Level: int(ctl % 10), Workers: 1 + int(ctl>>4)%3}
		lim := limits{small: 64, budget: 1 << 10, spillMem: 128, chunk: 32, lookahead: 4}
		if ctl&0x40 != 0 {
			lim = defaultLimits
		}
		var buf bytes.Buffer
		st, err := write(t.Context(), &buf, entries, opt, lim)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "zipper: entry ") {
				t.Fatalf("error %q does not name an entry", err)
			}
			return
		}
		exp := model(entries, readEntry)
		if st.Entries != len(exp) || st.ZippedSize != int64(buf.Len()) {
			t.Fatalf("stats %+v for %d entries, %d bytes", st, len(exp), buf.Len())
		}
		checkArchive(t, buf.Bytes(), minDOSTime, exp)
	})
}
