package ghactions

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOutputs(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	env := map[string]string{"GITHUB_OUTPUT": out}
	getenv := func(k string) string { return env[k] }
	if err := Outputs(getenv, map[string]string{"b": "2", "a": "1", "m": "x\ny"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	s := string(b)
	if !strings.HasPrefix(s, "a=1\nb=2\nm<<ghadelimiter_") || !strings.Contains(s, "\nx\ny\nghadelimiter_") {
		t.Fatalf("unexpected output file:\n%s", s)
	}
	if err := Outputs(getenv, map[string]string{"bad\nname": "v"}); err == nil {
		t.Fatal("a name with a newline was accepted")
	}
	if err := Outputs(func(string) string { return "" }, map[string]string{"a": "1"}); err != nil {
		t.Fatal("unset GITHUB_OUTPUT must be a no-op:", err)
	}
}

func TestAnnotation(t *testing.T) {
	var b bytes.Buffer
	Annotation(&b, "error", "layerpack.toml", 9, "bad\n::error::x")
	if got, want := b.String(), "::error file=layerpack.toml,line=9::bad%0A::error::x\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
