package zipper

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/layerpack/layerpack/internal/testneed"
)

// TestHostileTrees zips staged trees and entry lists an attacker or a broken
// builder could produce. Each case asserts the exact error (or the archive), and
// that nothing outside the tree changed: the zipper reads the tree and writes one
// file beside it.
func TestHostileTrees(t *testing.T) {
	type tcase struct {
		name    string
		make    func(t *testing.T, tree, outside string) // builds the tree on disk
		entries []Entry                                  // or: entries given directly
		err     string
		check   func(t *testing.T, zr *zip.Reader)
	}
	link := func(target, name string) func(t *testing.T, tree string) {
		return func(t *testing.T, tree string) {
			p := filepath.Join(tree, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(t *testing.T, p, data string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := func(name string) Entry { return memFile(name, "x") }
	cases := []tcase{
		{name: "symlink chain that climbs out", make: func(t *testing.T, tree, _ string) {
			link("../../..", "lib/deep/deeper/l")(t, tree)
			link("deep/deeper/l/../etc/passwd", "lib/x")(t, tree)
		}, err: `zipper: entry "lib/x": symlink target "deep/deeper/l/../etc/passwd" leaves the tree through "lib/deep/deeper/l" -> "../../.."`},
		{name: "symlink up", make: func(t *testing.T, tree, _ string) { link("../../../../etc", "lib/up")(t, tree) },
			err: `zipper: entry "lib/up": symlink target "../../../../etc" leaves the tree`},
		{name: "absolute symlink", make: func(t *testing.T, tree, _ string) { link("/etc/shadow", "lib/abs")(t, tree) },
			err: `zipper: entry "lib/abs": symlink target "/etc/shadow" is absolute`},
		{name: "symlink loop", make: func(t *testing.T, tree, _ string) { link("b", "a")(t, tree); link("a", "b")(t, tree) },
			err: `zipper: entry "a": symlink target "b" does not resolve: more than 40 links in a row`},
		{name: "symlink to a sibling", make: func(t *testing.T, tree, _ string) {
			write(t, filepath.Join(tree, "lib/libx.so.1"), "elf")
			link("libx.so.1", "lib/libx.so")(t, tree)
		}, check: func(t *testing.T, zr *zip.Reader) {
			if got := names(zr); got != "lib/ lib/libx.so lib/libx.so.1" {
				t.Errorf("entries %s", got)
			}
		}},
		{name: "entry below a symlink", entries: []Entry{{Name: "lib/up", Mode: fs.ModeSymlink, Link: "x"}, f("lib/up/pwned")},
			err: `zipper: entry "lib/up/pwned": "lib/up" is a symlink, not a folder`},
		{name: "named pipe", make: func(t *testing.T, tree, _ string) {
			if err := syscall.Mkfifo(filepath.Join(tree, "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, err: `zipper: entry "fifo": unsupported file type p---------`},
		{name: "socket", make: func(t *testing.T, tree, _ string) {
			l, err := net.Listen("unix", filepath.Join(tree, "sock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, err: `zipper: entry "sock": unsupported file type S---------`},
		{name: "character device", make: func(t *testing.T, tree, _ string) {
			if err := syscall.Mknod(filepath.Join(tree, "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
				testneed.Missing(t, "mknod needs root: "+err.Error())
			}
		}, err: `zipper: entry "null": unsupported file type Dc---------`},
		{name: "hard link to a file outside", make: func(t *testing.T, tree, outside string) {
			// The zipper reads content; a hard link is just a file whose bytes are
			// packaged. Nothing is written through it.
			if err := os.Link(filepath.Join(outside, "secret.txt"), filepath.Join(tree, "copy.txt")); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, zr *zip.Reader) {
			if got := content(t, zr, "copy.txt"); got != "outside" {
				t.Errorf("copy.txt = %q", got)
			}
		}},
		{name: "name over 65535 bytes", entries: []Entry{f(strings.Repeat("a/", 35000) + "x")},
			err: `zipper: entry "` + strings.Repeat("a/", 100) + "..." + strings.Repeat("/a", 24) + `/x": name is 70001 bytes long; a zip allows 65534`},
		{name: "not UTF-8 on disk", make: func(t *testing.T, tree, _ string) { write(t, filepath.Join(tree, "caf\xe9"), "x") },
			err: `zipper: entry "caf\xe9": name is not valid UTF-8`},
		{name: "backslash on disk", make: func(t *testing.T, tree, _ string) { write(t, filepath.Join(tree, `..\x`), "x") },
			err: `zipper: entry "..\\x": name contains a backslash, which some unzip tools read as a separator`},
		{name: "traversal", entries: []Entry{f("../x")}, err: `zipper: entry "../x": name has a ".." element`},
		{name: "traversal inside", entries: []Entry{f("a/../../x")}, err: `zipper: entry "a/../../x": name has a ".." element`},
		{name: "absolute name", entries: []Entry{f("/etc/passwd")}, err: `zipper: entry "/etc/passwd": name is absolute`},
		{name: "duplicate", entries: []Entry{f("bin/t"), f("bin/t")}, err: `zipper: entry "bin/t": duplicate`},
		{name: "NUL in a name", entries: []Entry{f("a\x00b")}, err: `zipper: entry "a\x00b": name contains a NUL byte`},
		{name: "case-colliding names are kept", make: func(t *testing.T, tree, _ string) {
			// The zipper knows nothing of Lambda; verify warns about these.
			write(t, filepath.Join(tree, "README"), "1")
			write(t, filepath.Join(tree, "readme"), "2")
		}, check: func(t *testing.T, zr *zip.Reader) {
			if got := names(zr); got != "README readme" {
				t.Errorf("entries %s", got)
			}
		}},
		{name: "UTF-8 flag exactly for non-ASCII names", make: func(t *testing.T, tree, _ string) {
			write(t, filepath.Join(tree, "café"), "1")
			write(t, filepath.Join(tree, "cafe"), "2")
		}, check: func(t *testing.T, zr *zip.Reader) {
			for _, f := range zr.File {
				if utf := f.Flags&0x800 != 0; utf != (f.Name == "café") {
					t.Errorf("%q: UTF-8 flag %v", f.Name, utf)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			project := t.TempDir()
			tree, outside := filepath.Join(project, "stage"), filepath.Join(project, "outside")
			for _, d := range []string{tree, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write(t, filepath.Join(outside, "secret.txt"), "outside")
			write(t, filepath.Join(project, "etc/passwd"), "root:x:0:0")
			entries := tc.entries
			if tc.make != nil {
				tc.make(t, tree, outside)
				var err error
				if entries, err = Scan(tree); err != nil {
					t.Fatal(err)
				}
			}
			before := digest(t, project, "out.zip")
			_, err := WriteFile(t.Context(), filepath.Join(project, "out.zip"), entries, Options{Level: 6})
			if after := digest(t, project, "out.zip"); after != before {
				t.Errorf("the project changed:\nbefore %s\nafter  %s", before, after)
			}
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v\nwant  %s", err, tc.err)
				}
				if _, err := os.Stat(filepath.Join(project, "out.zip")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a failed write left out.zip: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(project, "out.zip"))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, zr)
		})
	}
}

func names(zr *zip.Reader) string {
	var ns []string
	for _, f := range zr.File {
		ns = append(ns, f.Name)
	}
	return strings.Join(ns, " ")
}

func content(t *testing.T, zr *zip.Reader, name string) string {
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// digest hashes every path, mode and content under root but skip.
func digest(t *testing.T, root, skip string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || filepath.Base(p) == skip {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		io.WriteString(h, p+" "+info.Mode().String()+"\n")
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		} else if info.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			io.WriteString(h, l)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}
