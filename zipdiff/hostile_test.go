package zipdiff

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"
)

// zip64End is the 98-byte file of the issue: a zip64 end record whose central
// directory offset and size are both 2^62, its locator and an end record that
// defers to it. It once made readEnd allocate 2^62 bytes.
func zip64End(offset, size, locOffset uint64) []byte {
	le := binary.LittleEndian
	var b bytes.Buffer
	w := func(v ...any) {
		for _, x := range v {
			binary.Write(&b, le, x)
		}
	}
	w(uint32(sigZip64EOCD), uint64(44), uint16(45), uint16(45), uint32(0), uint32(0), uint64(1), uint64(1), size, offset)
	w(uint32(sigZip64Locate), uint32(0), locOffset, uint32(1))
	w(uint32(sigEOCD), uint16(0), uint16(0), uint16(0xffff), uint16(0xffff), uint32(0xffffffff), uint32(0xffffffff), uint16(0))
	return b.Bytes()
}

func validZip(t testing.TB) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.Create("a.txt")
	f.Write([]byte("hello"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHostileRecords(t *testing.T) {
	good := validZip(t)
	// The local header offset of the only entry, in its central record.
	cd := int(binary.LittleEndian.Uint32(good[len(good)-6:]))
	withCentral := func(at int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[cd+at:], v)
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"zip64 offset and size 2^62", zip64End(1<<62, 1<<62, 0), "a: central directory of 4611686018427387904 bytes at offset 4611686018427387904 lies outside the 98-byte file"},
		{"zip64 size wraps", zip64End(8, 1<<63|1<<62, 0), "a: central directory of 13835058055282163712 bytes at offset 8 lies outside the 98-byte file"},
		{"zip64 locator past the file", zip64End(0, 0, 1<<63), "a: zip64 locator points to offset 9223372036854775808, where no zip64 end record fits before the locator at 56"},
		{"zip64 locator at the locator", zip64End(0, 0, 40), "a: zip64 locator points to offset 40, where no zip64 end record fits before the locator at 56"},
		{"local offset past the file", withCentral(42, 0xfffffff0), `a: entry "a.txt": local header offset 4294967280 lies outside the ` + itoa(len(good)) + `-byte file`},
		{"compressed size past the file", withCentral(20, 0xfffffff0), `a: entry "a.txt": 4294967280 bytes of data at offset 35 run past the end of the ` + itoa(len(good)) + `-byte file`},
		{"too short", []byte("PK"), "a: not a zip file: too short"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DiffReaders(t.Context(), bytes.NewReader(tc.data), int64(len(tc.data)), bytes.NewReader(good), int64(len(good)))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant  %s", err, tc.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzReadArchive feeds arbitrary bytes to the raw reader and to a whole diff
// against a valid zip: neither may panic, allocate without bound or hang.
func FuzzReadArchive(f *testing.F) {
	good := validZip(f)
	f.Add(good)
	f.Add(zip64End(1<<62, 1<<62, 0))
	f.Add(zip64End(0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := readArchive(bytes.NewReader(b), int64(len(b))); err == nil {
			for _, e := range a.entries {
				if e.end() > int64(len(b)) || e.dataOffset < 0 {
					t.Fatalf("entry %q ends at %d in a %d-byte file", e.name, e.end(), len(b))
				}
			}
		}
		DiffReaders(t.Context(), bytes.NewReader(b), int64(len(b)), bytes.NewReader(good), int64(len(good)))
	})
}
