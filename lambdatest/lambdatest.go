// Package lambdatest runs code against a built layer the way Lambda would: the zip
// unpacked at /opt in a root filesystem of the layer's architecture (under QEMU for a
// foreign one), with Lambda's PATH and LD_LIBRARY_PATH. Tests use it to prove a layer
// loads, not just that it was written. Build runs the real pipeline that writes the
// layer, for the builders' tests.
package lambdatest

import (
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
)

// Lambda's environment (lambda-facts.md); /opt/bin and /opt/lib are the layer's.
const (
	Path          = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
	LDLibraryPath = "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
)

// Env is what the real-BuildKit tests need, from scripts/testenv.sh.
type Env struct {
	Addr   string
	Rootfs map[lambda.Arch]string
}

// Need returns the test environment, or skips the test when it is absent, unless CI
// is set: there, a missing daemon is a failure.
func Need(t testing.TB) Env {
	t.Helper()
	e, ok := FromEnv()
	if !ok {
		testneed.Missing(t, "LAYERPACK_TEST_BUILDKIT / LAYERPACK_TEST_ROOTFS_* (a BuildKit daemon and test images) are not set")
	}
	return e
}

// FromEnv reads the test environment; ok is false when any part is missing.
func FromEnv() (e Env, ok bool) {
	e = Env{Addr: os.Getenv("LAYERPACK_TEST_BUILDKIT"), Rootfs: map[lambda.Arch]string{
		lambda.X86_64: os.Getenv("LAYERPACK_TEST_ROOTFS_X86_64"),
		lambda.ARM64:  os.Getenv("LAYERPACK_TEST_ROOTFS_ARM64"),
	}}
	return e, e.Addr != "" && e.Rootfs[lambda.X86_64] != "" && e.Rootfs[lambda.ARM64] != ""
}

// Open opens a BuildKit engine on the test daemon.
func (e Env) Open() (*engine.BuildKit, error) {
	return engine.Open(context.Background(), engine.Options{Addr: e.Addr, Progress: "quiet", TrustHostCA: true})
}

// Image is the rootfs:// reference of the test image for arch.
func (e Env) Image(arch lambda.Arch) string { return "rootfs://" + e.Rootfs[arch] }

// Engine opens a BuildKit engine on the test daemon, closed when the test ends.
func (e Env) Engine(t testing.TB) *engine.BuildKit {
	t.Helper()
	eng, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// Run unpacks zipPath at /opt in the test image of arch and runs script with sh -e
// and Lambda's PATH and LD_LIBRARY_PATH plus env. It returns the script's output
// (stdout and stderr); a failing script fails the test with that output.
func (e Env) Run(t testing.TB, arch lambda.Arch, zipPath, script string, env map[string]string) string {
	t.Helper()
	out, err := e.TryRun(t, arch, zipPath, script, env)
	if err != nil {
		t.Fatalf("running in the %s layer %s: %v\n%s", arch, filepath.Base(zipPath), err, out)
	}
	return out
}

// TryRun is Run that returns the script's failure instead of failing the test.
func (e Env) TryRun(t testing.TB, arch lambda.Arch, zipPath, script string, env map[string]string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return e.Exec(ctx, e.Engine(t), arch, zipPath, script, env)
}

// Exec is TryRun for callers without a testing.TB (testscript commands).
func (e Env) Exec(ctx context.Context, eng engine.Engine, arch lambda.Arch, zipPath, script string, env map[string]string) (string, error) {
	tmp, err := os.MkdirTemp("", "lambdatest-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	opt, dest := filepath.Join(tmp, "opt"), filepath.Join(tmp, "out")
	if err := os.Mkdir(dest, 0o755); err != nil {
		return "", err
	}
	if err := Unzip(zipPath, opt); err != nil {
		return "", err
	}
	stepEnv := map[string]string{"PATH": Path, "LD_LIBRARY_PATH": LDLibraryPath}
	for k, v := range env {
		stepEnv[k] = v
	}
	// The script's output is captured into a file so the test can read it even
	// when the step succeeds (progress output is quiet).
	err = eng.Run(ctx, &engine.Step{
		Name:    "load test " + filepath.Base(zipPath),
		Arch:    arch,
		Image:   e.Image(arch),
		Script:  "set +e\n( " + script + "\n) >/out/output 2>&1\necho $? >/out/status\nexit 0",
		Dir:     "/",
		Env:     stepEnv,
		Mounts:  []engine.Mount{{Source: opt, Target: "/opt"}},
		Output:  "/out",
		Dest:    dest,
		NoCache: true,
	})
	if err != nil {
		return "", err
	}
	out, _ := os.ReadFile(filepath.Join(dest, "output"))
	status, _ := os.ReadFile(filepath.Join(dest, "status"))
	if s := strings.TrimSpace(string(status)); s != "0" {
		return string(out), &ExitError{Status: s}
	}
	return string(out), nil
}

// ExitError is a load-test script that exited non-zero.
type ExitError struct{ Status string }

func (e *ExitError) Error() string { return "script exited with status " + e.Status }

// Unzip extracts a layer zip into dir, keeping modes and symlinks, as Lambda does.
func Unzip(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		if f.Mode()&os.ModeSymlink != 0 {
			target, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			if err := os.Symlink(string(target), p); err != nil {
				return err
			}
			continue
		}
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, f.Mode().Perm())
		if err == nil {
			_, err = io.Copy(out, rc)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
