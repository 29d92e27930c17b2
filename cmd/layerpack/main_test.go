package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/layerpack/layerpack/builders/files"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
)

var update = flag.Bool("update", false, "rewrite the golden outputs in testdata/script")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"layerpack": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScript runs testdata/script/*.txtar: the CLI, for real, against golden outputs.
func TestScript(t *testing.T) {
	testscript.Run(t, scriptParams(t, "../../testdata/script"))
}

func scriptParams(t *testing.T, dir string) testscript.Params {
	return testscript.Params{
		Dir:           dir,
		UpdateScripts: *update,
		Setup: func(e *testscript.Env) error {
			// Each script gets its own cache; builds must not depend on the user's.
			e.Setenv("XDG_CACHE_HOME", filepath.Join(e.WorkDir, ".cache"))
			e.Setenv("LAYERPACK_CACHE_DIR", "")
			// One zig for every script (testenv.d/zig.sh keeps it between runs).
			e.Setenv("LAYERPACK_ZIG_DIR", os.Getenv("LAYERPACK_TEST_ZIG_DIR"))
			for _, k := range []string{"LAYERPACK_TEST_BUILDKIT", "LAYERPACK_TEST_ROOTFS_X86_64", "LAYERPACK_TEST_ROOTFS_ARM64", "LAYERPACK_TEST_ROOTFS_JAVA_X86_64", "CI", "PATH"} {
				e.Setenv(k, os.Getenv(k))
			}
			e.Setenv("SOURCE_DATE_EPOCH", "")
			// The example sources, for scripts that build them.
			return files.Copy(context.Background(), "../../examples", filepath.Join(e.WorkDir, "examples"), 0)
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "buildkit":
				return haveBuildKit(t), nil
			case "javaimage":
				// The Java build image (a JDK and Maven) exists for amd64 only: Java
				// steps run as the machine's own architecture.
				ok := runtime.GOARCH == "amd64" && os.Getenv("LAYERPACK_TEST_ROOTFS_JAVA_X86_64") != ""
				if !ok && runtime.GOARCH == "amd64" && os.Getenv("CI") != "" {
					t.Fatal("CI is set but LAYERPACK_TEST_ROOTFS_JAVA_X86_64 is not: run `eval \"$(scripts/testenv.sh env)\"` after `scripts/testenv.sh setup`")
				}
				return ok, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"zipls":     cmdZipls,
			"codesha":   cmdCodesha,
			"chtimes":   cmdChtimes,
			"sizeof":    cmdSizeof,
			"mkbig":     cmdMkbig,
			"unzipto":   cmdUnzipto,
			"rootfsdir": cmdRootfsdir,
			"lambdarun": cmdLambdarun,
			"jsonnorm":  cmdJSONNorm,
			"sbomls":    cmdSbomls,
			"lockpurls": cmdLockpurls,
		},
	}
}

// haveBuildKit reports whether the real-daemon tests can run. In CI they must: a
// missing daemon there is a failure, not a skip.
func haveBuildKit(t *testing.T) bool {
	ok := os.Getenv("LAYERPACK_TEST_BUILDKIT") != "" && os.Getenv("LAYERPACK_TEST_ROOTFS_X86_64") != "" && os.Getenv("LAYERPACK_TEST_ROOTFS_ARM64") != ""
	if !ok && os.Getenv("CI") != "" {
		t.Fatal("CI is set but LAYERPACK_TEST_BUILDKIT / LAYERPACK_TEST_ROOTFS_* are not: run `eval \"$(scripts/testenv.sh env)\"` after `scripts/testenv.sh setup`")
	}
	if !ok {
		t.Log("skipping BuildKit scripts: LAYERPACK_TEST_BUILDKIT and LAYERPACK_TEST_ROOTFS_* are not set (run scripts/testenv.sh setup)")
	}
	return ok
}

// zipls prints one line per entry: mode, size, sha256 (of the content) and name, in
// archive order, plus the method and time of the first entry: enough to see any
// change in what a zip holds.
func cmdZipls(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: zipls ZIP")
	}
	zr, err := zip.OpenReader(ts.MkAbs(args[0]))
	ts.Check(err)
	defer zr.Close()
	for _, f := range zr.File {
		sum := "-"
		if !f.FileInfo().IsDir() {
			rc, err := f.Open()
			ts.Check(err)
			h := sha256.New()
			_, err = io.Copy(h, rc)
			ts.Check(err)
			rc.Close()
			sum = hex.EncodeToString(h.Sum(nil))[:16]
		}
		method := "deflate"
		if f.Method == zip.Store {
			method = "store"
		}
		fmt.Fprintf(ts.Stdout(), "%s %8d %s %-7s %s %s\n", f.Mode(), f.UncompressedSize64, sum, method,
			f.Modified.UTC().Format("2006-01-02T15:04:05"), f.Name)
	}
}

// codesha prints the CodeSha256 of a zip.
func cmdCodesha(ts *testscript.TestScript, neg bool, args []string) {
	for _, a := range args {
		sum, err := lambda.FileCodeSha256(ts.MkAbs(a))
		ts.Check(err)
		fmt.Fprintln(ts.Stdout(), sum)
	}
}

// chtimes sets the mtime of files to a Unix time: chtimes SECONDS FILE...
func cmdChtimes(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: chtimes SECONDS FILE...")
	}
	sec, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	for _, f := range args[1:] {
		ts.Check(os.Chtimes(ts.MkAbs(f), time.Unix(sec, 0), time.Unix(sec, 0)))
	}
}

// sizeof prints a file's size.
func cmdSizeof(ts *testscript.TestScript, neg bool, args []string) {
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	fmt.Fprintln(ts.Stdout(), st.Size())
}

// mkbig writes a file of N bytes that deflate cannot shrink: mkbig FILE N.
func cmdMkbig(ts *testscript.TestScript, neg bool, args []string) {
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	ts.Check(os.MkdirAll(filepath.Dir(ts.MkAbs(args[0])), 0o755))
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	// A cheap xorshift stream: incompressible, and the same on every machine.
	buf := make([]byte, 1<<20)
	x := uint64(88172645463325252)
	for n > 0 {
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for j := 0; j < 8; j++ {
				buf[i+j] = byte(x >> (8 * j))
			}
		}
		w := int64(len(buf))
		if n < w {
			w = n
		}
		_, err := f.Write(buf[:w])
		ts.Check(err)
		n -= w
	}
}

// unzipto extracts a zip into a folder, keeping modes and symlinks.
func cmdUnzipto(ts *testscript.TestScript, neg bool, args []string) {
	ts.Check(lambdatest.Unzip(ts.MkAbs(args[0]), ts.MkAbs(args[1])))
}

// lambdarun ARCH ZIP SCRIPT runs SCRIPT in the test image of ARCH with the zip at /opt
// and Lambda's PATH and LD_LIBRARY_PATH (QEMU for arm64), and prints its output.
func cmdLambdarun(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: lambdarun ARCH ZIP SCRIPT")
	}
	e, ok := lambdatest.FromEnv()
	if !ok {
		ts.Fatalf("lambdarun needs the BuildKit test environment")
	}
	eng, err := e.Open()
	ts.Check(err)
	defer eng.Close()
	out, err := e.Exec(context.Background(), eng, lambda.Arch(args[0]), ts.MkAbs(args[1]), args[2], nil)
	fmt.Fprint(ts.Stdout(), out)
	var exit *lambdatest.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		ts.Fatalf("lambdarun: %v", err)
	case err != nil && !neg:
		ts.Fatalf("lambdarun: %v", err)
	case err == nil && neg:
		ts.Fatalf("lambdarun: the script succeeded")
	}
}

// rootfsdir prints the env var's rootfs folder path, for scripts that need the images.
func cmdRootfsdir(ts *testscript.TestScript, neg bool, args []string) {
	fmt.Fprintln(ts.Stdout(), ts.Getenv("LAYERPACK_TEST_ROOTFS_"+strings.ToUpper(args[0])))
}
