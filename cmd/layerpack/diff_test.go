package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeZip(t *testing.T, path, content string) {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.Create("a.txt")
	f.Write([]byte(content))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiffExitCodes: 0 identical, 1 different, 2 unreadable (diff(1)'s codes),
// and a hostile zip64 end record is an error, not a panic.
func TestDiffExitCodes(t *testing.T) {
	dir := t.TempDir()
	a, b, bad := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip"), filepath.Join(dir, "bad.zip")
	writeZip(t, a, "one")
	writeZip(t, b, "two")
	// The 98-byte file of issue 11: zip64 central directory at 2^62, 2^62 long.
	var rec bytes.Buffer
	le := binary.LittleEndian
	for _, v := range []any{uint32(0x06064b50), uint64(44), uint16(45), uint16(45), uint32(0), uint32(0), uint64(1), uint64(1), uint64(1 << 62), uint64(1 << 62),
		uint32(0x07064b50), uint32(0), uint64(0), uint32(1),
		uint32(0x06054b50), uint16(0), uint16(0), uint16(0xffff), uint16(0xffff), uint32(0xffffffff), uint32(0xffffffff), uint16(0)} {
		binary.Write(&rec, le, v)
	}
	if rec.Len() != 98 {
		t.Fatalf("record is %d bytes", rec.Len())
	}
	os.WriteFile(bad, rec.Bytes(), 0o644)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"diff", a, a}, 0, "the zips are identical\n", ""},
		{[]string{"diff", a, b}, 1, "content differs", ""},
		{[]string{"diff", a, bad}, 2, "", "layerpack: zipdiff: " + a + " vs " + bad + ": b: central directory of 4611686018427387904 bytes at offset 4611686018427387904 lies outside the 98-byte file\n"},
		{[]string{"diff", a, filepath.Join(dir, "missing.zip")}, 2, "", "no such file"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", tc.args, code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}
