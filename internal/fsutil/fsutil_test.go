package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	os.WriteFile(src, []byte("new content"), 0o600)
	os.WriteFile(dst, []byte("old, longer content"), 0o644)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := CopyFile(src, dst, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dst)
	st, _ := os.Stat(dst)
	if string(b) != "new content" || st.Mode().Perm() != 0o755 {
		t.Errorf("dst = %q, mode %v", b, st.Mode())
	}
	// A read-only mode is set last, so the copy itself can still write.
	if err := CopyFile(src, filepath.Join(dir, "ro"), 0o444); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "ro")); st.Mode().Perm() != 0o444 {
		t.Errorf("mode %v", st.Mode())
	}
}
