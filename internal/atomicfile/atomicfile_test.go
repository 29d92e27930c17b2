package atomicfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWriteFileLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.json")
	if err := WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "m.json" {
		t.Fatalf("folder holds %v, want only m.json", ents)
	}
	// A folder in the way is an error, and leaves no temp file either.
	if err := WriteFile(dir, []byte("x"), 0o644); err == nil {
		t.Fatal("writing over a folder succeeded")
	}
	ents, _ = os.ReadDir(filepath.Dir(dir))
	for _, e := range ents {
		if strings.Contains(e.Name(), tempMarker) {
			t.Fatalf("temp file %s left behind", e.Name())
		}
	}
}

func TestSweepRemovesOnlyDeadOwners(t *testing.T) {
	dir := t.TempDir()
	// A process that has exited: its pid is free (reuse within the test is
	// practically impossible).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	mine := os.Getpid()
	files := []string{
		".a-x86_64.zip" + tempMarker + strconv.Itoa(dead) + "-123",
		".b-arm64.zip" + tempMarker + strconv.Itoa(mine) + "-456",
		"build-a" + tempMarker + strconv.Itoa(dead) + "-789",
		".legacy.zip.tmp-4242", // no owner, old
		".young.zip.tmp-4343",  // no owner, new
		"a-x86_64.zip",
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(dir, ".legacy.zip.tmp-4242"), old, old)
	legacy := func(n string) bool { return strings.Contains(n, ".zip.tmp-") }
	removed := Sweep(dir, legacy)
	want := map[string]bool{files[0]: true, files[2]: true, files[3]: true}
	if len(removed) != len(want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, r := range removed {
		if !want[r] {
			t.Fatalf("removed %s, which a live process or the user owns", r)
		}
	}
	for _, f := range []string{files[1], files[4], files[5]} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s was removed: %v", f, err)
		}
	}
}
