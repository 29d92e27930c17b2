// Package layerpacktest adds layerpack's commands and conditions to testscript
// (github.com/rogpeppe/go-internal/testscript) suites, for golden-zip tests in a
// project that builds its Lambda layers with layerpack: pin a layer's CodeSha256 in a
// txtar file, and when it changes, see why.
//
// Commands:
//
//	layerpack ARGS...   run layerpack (the version your go.mod requires, built once per
//	                    test binary; or the program $LAYERPACK names)
//	zipls ZIP           one line per entry: mode, size, content hash, method, time, name
//	codesha ZIP...      the CodeSha256 of each zip (what Lambda and Terraform report)
//	cmpzip A.zip B.zip  fail unless the zips are byte-for-byte identical, printing
//	                    every difference entry by entry (as `layerpack diff` does)
//
// Conditions: [buildkit] is true when a BuildKit daemon can be reached: BUILDKIT_HOST
// is set, or the default socket /run/buildkit/buildkitd.sock or Docker's socket exists
// (layers with native code need one; layers of files, wheels or pure JS do not).
//
// In a test:
//
//	func TestLayers(t *testing.T) {
//		p := testscript.Params{Dir: "testdata/layers"}
//		layerpacktest.Setup(&p)
//		testscript.Run(t, p)
//	}
//
// and testdata/layers/tools.txtar, with the layer's sources in the archive (or copied
// in by Params.Setup):
//
//	layerpack build --arch x86_64
//	codesha dist/tools-x86_64.zip
//	cmp stdout want-sha.txt
//	zipls dist/tools-x86_64.zip
//	cmp stdout want-entries.txt
//	-- layerpack.toml --
//	[layer.tools]
//	compatible_runtimes = ["provided.al2023"]
//	[[layer.tools.files]]
//	src = "scripts"
//	dest = "bin"
//	mode = "0755"
//	-- scripts/hello --
//	...
//	-- want-sha.txt --
//	...
//
// With Params.UpdateScripts (go test -update in the usual setup), cmp rewrites the
// pinned values; cmpzip against a golden zip kept beside the scripts explains, entry
// by entry, what changed.
package layerpacktest

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/zipdiff"
)

// Setup adds the commands and conditions to p, keeping p's own (theirs win on a
// name clash) and calling p's Condition for names it does not know.
func Setup(p *testscript.Params) {
	if p.Cmds == nil {
		p.Cmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){}
	}
	for name, f := range Commands() {
		if _, ok := p.Cmds[name]; !ok {
			p.Cmds[name] = f
		}
	}
	next := p.Condition
	p.Condition = func(cond string) (bool, error) {
		if ok, known := Condition(cond); known {
			return ok, nil
		}
		if next != nil {
			return next(cond)
		}
		return false, fmt.Errorf("unknown condition %q", cond)
	}
}

// Commands are the script commands, by name.
func Commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"layerpack": cmdLayerpack,
		"zipls":     cmdZipls,
		"codesha":   cmdCodesha,
		"cmpzip":    cmdCmpzip,
	}
}

// Condition evaluates the conditions this package knows; known is false for others.
func Condition(cond string) (ok, known bool) {
	switch cond {
	case "buildkit":
		return DaemonReachable(), true
	}
	return false, false
}

