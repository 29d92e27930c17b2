package zipdiff

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var when = time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)

// ent describes one entry of a test zip; build turns a list of them into bytes.
type ent struct {
	name    string
	data    string
	mode    fs.FileMode
	method  uint16
	mod     time.Time
	extra   []byte
	comment string
	flags   uint16
	// raw entries go through CreateRaw, which keeps creator and reader versions
	// and writes no extended timestamp.
	raw              bool
	creator, reader  uint16
	external         uint32
	noDataDescriptor bool
}

func base() []ent {
	return []ent{
		{name: "python/", mode: fs.ModeDir | 0o755, method: zip.Store, mod: when},
		{name: "python/a.py", data: "print('a')\n", mode: 0o644, method: zip.Deflate, mod: when},
		{name: "python/b.py", data: "print('b')\n", mode: 0o644, method: zip.Deflate, mod: when},
	}
}

type zipOpt func(w *zip.Writer, buf *bytes.Buffer)

func build(t *testing.T, ents []ent, opts ...zipOpt) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, o := range opts {
		o(w, &buf)
	}
	for _, e := range ents {
		fh := &zip.FileHeader{Name: e.name, Method: e.method, Modified: e.mod, Extra: e.extra, Comment: e.comment, Flags: e.flags}
		var fw io.Writer
		var err error
		if e.raw {
			fh.Modified = time.Time{}
			fh.ModifiedDate, fh.ModifiedTime = 0x5822, 0x1883
			fh.CreatorVersion, fh.ReaderVersion, fh.ExternalAttrs = e.creator, e.reader, e.external
			fh.CRC32 = crc32.ChecksumIEEE([]byte(e.data))
			fh.CompressedSize64, fh.UncompressedSize64 = uint64(len(e.data)), uint64(len(e.data))
			fh.Method = zip.Store
			if !e.noDataDescriptor {
				fh.Flags |= 0x8
			}
			fw, err = w.CreateRaw(fh)
		} else {
			if e.mode != 0 {
				fh.SetMode(e.mode)
			}
			if e.creator != 0 || e.external != 0 {
				fh.CreatorVersion, fh.ExternalAttrs = e.creator, e.external
			}
			fw, err = w.CreateHeader(fh)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(fw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func diff(t *testing.T, a, b []byte) []Difference {
	t.Helper()
	ds, err := DiffReaders(t.Context(), bytes.NewReader(a), int64(len(a)), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("DiffReaders: %v", err)
	}
	return ds
}

func render(ds []Difference) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s [%s] %s\n", d.Property, d.Entry, d.Message)
	}
	return b.String()
}

// change returns base() with f applied to the entry named name.
func change(name string, f func(*ent)) []ent {
	ents := base()
	for i := range ents {
		if ents[i].name == name {
			f(&ents[i])
		}
	}
	return ents
}

func crcOf(s string) string { return fmt.Sprintf("0x%08x", crc32.ChecksumIEEE([]byte(s))) }

func TestIdentical(t *testing.T) {
	a, b := build(t, base()), build(t, base())
	if !bytes.Equal(a, b) {
		t.Fatal("archive/zip is not deterministic here; the test needs it")
	}
	if ds := diff(t, a, b); ds != nil {
		t.Errorf("identical zips: %s", render(ds))
	}
}

func TestOneProperty(t *testing.T) {
	long := strings.Repeat("the quick brown fox jumps over the lazy dog; ", 200)
	level := func(l int) zipOpt {
		return func(w *zip.Writer, _ *bytes.Buffer) {
			w.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) { return flate.NewWriter(out, l) })
		}
	}
	withLong := func() []ent {
		return change("python/a.py", func(e *ent) { e.data = long })
	}
	tests := []struct {
		name string
		a, b []byte
		want string
	}{
		{
			name: "content",
			a:    build(t, base()),
			b:    build(t, change("python/b.py", func(e *ent) { e.data = "print('B')\n" })),
			want: "content [python/b.py] content differs: a has 11 bytes (CRC-32 " + crcOf("print('b')\n") + "), b has 11 bytes (CRC-32 " + crcOf("print('B')\n") + ")\n",
		},
		{
			name: "size",
			a:    build(t, base()),
			b:    build(t, change("python/b.py", func(e *ent) { e.data = "print('bb')\n" })),
			want: "content [python/b.py] content differs: a has 11 bytes (CRC-32 " + crcOf("print('b')\n") + "), b has 12 bytes (CRC-32 " + crcOf("print('bb')\n") + ")\n",
		},
		{
			name: "mode",
			a:    build(t, base()),
			b:    build(t, change("python/a.py", func(e *ent) { e.mode = 0o755 })),
			want: "mode [python/a.py] mode differs: a 0644 (-rw-r--r--), b 0755 (-rwxr-xr-x)\n",
		},
		{
			name: "modification time",
			a:    build(t, base()),
			b:    build(t, change("python/a.py", func(e *ent) { e.mod = when.Add(2 * time.Second) })),
			want: "modified [python/a.py] modification time differs: a 2024-01-02 03:04:06 UTC, b 2024-01-02 03:04:08 UTC\n",
		},
		{
			name: "MS-DOS time only (zipped in another time zone)",
			a:    build(t, base()),
			b:    build(t, change("python/a.py", func(e *ent) { e.mod = when.In(time.FixedZone("CEST", 2*3600)) })),
			want: "dos-time [python/a.py] MS-DOS time differs: a 2024-01-02 03:04:06, b 2024-01-02 05:04:06 (the local time of the zipping machine; the exact times agree)\n",
		},
		{
			name: "extra field",
			a:    build(t, base()),
			b:    build(t, change("python/a.py", func(e *ent) { e.extra = []byte{0x75, 0x78, 3, 0, 1, 4, 0} })),
			want: "extra [python/a.py] extra fields differ: a 0x5455 extended timestamp (5 bytes); b 0x7875 Unix UID/GID (3 bytes), 0x5455 extended timestamp (5 bytes)\n",
		},
		{
			name: "extra field content",
			a:    build(t, change("python/a.py", func(e *ent) { e.extra = []byte{0x75, 0x78, 3, 0, 1, 4, 0} })),
			b:    build(t, change("python/a.py", func(e *ent) { e.extra = []byte{0x75, 0x78, 3, 0, 1, 4, 1} })),
			want: "extra [python/a.py] extra fields differ: 0x7875 Unix UID/GID has other bytes (3 bytes in both)\n",
		},
		{
			name: "compression method",
			a:    build(t, base()),
			b:    build(t, change("python/a.py", func(e *ent) { e.method = zip.Store })),
			want: "method [python/a.py] compression method differs: a deflate (8), b store (0)\n",
		},
		{
			name: "compression level",
			a:    build(t, withLong(), level(flate.BestSpeed)),
			b:    build(t, withLong(), level(flate.BestCompression)),
			want: "", // filled in below from the sizes archive/zip produced
		},
		{
			name: "flags",
			a:    build(t, base()),
			b:    build(t, change("python/a.py", func(e *ent) { e.flags = 0x2 })),
			want: "flags [python/a.py] general purpose flags differ: a 0x0008 (data descriptor), b 0x000a (maximum compression, data descriptor)\n",
		},
		{
			name: "order",
			a:    build(t, base()),
			b:    build(t, []ent{base()[0], base()[2], base()[1]}),
			want: "order [python/a.py] order differs: entry 2 of 3 in a, entry 3 of 3 in b\n",
		},
		{
			name: "only in a",
			a:    build(t, base()),
			b:    build(t, base()[:2]),
			want: "only-in-a [python/b.py] only in a\n",
		},
		{
			name: "only in b",
			a:    build(t, base()[:2]),
			b:    build(t, base()),
			want: "only-in-b [python/b.py] only in b\n",
		},
		{
			name: "entry comment",
			a:    build(t, base()),
			b:    build(t, change("python/b.py", func(e *ent) { e.comment = "generated" })),
			want: `comment [python/b.py] comment differs: a "", b "generated"` + "\n",
		},
		{
			name: "external attributes with the same mode",
			a:    build(t, change("python/a.py", func(e *ent) { e.mode, e.creator, e.external = 0, 3<<8, 0o100644<<16 })),
			b:    build(t, change("python/a.py", func(e *ent) { e.mode, e.creator, e.external = 0, 3<<8, 0o644<<16 })),
			want: "external-attrs [python/a.py] external attributes differ: a 0x81a40000, b 0x01a40000 (the same mode 0644 (-rw-r--r--))\n",
		},
		{
			name: "creator",
			a:    build(t, []ent{{name: "a.txt", data: "a", raw: true, creator: 0x0014, reader: 20}}),
			b:    build(t, []ent{{name: "a.txt", data: "a", raw: true, creator: 0x0a14, reader: 20}}),
			want: "creator [a.txt] creator differs: a MS-DOS, zip 2.0 (0x0014), b Windows NTFS, zip 2.0 (0x0a14)\n",
		},
		{
			name: "version needed",
			a:    build(t, []ent{{name: "a.txt", data: "a", raw: true, creator: 0x0314, external: 0o100644 << 16, reader: 20}}),
			b:    build(t, []ent{{name: "a.txt", data: "a", raw: true, creator: 0x0314, external: 0o100644 << 16, reader: 45}}),
			want: "reader-version [a.txt] version needed to extract differs: a 2.0 (20), b 4.5 (45)\n",
		},
		{
			name: "archive comment",
			a:    build(t, base()),
			b:    build(t, base(), func(w *zip.Writer, _ *bytes.Buffer) { w.SetComment("built by layerpack") }),
			want: `archive-comment [] archive comment differs: a "", b "built by layerpack"` + "\n",
		},
		{
			name: "data before the first entry",
			a:    build(t, base()),
			b: build(t, base(), func(w *zip.Writer, buf *bytes.Buffer) {
				buf.WriteString("#!/bin/sh\nexit 0\n")
				w.SetOffset(int64(buf.Len()))
			}),
			want: "prefix [] data before the first entry differs: a has 0 bytes, b has 17 bytes\n",
		},
		{
			name: "data after the end record",
			a:    build(t, base()),
			b:    append(build(t, base()), "junk\n"...),
			want: "trailing [] data after the end record differs: a has 0 bytes, b has 5 bytes\n",
		},
		{
			name: "different bytes nothing else names",
			a: build(t, base(), func(w *zip.Writer, buf *bytes.Buffer) {
				buf.WriteString("AAAA")
				w.SetOffset(4)
			}),
			b: build(t, base(), func(w *zip.Writer, buf *bytes.Buffer) {
				buf.WriteString("AABA")
				w.SetOffset(4)
			}),
			want: "", // filled in below: the file sizes
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			switch tt.name {
			case "compression level":
				sa, sb := compressedSize(t, tt.a, "python/a.py"), compressedSize(t, tt.b, "python/a.py")
				if sa == sb {
					t.Fatalf("both levels gave %d bytes; pick other data", sa)
				}
				want = fmt.Sprintf("compressed [python/a.py] compressed data differs: a %d bytes, b %d bytes, for the same content\n", sa, sb) +
					fmt.Sprintf("compressed [python/b.py] compressed data differs: a %d bytes, b %d bytes, for the same content\n",
						compressedSize(t, tt.a, "python/b.py"), compressedSize(t, tt.b, "python/b.py"))
			case "different bytes nothing else names":
				want = fmt.Sprintf("bytes [] the files first differ at offset 2 (a is %d bytes, b is %d bytes), in a way none of the other comparisons names\n", len(tt.a), len(tt.b))
			}
			if got := render(diff(t, tt.a, tt.b)); got != want {
				t.Errorf("differences:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func compressedSize(t *testing.T, b []byte, name string) uint64 {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == name {
			return f.CompressedSize64
		}
	}
	t.Fatalf("%s not in zip", name)
	return 0
}

// patchCentral changes a 2-byte field of the central directory record of name.
func patchCentral(t *testing.T, b []byte, name string, field int, v uint16) []byte {
	t.Helper()
	b = append([]byte(nil), b...)
	for i := 0; i+centralLen <= len(b); i++ {
		if le.Uint32(b[i:]) == sigCentral && string(b[i+centralLen:i+centralLen+len(name)]) == name {
			le.PutUint16(b[i+field:], v)
			return b
		}
	}
	t.Fatalf("no central record for %s", name)
	return nil
}

func TestInternalAttributes(t *testing.T) {
	a := build(t, base())
	b := patchCentral(t, a, "python/a.py", 36, 1)
	want := "internal-attrs [python/a.py] internal attributes differ: a 0x0000, b 0x0001\n"
	if got := render(diff(t, a, b)); got != want {
		t.Errorf("differences:\n%s\nwant:\n%s", got, want)
	}
}

func TestDataDescriptor(t *testing.T) {
	a := build(t, []ent{{name: "a.txt", data: "abc", raw: true, creator: 0x0314, external: 0o100644 << 16, reader: 20}})
	b := build(t, []ent{{name: "a.txt", data: "abc", raw: true, creator: 0x0314, external: 0o100644 << 16, reader: 20, noDataDescriptor: true}})
	want := "flags [a.txt] general purpose flags differ: a 0x0008 (data descriptor), b 0x0000\n" +
		fmt.Sprintf("local-header [a.txt] local header differs: CRC-32 a 0, b %d; compressed size a 0, b 3; size a 0, b 3\n", crc32.ChecksumIEEE([]byte("abc"))) +
		"descriptor [a.txt] data descriptor differs: a has 16 bytes, b has none\n"
	if got := render(diff(t, a, b)); got != want {
		t.Errorf("differences:\n%s\nwant:\n%s", got, want)
	}
}

func TestSeveralDifferences(t *testing.T) {
	a := build(t, base())
	b := build(t, []ent{
		base()[0],
		{name: "python/c.py", data: "c", mode: 0o644, method: zip.Deflate, mod: when},
		{name: "python/a.py", data: "print('a')\n", mode: 0o600, method: zip.Deflate, mod: when.Add(time.Hour)},
	}, func(w *zip.Writer, _ *bytes.Buffer) { w.SetComment("x") })
	want := `mode [python/a.py] mode differs: a 0644 (-rw-r--r--), b 0600 (-rw-------)
modified [python/a.py] modification time differs: a 2024-01-02 03:04:06 UTC, b 2024-01-02 04:04:06 UTC
only-in-a [python/b.py] only in a
only-in-b [python/c.py] only in b
archive-comment [] archive comment differs: a "", b "x"
`
	if got := render(diff(t, a, b)); got != want {
		t.Errorf("differences:\n%s\nwant:\n%s", got, want)
	}
}

func TestDiffFilesAndWrite(t *testing.T) {
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	if err := os.WriteFile(pa, build(t, base()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pb, build(t, change("python/a.py", func(e *ent) { e.mode = 0o755 })), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := Diff(t.Context(), pa, pb)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Write(&out, ds); err != nil {
		t.Fatal(err)
	}
	want := `"python/a.py": mode differs: a 0644 (-rw-r--r--), b 0755 (-rwxr-xr-x)
1 difference
`
	if out.String() != want {
		t.Errorf("Write:\n%s\nwant:\n%s", out.String(), want)
	}

	ds, err = Diff(t.Context(), pa, pa)
	if err != nil || ds != nil {
		t.Errorf("Diff(a, a) = %v, %v", ds, err)
	}
	out.Reset()
	Write(&out, ds)
	if out.String() != "the zips are identical\n" {
		t.Errorf("Write(nil) = %q", out.String())
	}

	notZip := filepath.Join(dir, "not.zip")
	os.WriteFile(notZip, []byte("this is not a zip file at all"), 0o644)
	if _, err := Diff(t.Context(), pa, notZip); err == nil || !strings.Contains(err.Error(), "no end of central directory record") {
		t.Errorf("Diff with a non-zip: %v", err)
	}
	if _, err := Diff(t.Context(), pa, filepath.Join(dir, "missing.zip")); err == nil {
		t.Error("Diff with a missing file: no error")
	}
}

func TestModTimeSources(t *testing.T) {
	// NTFS extra field: tag 1 holds mtime, atime, ctime as 100 ns ticks since 1601.
	ticks := uint64(when.UnixNano()/100) + 116444736000000000
	ntfs := make([]byte, 4+4+24)
	le.PutUint16(ntfs[4:], 1)
	le.PutUint16(ntfs[6:], 24)
	le.PutUint64(ntfs[8:], ticks)
	extra := append([]byte{0x0a, 0x00, byte(len(ntfs)), 0}, ntfs...)
	e := &entry{extra: extra, dosDate: 0x5822, dosTime: 0x1883}
	if got := modTime(e); !got.exact || !got.t.Equal(when) {
		t.Errorf("NTFS time = %v, want %v", got, when)
	}
	e = &entry{dosDate: 0x5822, dosTime: 0x1883}
	if got := modTime(e).String(); got != "2024-01-02 03:04:06 (MS-DOS time, no time zone)" {
		t.Errorf("MS-DOS time = %q", got)
	}
}

func TestEndRecord(t *testing.T) {
	a := build(t, base())
	b := append([]byte(nil), a...)
	i := bytes.LastIndex(b, []byte{0x50, 0x4b, 0x05, 0x06})
	le.PutUint16(b[i+10:], 4) // total entries: 4, but there are 3 records
	want := "end-record [] end of central directory record differs: a disk 0, central directory on disk 0, 3 entries on this disk and 3 in all for 3 records; b disk 0, central directory on disk 0, 3 entries on this disk and 4 in all for 3 records\n"
	if got := render(diff(t, a, b)); got != want {
		t.Errorf("differences:\n%s\nwant:\n%s", got, want)
	}
}

func TestDuplicateNames(t *testing.T) {
	dup := func(second string) []ent {
		return []ent{
			{name: "a.txt", data: "one", mode: 0o644, method: zip.Store, mod: when},
			{name: "a.txt", data: second, mode: 0o644, method: zip.Store, mod: when},
		}
	}
	a, b := build(t, dup("two")), build(t, dup("TWO"))
	want := "content [a.txt] content differs: a has 3 bytes (CRC-32 " + crcOf("two") + "), b has 3 bytes (CRC-32 " + crcOf("TWO") + ")\n"
	if got := render(diff(t, a, b)); got != want {
		t.Errorf("differences:\n%s\nwant:\n%s", got, want)
	}
}
