package files

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCopy(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("a"), 0o600)
	os.Symlink("sub/a.txt", filepath.Join(src, "link"))
	if err := Copy(context.Background(), src, filepath.Join(dst, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dst, "out", "sub", "a.txt"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("forced mode not applied: %v %v", st, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "out", "link")); err != nil || l != "sub/a.txt" {
		t.Errorf("symlink not kept: %q %v", l, err)
	}
	// The source is untouched by the forced mode.
	if st, _ := os.Stat(filepath.Join(src, "sub", "a.txt")); st.Mode().Perm() != 0o600 {
		t.Errorf("source mode changed to %v", st.Mode())
	}
	// A single file lands in dest under its name.
	if err := Copy(context.Background(), filepath.Join(src, "sub", "a.txt"), filepath.Join(dst, "one"), 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "one", "a.txt")); string(b) != "a" {
		t.Errorf("file copy = %q", b)
	}
}

func TestCopyRefusesEscapingSymlink(t *testing.T) {
	src := t.TempDir()
	os.Symlink("/etc/passwd", filepath.Join(src, "bad"))
	err := Copy(context.Background(), src, t.TempDir(), 0)
	if err == nil || !strings.Contains(err.Error(), "bad is a symlink to /etc/passwd, outside") {
		t.Fatalf("err = %v", err)
	}
	src2 := t.TempDir()
	os.Symlink("../../x", filepath.Join(src2, "up"))
	if err := Copy(context.Background(), src2, t.TempDir(), 0); err == nil {
		t.Fatal("relative escaping symlink accepted")
	}
}
