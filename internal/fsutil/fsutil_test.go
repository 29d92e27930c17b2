package fsutil

import (
	"io/fs"
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

func TestCopyTreeReplacesAndSkips(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "a", "node_modules"), 0o755)
	os.WriteFile(filepath.Join(src, "a", "f"), []byte("new"), 0o644)
	os.WriteFile(filepath.Join(src, "a", "node_modules", "x"), []byte("x"), 0o644)
	os.Symlink("f", filepath.Join(src, "a", "l"))
	// dst/a/f is a link to a file outside: copying must replace the link, not
	// write through it.
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("keep"), 0o644)
	os.MkdirAll(filepath.Join(dst, "a"), 0o755)
	os.Symlink(outside, filepath.Join(dst, "a", "f"))
	skip := func(_ string, d fs.DirEntry) bool { return d.IsDir() && d.Name() == "node_modules" }
	if err := CopyTree(src, dst, TreeOptions{Skip: skip}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Fatalf("wrote through a link in dst: victim holds %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a", "f")); string(b) != "new" {
		t.Errorf("a/f = %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "a", "l")); l != "f" {
		t.Errorf("link a/l = %q", l)
	}
	if _, err := os.Stat(filepath.Join(dst, "a", "node_modules")); err == nil {
		t.Error("skipped folder copied")
	}
}
