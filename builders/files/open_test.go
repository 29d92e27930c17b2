package files

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// openSame reads the file that was walked and refuses anything else at that
// path: a file renamed over it, one rewritten in place, a symlink or a fifo
// (without blocking on it).
func TestOpenSame(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lstat := func() os.FileInfo {
		t.Helper()
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	write("walked content")
	walked := lstat()
	rc, err := openSame(p, walked)()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	if err != nil || string(b) != "walked content" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}

	swaps := map[string]func(){
		"renamed over": func() {
			os.WriteFile(p+".new", []byte("walked content"), 0o644)
			os.Rename(p+".new", p)
		},
		"rewritten in place": func() {
			f, _ := os.OpenFile(p, os.O_WRONLY, 0)
			f.WriteString("WALKED")
			f.Close()
			os.Chtimes(p, time.Time{}, walked.ModTime().Add(time.Second))
		},
		"a symlink": func() { os.Remove(p); os.Symlink(p+".other", p); os.WriteFile(p+".other", []byte("x"), 0o644) },
		"a fifo":    func() { os.Remove(p); syscall.Mkfifo(p, 0o644) },
		"truncated": func() { os.Truncate(p, 3) },
		"a folder":  func() { os.Remove(p); os.Mkdir(p, 0o755) },
		"vanished":  func() { os.Remove(p) },
		"regrown":   func() { os.WriteFile(p, []byte("walked content, longer"), 0o644) },
		"same bytes": func() {
			os.WriteFile(p, []byte("walked content"), 0o644)
			os.Chtimes(p, time.Time{}, time.Now().Add(time.Hour))
		},
	}
	for name, swap := range swaps {
		t.Run(name, func(t *testing.T) {
			os.RemoveAll(p)
			os.Remove(p + ".other")
			write("walked content")
			walked := lstat()
			swap()
			done := make(chan error, 1)
			go func() {
				rc, err := openSame(p, walked)()
				if err == nil {
					rc.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a file changed since the walk was opened")
				}
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not name the file", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("open blocked")
			}
		})
	}
}

// ReadExact says where a file ends in one read when the buffer has room for a
// byte more, and still tells a shorter, a longer and an exact file apart
// without that room.
func TestReadExact(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, tc := range []struct {
		content  string
		size     int // len(buf)
		spare    int // cap(buf) - len(buf)
		n        int
		wantMore bool
	}{
		{"abcd", 4, 1, 4, false},
		{"abcd", 4, 0, 4, false},
		{"abcde", 4, 1, 4, true},
		{"abcde", 4, 0, 4, true},
		{"abc", 4, 1, 3, false},
		{"abc", 4, 0, 3, false},
		{"", 0, 0, 0, false},
		{"x", 0, 0, 0, true},
		{"x", 0, 8, 0, true},
	} {
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Lstat(p)
		rc, err := openSame(p, st)()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, tc.size, tc.size+tc.spare)
		n, more, err := rc.(*rawFile).ReadExact(buf)
		rc.Close()
		if err != nil || n != tc.n || more != tc.wantMore || string(buf[:n]) != tc.content[:n] {
			t.Errorf("%q into %d (+%d): n %d more %v err %v, want n %d more %v", tc.content, tc.size, tc.spare, n, more, err, tc.n, tc.wantMore)
		}
	}
}
