package main

import (
	"os"
	"path/filepath"
	"testing"
)

// BuildKit's display writes through engineOut: the live status line is blanked
// first, so the display's cursor moves start from a clean line.
func TestEngineOutClearsStatusLine(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "tty"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ev := newEvents("tty", f, 2)
	out := ev.engineOut()
	if _, ok := out.(ttyFile); !ok {
		t.Fatalf("engineOut in tty mode = %T, want ttyFile (progressui needs an *os.File)", out)
	}
	ev.line("[0/2] zipping")
	if _, err := out.Write([]byte("#1 step\n")); err != nil {
		t.Fatal(err)
	}
	ev.line("[1/2] done")
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := "\r[0/2] zipping" + "\r             \r" + "#1 step\n" + "\r[1/2] done"
	if string(got) != want {
		t.Errorf("terminal got %q\nwant %q", got, want)
	}

	if w := newEvents("plain", f, 1).engineOut(); w != any(f) {
		t.Errorf("plain mode: engineOut = %T, want the writer itself", w)
	}
}