// DaemonReachable reports whether a BuildKit daemon is configured or its usual socket
// exists. It does not dial: a script that needs the daemon fails with layerpack's own
// message when the socket does not answer.
func DaemonReachable() bool {
	if os.Getenv("BUILDKIT_HOST") != "" {
		return true
	}
	for _, s := range []string{"/run/buildkit/buildkitd.sock", "/var/run/docker.sock"} {
		if st, err := os.Stat(s); err == nil && st.Mode()&os.ModeSocket != 0 {
			return true
		}
	}
	return false
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary is the layerpack program the `layerpack` command runs: $LAYERPACK, else
// github.com/layerpack/layerpack/cmd/layerpack at the version the calling module
// requires, built once per test binary (go's build cache makes that quick) into
// the user cache folder, one file per module folder, replaced atomically.
func Binary() (string, error) {
	if p := os.Getenv("LAYERPACK"); p != "" {
		return p, nil
	}
	buildOnce.Do(func() { binPath, buildErr = build() })
	return binPath, buildErr
}

func build() (string, error) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	wd, _ := os.Getwd()
	mod, _ := exec.Command(goBin, "env", "GOMOD").Output()
	key := sha256.Sum256([]byte(strings.TrimSpace(string(mod)) + "\x00" + wd + "\x00" + runtime.GOOS + "/" + runtime.GOARCH))
	dir := filepath.Join(base, "layerpacktest", hex.EncodeToString(key[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("layerpacktest: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "layerpack.tmp-*")
	if err != nil {
		return "", fmt.Errorf("layerpacktest: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command(goBin, "build", "-o", tmp.Name(), "github.com/layerpack/layerpack/cmd/layerpack")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("layerpacktest: building layerpack: %v\n%s", err, b)
	}
	out := filepath.Join(dir, "layerpack")
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("layerpacktest: %w", err)
	}
	return out, nil
}

func cmdLayerpack(ts *testscript.TestScript, neg bool, args []string) {
	bin, err := Binary()
	ts.Check(err)
	err = ts.Exec(bin, args...)
	if err != nil {
		ts.Logf("[%v]", err)
	}
	switch {
	case err != nil && !neg:
		ts.Fatalf("unexpected layerpack failure")
	case err == nil && neg:
		ts.Fatalf("unexpected layerpack success")
	}
}

// Listing is zipls's output for a zip: mode, size, the first 16 hex digits of the
// content's SHA-256, method and time per entry, in archive order.
func Listing(path string) (string, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	var b strings.Builder
	for _, f := range zr.File {
		sum := "-"
		if !f.FileInfo().IsDir() {
			rc, err := f.Open()
			if err != nil {
				return "", fmt.Errorf("%s: %s: %w", path, f.Name, err)
			}
			h := sha256.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil {
				return "", fmt.Errorf("%s: %s: %w", path, f.Name, err)
			}
			sum = hex.EncodeToString(h.Sum(nil))[:16]
		}
		method := "deflate"
		if f.Method == zip.Store {
			method = "store"
		}
		fmt.Fprintf(&b, "%s %8d %s %-7s %s %s\n", f.Mode(), f.UncompressedSize64, sum, method,
			f.Modified.UTC().Format("2006-01-02T15:04:05"), f.Name)
	}
	return b.String(), nil
}

func cmdZipls(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: zipls ZIP")
	}
	s, err := Listing(ts.MkAbs(args[0]))
	ts.Check(err)
	fmt.Fprint(ts.Stdout(), s)
}

func cmdCodesha(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 || neg {
		ts.Fatalf("usage: codesha ZIP...")
	}
	for _, a := range args {
		sum, err := lambda.FileCodeSha256(ts.MkAbs(a))
		ts.Check(err)
		fmt.Fprintln(ts.Stdout(), sum)
	}
}

// Compare explains how two zips differ, one line per difference; "" when they are
// byte-for-byte identical.
func Compare(a, b string) (string, error) {
	ds, err := zipdiff.Diff(context.Background(), a, b)
	if err != nil || len(ds) == 0 {
		return "", err
	}
	var s strings.Builder
	if err := zipdiff.Write(&s, ds); err != nil {
		return "", err
	}
	return s.String(), nil
}

func cmdCmpzip(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: cmpzip A.zip B.zip")
	}
	diff, err := Compare(ts.MkAbs(args[0]), ts.MkAbs(args[1]))
	ts.Check(err)
	fmt.Fprint(ts.Stdout(), diff)
	switch {
	case diff != "" && !neg:
		ts.Fatalf("%s and %s differ:\n%s", args[0], args[1], diff)
	case diff == "" && neg:
		ts.Fatalf("%s and %s are identical", args[0], args[1])
	}
}
