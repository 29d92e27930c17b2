package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/internal/ziptest"
)

func TestVerifyHostile(t *testing.T) {
	dir := t.TempDir()
	bombZip := filepath.Join(dir, "bomb-x86_64.zip")
	// 10,000 entries x 1 MiB declared, one stream
	if err := os.WriteFile(bombZip, ziptest.Bomb(10000, 1<<20, 0), 0o644); err != nil {
		t.Fatal(err)
	}
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
