package verify

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// storedEntry is the raw bytes of a local header and stored data for name.
func storedEntry(name, data string) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	for _, v := range []any{uint32(0x04034b50), uint16(20), uint16(0), uint16(0), uint16(0), uint16(0x21),
		crc32.ChecksumIEEE([]byte(data)), uint32(len(data)), uint32(len(data)), uint16(len(name)), uint16(0)} {
		binary.Write(&b, le, v)
	}
	b.WriteString(name)
	b.WriteString(data)
	return b.Bytes()
}

// centralRecord is the central directory record of a stored entry at offset.
func centralRecord(name, data string, offset uint32) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	for _, v := range []any{uint32(0x02014b50), uint16(3<<8 | 20), uint16(20), uint16(0), uint16(0), uint16(0), uint16(0x21),
		crc32.ChecksumIEEE([]byte(data)), uint32(len(data)), uint32(len(data)), uint16(len(name)), uint16(0), uint16(0),
		uint16(0), uint16(0), uint32(0o100644 << 16), offset} {
		binary.Write(&b, le, v)
	}
	b.WriteString(name)
	return b.Bytes()
}

func endRecord(n int, cdLen, cdOff int) []byte {
	var b bytes.Buffer
	for _, v := range []any{uint32(0x06054b50), uint16(0), uint16(0), uint16(n), uint16(n), uint32(cdLen), uint32(cdOff), uint16(0)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	return b.Bytes()
}

// hiddenEntry: "a" listed, then a local entry "h" that the central directory
// does not list, then the central directory.
func hiddenEntry() []byte {
	a, h := storedEntry("a", "x"), storedEntry("h", "evil")
	cd := centralRecord("a", "x", 0)
	out := append(append(append([]byte{}, a...), h...), cd...)
	return append(out, endRecord(1, len(cd), len(a)+len(h))...)
}

// dataAfterCentral: the central directory first, the entry after it.
func dataAfterCentral() []byte {
	cd := centralRecord("a", "x", uint32(len(centralRecord("a", "x", 0))))
	out := append(append([]byte{}, cd...), storedEntry("a", "x")...)
	return append(out, endRecord(1, len(cd), 0)...)
}

// TestHostileZips runs verify on zips an attacker or a broken tool could make; each
// case asserts the exact findings (or error), and that the verify run did not touch
// anything around the zip.
func TestHostileZips(t *testing.T) {
	ln := func(name, target string) file { return file{name: name, mode: fs.ModeSymlink | 0o777, data: target} }
	long := strings.Repeat("a", 300)
	deep := strings.Repeat("abcdefgh/", 460) + "x"
	good := zipBytes(t, file{name: "bin/"}, file{name: "bin/t", mode: 0o755, data: "#!/bin/sh\n"})
	tests := []struct {
		name string
		zip  []byte
		want string
	}{
		{"traversal", zipBytes(t, file{name: "../etc/passwd", data: "x"}),
			`error path [../etc/passwd] "../etc/passwd" has a ".." component, which points outside the layer
`},
		{"traversal inside", zipBytes(t, file{name: "a/../../x", data: "x"}),
			`error path [a/../../x] "a/../../x" has a ".." component, which points outside the layer
`},
		{"absolute", zipBytes(t, file{name: "/etc/cron.d/x", data: "x"}),
			`error path [/etc/cron.d/x] "/etc/cron.d/x" is an absolute path; names must be relative to /opt, like "etc/cron.d/x"
`},
		{"backslash traversal", zipBytes(t, file{name: `..\..\x`, data: "x"}),
			`error path [..\..\x] "..\\..\\x" contains a backslash; folders are separated by "/", like "../../x"
`},
		{"duplicate", zipBytes(t, file{name: "bin/t", mode: 0o755, data: "1"}, file{name: "bin/t", mode: 0o755, data: "2"}),
			`error duplicate [bin/t] "bin/t" appears 2 times in the zip; unzip keeps only one of them
`},
		{"case collision", zipBytes(t, file{name: "lib/README", data: "1"}, file{name: "lib/readme", data: "2"}),
			`warning case [lib/readme] "lib/README" and "lib/readme" differ only in case: Lambda (Linux) keeps both, but unzip on macOS or Windows keeps one of them
`},
		{"named pipe", zipBytes(t, file{name: "lib/fifo", mode: fs.ModeNamedPipe | 0o644}),
			`error mode [lib/fifo] "lib/fifo" is a named pipe; a layer can hold only files, folders and symbolic links
`},
		{"device", zipBytes(t, file{name: "lib/mem", mode: fs.ModeDevice | fs.ModeCharDevice | 0o644}),
			`error mode [lib/mem] "lib/mem" is a character device; a layer can hold only files, folders and symbolic links
`},
		{"component over NAME_MAX", zipBytes(t, file{name: "lib/" + long, data: "x"}),
			`error path [lib/` + long + `] "lib/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaaaaaaaaaa" has a component of 300 bytes; Linux allows 255 (NAME_MAX), so it cannot be extracted
`},
		{"path over PATH_MAX", zipBytes(t, file{name: deep, data: "x"}),
			`error path [` + deep + `] "abcdefgh/abcdefgh/abcdefgh/abcdefgh/abcd.../abcdefgh/abcdefgh/x" is 4146 bytes long under /opt; Linux allows 4095 (PATH_MAX), so it cannot be opened
`},
		{"not UTF-8", zipBytes(t, file{name: "lib/caf\xe9.txt", data: "x"}),
			`warning path [lib/caf` + "\xe9" + `.txt] "lib/caf\xe9.txt" is not valid UTF-8: Lambda (Linux) extracts it as bytes, but other unzip tools and runtimes may read it as another name
`},
		{"NUL in a name", zipBytes(t, file{name: "lib/a\x00b", data: "x"}),
			`error path [lib/a` + "\x00" + `b] "lib/a\x00b" contains a NUL byte, which ends the name on Linux
`},
		{"empty name", zipBytes(t, file{name: "", data: "x"}),
			`error path [] an entry has an empty name
`},
		{"symlink chain", zipBytes(t, ln("lib/deep/deeper/l", "../../.."), ln("lib/x", "deep/deeper/l/../etc/passwd")),
			`error symlink [lib/x] "lib/x" -> "deep/deeper/l/../etc/passwd" leaves /opt: unzipped there it points to /etc/passwd through "lib/deep/deeper/l" -> "../../.."
`},
		{"entry through a symlink", zipBytes(t, ln("lib/up", "../../../../etc"), file{name: "lib/up/pwned", data: "x"}),
			`error symlink [lib/up] "lib/up" -> "../../../../etc" leaves /opt: unzipped there it points to /etc
error symlink [lib/up/pwned] "lib/up/pwned" is below the symlink "lib/up"; unzip would write it wherever the link points
`},
		{"absolute symlink", zipBytes(t, ln("lib/abs", "/etc/shadow")),
			`error symlink [lib/abs] "lib/abs" -> "/etc/shadow" is an absolute link; links in a layer must be relative and stay under /opt
`},
		{"symlink loop", zipBytes(t, ln("lib/a", "a")),
			`error symlink [lib/a] "lib/a" -> "a" does not resolve: more than 40 links in a row
`},
		{"hidden entry before the central directory", hiddenEntry(),
			`error zip [] a local header at offset 32, after the last entry the central directory lists ("a"), is missing from the central directory: a streaming unzip would extract a hidden entry
`},
		{"entry after the central directory", dataAfterCentral(),
			`error zip [a] "a" has data at offset 78-79, past the start of the central directory at 0; zip tools disagree on such files
`},
		{"CRC mismatch", func() []byte {
			b := hiddenEntry()[:0]
			a := storedEntry("a", "hello")
			a[len(a)-1] = 'X' // data no longer matches the CRC
			cd := centralRecord("a", "hello", 0)
			b = append(append(append(b, a...), cd...), endRecord(1, len(cd), len(a))...)
			return b
		}(),
			`error zip [a] "a" cannot be read: zip: checksum error
`},
		{"overlapping entries", overlapBomb(t, 3, 1000, 0),
			`error overlap [f00001] "f00001" shares compressed bytes with "f00000" (offsets 31-` + itoa(31+len(overlapBomb(t, 3, 1000, 0))-31-3*(46+6)-22) + ` and 31-` + itoa(31+len(overlapBomb(t, 3, 1000, 0))-31-3*(46+6)-22) + `); no zip tool writes that, zip bombs do
error overlap [f00002] "f00002" shares compressed bytes with "f00001" (offsets 31-` + itoa(31+len(overlapBomb(t, 3, 1000, 0))-31-3*(46+6)-22) + ` and 31-` + itoa(31+len(overlapBomb(t, 3, 1000, 0))-31-3*(46+6)-22) + `); no zip tool writes that, zip bombs do
warning zip [] the contents were not read (ELF, jars, secrets, checksums): entries overlap or run past the end of the file
`},
		{"credentials", zipBytes(t, file{name: ".env", data: "TOKEN=x"}),
			`error secret [.env] ".env" looks like credentials (a dotenv file of environment variables); layers are often shared, so leave it out, or allow it with allow_secrets = [".env"] in the layer's config
`},
		{"clean", good, ""},
		{"prefixed (self-extracting) zip is not hiding anything", append([]byte("#!/bin/sh\nexit 0\n"), good...), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "layer.zip")
			if err := os.WriteFile(p, tc.zip, 0o644); err != nil {
				t.Fatal(err)
			}
			before := treeDigest(t, filepath.Dir(dir))
			rep, err := Zip(p, Options{})
			if err != nil {
				t.Fatalf("Zip: %v", err)
			}
			if got := messages(rep.Findings); got != tc.want {
				t.Errorf("findings:\n%s\nwant:\n%s", got, tc.want)
			}
			if after := treeDigest(t, filepath.Dir(dir)); after != before {
				t.Errorf("verify changed the folders around the zip:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "cut.zip")
		os.WriteFile(p, good[:len(good)-10], 0o644)
		_, err := Zip(p, Options{})
		if want := "verify: opening " + p + ": zip: not a valid zip file"; err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// treeDigest lists every path under root with its size and mode.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil {
			b.WriteString(p + " " + info.Mode().String() + " " + itoa(int(info.Size())) + "\n")
		}
		return nil
	})
	return b.String()
}

// TestEntryInsideAnother: a second entry whose local header sits inside the first
// entry's stored data, the layout of overlapping zip bombs whose entries nest.
func TestEntryInsideAnother(t *testing.T) {
	inner := storedEntry("b", "x")
	outer := storedEntry("a", string(inner))
	cd := append(centralRecord("a", string(inner), 0), centralRecord("b", "x", 31)...)
	b := append(append(append([]byte{}, outer...), cd...), endRecord(2, len(cd), len(outer))...)
	p := filepath.Join(t.TempDir(), "nested.zip")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Zip(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `error overlap [b] "b" shares compressed bytes with "a" (offsets 62-63 and 31-63); no zip tool writes that, zip bombs do
warning zip [] the contents were not read (ELF, jars, secrets, checksums): entries overlap or run past the end of the file
`
	if got := messages(rep.Findings); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}
