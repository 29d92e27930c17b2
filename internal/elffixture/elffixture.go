// Package elffixture gives ELF tests small committed binaries instead of needing
// compilers (an aarch64 cross compiler, say) at test time. A fixture is named by a
// hash of the compiler, the source and the arguments; when it is missing, or with
// LAYERPACK_UPDATE_ELF_FIXTURES=1, it is compiled and written to the fixture
// folder, to be committed.
package elffixture

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/internal/testneed"
)

// Compile returns the path of the binary cc makes from the C source src with args
// (name is the output's file name, which -soname and the like may refer to). dir
// is the fixture folder, relative to the test's package.
func Compile(t testing.TB, dir, cc, name, src string, args ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(dir, key(cc, name, src, args)+"-"+name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err == nil && os.Getenv("LAYERPACK_UPDATE_ELF_FIXTURES") == "" {
		return p
	}
	if _, err := exec.LookPath(cc); err != nil {
		testneed.Missing(t, "fixture "+p+" is not committed and "+cc+" is not installed to make it")
	}
	work := t.TempDir()
	srcPath := filepath.Join(work, "src.c")
	if err := os.WriteFile(srcPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, name)
	cmd := exec.Command(cc, append([]string{"-o", out, srcPath, "-L" + work}, args...)...)
	cmd.Dir = work
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote ELF fixture %s (commit it)", p)
	return p
}

// key names a fixture by what makes it; absolute paths in args count by their
// base name (they are temp folders of the run).
func key(cc, name, src string, args []string) string {
	h := sha256.New()
	for _, s := range append([]string{cc, name, src}, args...) {
		if filepath.IsAbs(s) {
			s = filepath.Base(s)
		}
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}
