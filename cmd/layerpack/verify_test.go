package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bomb writes the zip bomb of issue 11 in small: n central directory entries all
// pointing at one deflate stream of size zeros.
func bomb(t *testing.T, path string, n, size int) {
	t.Helper()
	var data bytes.Buffer
	fw, _ := flate.NewWriter(&data, flate.BestCompression)
	zeros := make([]byte, size)
	fw.Write(zeros)
	fw.Close()
	crc := crc32.ChecksumIEEE(zeros)
	var b bytes.Buffer
	w := func(v ...any) {
		for _, x := range v {
			binary.Write(&b, binary.LittleEndian, x)
		}
	}
	w(uint32(0x04034b50), uint16(20), uint16(0), uint16(8), uint16(0), uint16(0x21), crc, uint32(data.Len()), uint32(size), uint16(1), uint16(0))
	b.WriteString("a")
	b.Write(data.Bytes())
	cd := b.Len()
	for i := range n {
		nm := fmt.Sprintf("f%05d", i)
		w(uint32(0x02014b50), uint16(3<<8|20), uint16(20), uint16(0), uint16(8), uint16(0), uint16(0x21), crc, uint32(data.Len()), uint32(size),
			uint16(len(nm)), uint16(0), uint16(0), uint16(0), uint16(0), uint32(0o100644<<16), uint32(0))
		b.WriteString(nm)
	}
	w(uint32(0x06054b50), uint16(0), uint16(0), uint16(n), uint16(n), uint32(b.Len()-cd), uint32(cd), uint16(0))
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyHostile(t *testing.T) {
	dir := t.TempDir()
	bombZip := filepath.Join(dir, "bomb-x86_64.zip")
	bomb(t, bombZip, 10000, 1<<20) // 10,000 entries x 1 MiB declared, one stream
	start := time.Now()
	var out, errb bytes.Buffer
	code := run([]string{"verify", bombZip}, &out, &errb)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("verify of the bomb took %v", d)
	}
	if code != 1 || !strings.Contains(out.String(), bombZip+": FAILED\n") ||
		!strings.Contains(out.String(), "error: overlap: 9999 entries share compressed bytes with another; the first 3 are listed\n") ||
		!strings.Contains(out.String(), "error: size: the layer unzips to 10485760000 bytes, more than the 262144000 bytes Lambda allows") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}

	// A credential file: an error, unless --allow-secret names it.
	secret := filepath.Join(dir, "env-x86_64.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, _ := zw.Create(".env")
	f.Write([]byte("TOKEN=abc\n"))
	zw.Close()
	os.WriteFile(secret, buf.Bytes(), 0o644)
	out.Reset()
	if code := run([]string{"verify", secret}, &out, &errb); code != 1 ||
		!strings.Contains(out.String(), `error: secret: ".env" looks like credentials (a dotenv file of environment variables); layers are often shared, so leave it out, or allow it with allow_secrets = [".env"] in the layer's config`) {
		t.Errorf("exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"verify", "--allow-secret", ".env", secret}, &out, &errb); code != 0 {
		t.Errorf("--allow-secret: exit %d\n%s", code, out.String())
	}
	errb.Reset()
	if code := run([]string{"verify", "--allow-secret", "a[", secret}, &out, &errb); code != 2 ||
		errb.String() != "layerpack: --allow-secret: \"a[\" is not a valid pattern\n" {
		t.Errorf("bad pattern: exit %d, stderr %q", code, errb.String())
	}
}
