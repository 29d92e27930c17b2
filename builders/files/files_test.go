package files

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
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

// overlayJob is a Job for layer l with an empty stage and an overlay.
func overlayJob(t *testing.T, l *config.Layer) *builders.Job {
	return &builders.Job{Layer: l, Stage: t.TempDir(), Overlay: builders.NewOverlay()}
}

// TestBuildIntoOverlay: a files-only layer goes into the overlay by reference,
// with the forced mode and the sums Known gives; the stage stays empty, and a
// source replaced after it was walked is refused when the zipper opens it.
func TestBuildIntoOverlay(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub", "empty"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("a"), 0o600)
	os.Symlink("sub/a.txt", filepath.Join(src, "link"))
	l := &config.Layer{Name: "l", Files: []config.Files{
		{Src: "src", AbsSrc: src, Dest: "x"},
		{Src: "src/sub/a.txt", AbsSrc: filepath.Join(src, "sub", "a.txt"), Dest: "bin", Mode: "0755"},
	}}
	j := overlayJob(t, l)
	known := 0
	j.Known = func(p string, fi fs.FileInfo) []byte { known++; return make([]byte, 32) }
	if err := (Builder{}).Build(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(j.Stage); len(ents) != 0 {
		t.Fatalf("the stage holds %d entries, want none", len(ents))
	}
	got := map[string]string{}
	for _, e := range j.Overlay.Entries() {
		got[e.Name] = fmt.Sprintf("%v %d %s %v", e.Mode, e.Size, e.Link, e.Sum != nil)
	}
	want := map[string]string{
		"x/": "drwxr-xr-x 0  false", "x/sub/": "drwxr-xr-x 0  false", "x/sub/empty/": "drwxr-xr-x 0  false",
		"x/sub/a.txt": "-rw------- 1  true", "x/link": "Lrwxrwxrwx 0 sub/a.txt false",
		"bin/": "drwxr-xr-x 0  false", "bin/a.txt": "-rwxr-xr-x 1  true",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("overlay:\n got %v\nwant %v", got, want)
	}
	if known != 2 {
		t.Errorf("Known asked %d times, want once per file (2)", known)
	}
	e, _ := j.Overlay.Get("x/sub/a.txt")
	rc, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	os.Remove(filepath.Join(src, "sub", "a.txt"))
	os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("b"), 0o600)
	// The inode may be reused and the clock coarse: make the new file's mtime differ.
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(src, "sub", "a.txt"), later, later)
	if _, err := e.Open(); err == nil || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("opening a replaced source: %v, want an error saying it was replaced", err)
	}
}

// TestOverlayRefusesThroughLinks: the overlay keeps the stage's rules, so a
// [[files]] entry cannot write below a symlink another entry put there.
func TestOverlayRefusesThroughLinks(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(a, "real"), 0o755)
	os.Symlink("real", filepath.Join(a, "d"))
	os.WriteFile(filepath.Join(b, "passwd"), []byte("x"), 0o644)
	l := &config.Layer{Name: "l", Files: []config.Files{
		{Src: "a", AbsSrc: a, Dest: "."},
		{Src: "b", AbsSrc: b, Dest: "d"},
	}}
	err := (Builder{}).Build(t.Context(), overlayJob(t, l))
	if err == nil || !strings.Contains(err.Error(), "refusing to write through it") {
		t.Fatalf("Build: %v, want a refusal to write through the link", err)
	}
}

// TestOverlayOnlyOnEmptyStage: after another builder staged files, [[files]]
// writes into the stage as before (it may replace what is there).
func TestOverlayOnlyOnEmptyStage(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("mine"), 0o644)
	l := &config.Layer{Name: "l", Files: []config.Files{{Src: "src", AbsSrc: src, Dest: "."}}}
	j := overlayJob(t, l)
	os.WriteFile(filepath.Join(j.Stage, "a.txt"), []byte("builder's"), 0o644)
	if err := (Builder{}).Build(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	if j.Overlay.Len() != 0 {
		t.Fatalf("%d overlay entries on a non-empty stage, want 0", j.Overlay.Len())
	}
	if b, _ := os.ReadFile(filepath.Join(j.Stage, "a.txt")); string(b) != "mine" {
		t.Errorf("staged a.txt = %q, want the [[files]] copy", b)
	}
}
