package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// walkFixture makes a tree whose names sort differently by byte, by component
// and by full path ("a", "a-b", "a.b", "a/b", "A"), with links, an executable,
// empty folders and enough folders to be read in parallel.
func walkFixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := []string{"a/b", "a-b", "a.b", "A", "a/c/d/e", "b/x", "zz", "a/c/z", "m/.hidden", "m/ü"}
	for i := range 40 {
		files = append(files, fmt.Sprintf("many/d%02d/f%d", 39-i, i), fmt.Sprintf("many/d%02d/sub/g", i))
	}
	for i, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat(f, i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chmod(filepath.Join(root, "zz"), 0o755))
	must(t, os.Mkdir(filepath.Join(root, "empty"), 0o755))
	must(t, os.Symlink("a/b", filepath.Join(root, "link")))
	must(t, os.Symlink("../nowhere", filepath.Join(root, "m", "dangling")))
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// oldTreeHash is the tree hash as filepath.WalkDir computed it before walkTree:
// the cache keys of earlier releases, which the new walk must keep.
func oldTreeHash(t *testing.T, root string) (string, []Walked) {
	t.Helper()
	var lines []string
	var walked []Walked
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		walked = append(walked, Walked{Path: p, Rel: filepath.ToSlash(rel), Info: info})
		var sum string
		switch {
		case info.IsDir():
			sum = "dir"
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			sum = "link:" + l
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			sum = "f:" + hex.EncodeToString(s[:])
			if info.Mode()&0o111 != 0 {
				sum = "x:" + hex.EncodeToString(s[:])
			}
		}
		lines = append(lines, filepath.ToSlash(rel)+"\x00"+sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	d := sha256.New()
	for _, l := range lines {
		io.WriteString(d, l+"\n")
	}
	return "tree:" + hex.EncodeToString(d.Sum(nil)), walked
}

// TestWalkTreeMatchesWalkDir: the parallel walk gives WalkDir's order, paths
// and lstat data, and the tree hash of the serial walk, from a cold and a warm
// memo and for a root written with a trailing slash.
func TestWalkTreeMatchesWalkDir(t *testing.T) {
	root := walkFixture(t)
	want, wantWalk := oldTreeHash(t, root)
	c := &Cache{Dir: t.TempDir()}
	for _, p := range []string{root, root + "/"} {
		for run := range 2 {
			h := c.NewHasher()
			got, err := h.Path(p)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s run %d: tree hash %s, want %s", p, run, got, want)
			}
			walk, ok := h.Walk(p)
			if !ok || len(walk) != len(wantWalk) {
				t.Fatalf("%s: %d paths walked, want %d", p, len(walk), len(wantWalk))
			}
			for i, w := range walk {
				ww := wantWalk[i]
				if i == 0 {
					ww.Path = p // the root stays as given
				}
				if w.Path != ww.Path || w.Rel != ww.Rel || w.Info.Name() != ww.Info.Name() || w.Info.Mode() != ww.Info.Mode() ||
					w.Info.Size() != ww.Info.Size() || !os.SameFile(w.Info, ww.Info) {
					t.Fatalf("%s: path %d is %s (%s, %v), want %s (%s, %v)", p, i, w.Path, w.Rel, w.Info.Mode(), ww.Path, ww.Rel, ww.Info.Mode())
				}
				// A regular file carries the sum its line was made from.
				if w.Info.Mode().IsRegular() {
					b, err := os.ReadFile(w.Path)
					if err != nil {
						t.Fatal(err)
					}
					if !w.HasSum || w.Sum != sha256.Sum256(b) {
						t.Fatalf("%s run %d: %s has sum %x (%v), want its content's", p, run, w.Rel, w.Sum, w.HasSum)
					}
				} else if w.HasSum {
					t.Fatalf("%s: %s is not a regular file but has a sum", p, w.Rel)
				}
			}
			must(t, h.Save())
		}
	}
}

// TestWalkTreeFirstError: of two bad paths the one a serial walk meets first is
// reported, however the folders were scheduled.
func TestWalkTreeFirstError(t *testing.T) {
	root := walkFixture(t)
	for _, f := range []string{"many/d07/sub/fifo", "many/d30/fifo", "zz-last/fifo"} {
		must(t, os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755))
		must(t, syscall.Mkfifo(filepath.Join(root, f), 0o644))
	}
	for range 20 {
		_, err := (&Cache{Dir: t.TempDir()}).NewHasher().Path(root)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "many/d07/sub/fifo")+" is not a regular file") {
			t.Fatalf("error %v, want the first fifo named", err)
		}
	}
}
