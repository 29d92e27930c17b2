package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/ociindex"
	"github.com/moby/buildkit/session/grpchijack"
	"github.com/tonistiigi/fsutil"

	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
)

// The tests below need a real BuildKit daemon and Debian root filesystems, as
// scripts/testenv.sh makes them:
//
//	scripts/testenv.sh setup && eval "$(scripts/testenv.sh env)" && go test ./engine
//
// Without them they skip, except under CI (CI set), where they fail.

type realEnv struct {
	addr   string
	rootfs map[lambda.Arch]string
}

func needReal(t *testing.T) realEnv {
	t.Helper()
	e := realEnv{
		addr: os.Getenv("LAYERPACK_TEST_BUILDKIT"),
		rootfs: map[lambda.Arch]string{
			lambda.X86_64: os.Getenv("LAYERPACK_TEST_ROOTFS_X86_64"),
			lambda.ARM64:  os.Getenv("LAYERPACK_TEST_ROOTFS_ARM64"),
		},
	}
	var missing []string
	for _, kv := range [][2]string{
		{"LAYERPACK_TEST_BUILDKIT", e.addr},
		{"LAYERPACK_TEST_ROOTFS_X86_64", e.rootfs[lambda.X86_64]},
		{"LAYERPACK_TEST_ROOTFS_ARM64", e.rootfs[lambda.ARM64]},
	} {
		if kv[1] == "" {
			missing = append(missing, kv[0])
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("real BuildKit test: %s not set (run scripts/testenv.sh setup, then eval \"$(scripts/testenv.sh env)\")", strings.Join(missing, ", "))
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must provide them")
		}
		t.Skip(msg)
	}
	return e
}

// open opens an engine on the test daemon; progress goes to the test log.
func (e realEnv) open(t *testing.T, mod func(*Options)) *BuildKit {
	t.Helper()
	opts := Options{
		Addr:     e.addr,
		Progress: "plain",
		Out:      &testLog{t: t},
		Getenv:   func(string) string { return "" },
	}
	if mod != nil {
		mod(&opts)
	}
	b, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

var (
	sharedOnce   sync.Once
	sharedEngine *BuildKit
	sharedErr    error
	sharedLog    = &testLog{}
)

// shared returns one engine for all the tests that need no special options, so
// that each root filesystem is synced to the daemon once per test binary.
// TestMain closes it. Its progress goes to the log of the test running.
func (e realEnv) shared(t *testing.T) *BuildKit {
	t.Helper()
	sharedOnce.Do(func() {
		sharedEngine, sharedErr = Open(context.Background(), Options{
			Addr:     e.addr,
			Progress: "plain",
			Out:      sharedLog,
			Getenv:   func(string) string { return "" },
		})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	sharedLog.setT(t)
	t.Cleanup(func() { sharedLog.setT(nil) })
	return sharedEngine
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEngine != nil {
		if err := sharedEngine.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the shared engine:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// step is a step on the test root filesystem of arch.
func (e realEnv) step(t *testing.T, name string, arch lambda.Arch, script string) *Step {
	return &Step{
		Name:   name,
		Arch:   arch,
		Image:  "rootfs://" + e.rootfs[arch],
		Script: script,
		Dir:    "/",
		Env:    map[string]string{"NONCE": nonce},
		Output: "/out",
		Dest:   t.TempDir(),
	}
}

// nonce keeps one test run's steps out of the cache of earlier runs.
var nonce = strconv.FormatInt(time.Now().UnixNano(), 36)

type testLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (w *testLog) setT(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = t
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(w.buf[:i])); line != "" && testing.Verbose() && w.t != nil {
			w.t.Log(line)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func timed(t *testing.T, b *BuildKit, s *Step) time.Duration {
	t.Helper()
	start := time.Now()
	if err := b.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	dt, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(dt)
}

const helloC = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n"

// TestRealCompile compiles a C file on both architectures, checks the ELF machine
// and uname -m, then that an identical step is cached and NoCache runs it again.
func TestRealCompile(t *testing.T) {
	e := needReal(t)
	b := e.shared(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello.c"), []byte(helloC), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, arch := range lambda.Arches {
		t.Run(string(arch), func(t *testing.T) {
			s := e.step(t, "compile hello", arch, `gcc -O1 -o /out/hello hello.c
uname -m > /out/uname
date +%s%N > /out/stamp`)
			s.Dir = "/src"
			s.Mounts = []Mount{{Source: src, Target: "/src"}}
			cold := timed(t, b, s)

			f, err := elf.Open(filepath.Join(s.Dest, "hello"))
			if err != nil {
				t.Fatal(err)
			}
			want := map[lambda.Arch]elf.Machine{lambda.X86_64: elf.EM_X86_64, lambda.ARM64: elf.EM_AARCH64}[arch]
			if f.Machine != want {
				t.Errorf("hello is %v, want %v", f.Machine, want)
			}
			f.Close()
			if got := strings.TrimSpace(readFile(t, filepath.Join(s.Dest, "uname"))); got != arch.GNU() {
				t.Errorf("uname -m = %q, want %q", got, arch.GNU())
			}
			if fi, err := os.Stat(s.Dest); err != nil || fi.Mode().Perm()&0o055 != 0o055 {
				t.Errorf("Dest mode = %v, %v; want readable", fi.Mode(), err)
			}
			stamp := readFile(t, filepath.Join(s.Dest, "stamp"))

			s.Dest = t.TempDir()
			cached := timed(t, b, s)
			if got := readFile(t, filepath.Join(s.Dest, "stamp")); got != stamp {
				t.Errorf("identical step ran again (stamp %q, first %q)", got, stamp)
			}

			s.Dest, s.NoCache = t.TempDir(), true
			rerun := timed(t, b, s)
			if got := readFile(t, filepath.Join(s.Dest, "stamp")); got == stamp {
				t.Error("NoCache step was served from the cache")
			}
			t.Logf("%s: cold %v, cached %v, NoCache %v", arch, cold.Round(time.Millisecond), cached.Round(time.Millisecond), rerun.Round(time.Millisecond))
			if cached >= cold {
				t.Errorf("cached run (%v) not faster than the cold one (%v)", cached, cold)
			}
		})
	}
}

func TestRealFailingStep(t *testing.T) {
	e := needReal(t)
	b := e.open(t, func(o *Options) { o.Progress = "quiet" })
	s := e.step(t, "build extension", lambda.X86_64, `for i in $(seq 1 30); do echo "line $i"; done
echo "gcc: error: missing.c: No such file or directory" >&2
exit 3`)
	err := b.Run(context.Background(), s)
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a StepError", err, err)
	}
	msg := err.Error()
	for _, want := range []string{`step "build extension" (x86_64) failed with exit code 3`, "missing.c: No such file or directory", "| line 30"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s\n(%#v)", want, msg, se.Err)
		}
	}
	if strings.Contains(msg, "| line 5\n") || len(se.Lines) != tailLines {
		t.Errorf("error should carry the last %d lines only:\n%s", tailLines, msg)
	}
}

func TestRealCancel(t *testing.T) {
	e := needReal(t)
	b := e.shared(t)
	s := e.step(t, "sleepy", lambda.X86_64, "echo started; exec sleep 67")
	s.NoCache = true
	// Warm the root filesystem sync so that the sleep has started when we cancel.
	if err := b.Run(context.Background(), e.step(t, "warm", lambda.X86_64, "true")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, s) }()
	time.Sleep(4 * time.Second)
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		took := time.Since(cancelled)
		t.Logf("Run returned %v after cancel", took.Round(time.Millisecond))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if took > 5*time.Second {
			t.Errorf("Run took %v to return after cancel", took)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of cancel")
	}
	// The daemon stops the container: no `sleep 67` left on the machine.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := findProcess(t, "sleep\x0067\x00")
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep 67 still running after cancel: pids %v", pids)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func findProcess(t *testing.T, cmdline string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var pids []string
	for _, de := range entries {
		if _, err := strconv.Atoi(de.Name()); err != nil {
			continue
		}
		dt, err := os.ReadFile(filepath.Join("/proc", de.Name(), "cmdline"))
		if err == nil && string(dt) == cmdline {
			pids = append(pids, de.Name())
		}
	}
	return pids
}

func TestRealSecret(t *testing.T) {
	e := needReal(t)
	b := e.shared(t)
	secret := "tok-" + nonce + "-s3cr3t"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	s := e.step(t, "use secret", lambda.X86_64, `sha256sum < /run/secrets/token | cut -d' ' -f1 > /out/file-sum
printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > /out/env-sum
cp /run/secrets/token /tmp/copy-outside-output
echo done > /out/done`)
	s.Secrets = []Secret{{ID: "token", Source: file, Target: "/run/secrets/token", Env: "TOKEN"}}
	if err := b.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	for _, f := range []string{"file-sum", "env-sum"} {
		if got := strings.TrimSpace(readFile(t, filepath.Join(s.Dest, f))); got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s = %q: the step did not read the secret", f, got)
		}
	}
	err := filepath.WalkDir(s.Dest, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		if strings.Contains(readFile(t, p), secret) || de.Name() == "token" {
			t.Errorf("secret exported in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRealHostCAAndProxy checks the CA bundle and variables in a step, and that
// another proxy does not change the cache key.
func TestRealHostCAAndProxy(t *testing.T) {
	e := needReal(t)
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	ca := "# test bundle " + nonce + "\n" + string(selfSignedPEM(t, "Test CA "+nonce))
	if err := os.WriteFile(bundle, []byte(ca), 0o644); err != nil {
		t.Fatal(err)
	}
	store, _, err := javaTrustStore(bundle, []byte(ca))
	if err != nil {
		t.Fatal(err)
	}
	withProxy := func(proxy string) func(*Options) {
		return func(o *Options) {
			o.TrustHostCA, o.HostCABundle = true, bundle
			env := map[string]string{"HTTPS_PROXY": proxy, "no_proxy": "localhost"}
			o.Getenv = func(k string) string { return env[k] }
		}
	}
	script := `cat "$SSL_CERT_FILE" > /out/ca.pem
cat ` + HostCAStorePath + ` > /out/ca.p12
env | sort > /out/env
date +%s%N > /out/stamp`
	b := e.open(t, withProxy("http://proxy-one.invalid:3128"))
	s := e.step(t, "ca", lambda.X86_64, script)
	if err := b.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.Dest, "ca.pem")); got != ca {
		t.Errorf("ca.pem = %q", got)
	}
	if got := readFile(t, filepath.Join(s.Dest, "ca.p12")); got != string(store) {
		t.Errorf("%s in the step is not the bundle's trust store (%d bytes, want %d)", HostCAStorePath, len(got), len(store))
	}
	env := "\n" + readFile(t, filepath.Join(s.Dest, "env"))
	for _, k := range caEnvVars {
		if !strings.Contains(env, "\n"+k+"="+HostCAPath+"\n") {
			t.Errorf("env lacks %s=%s:\n%s", k, HostCAPath, env)
		}
	}
	if !strings.Contains(env, "\nJAVA_TOOL_OPTIONS="+javaTrustOptions+"\n") {
		t.Errorf("env lacks JAVA_TOOL_OPTIONS=%s:\n%s", javaTrustOptions, env)
	}
	for _, want := range []string{"HTTPS_PROXY=http://proxy-one.invalid:3128", "https_proxy=http://proxy-one.invalid:3128", "NO_PROXY=localhost", "no_proxy=localhost"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	stamp := readFile(t, filepath.Join(s.Dest, "stamp"))

	b2 := e.open(t, withProxy("http://proxy-two.invalid:8080"))
	s.Dest = t.TempDir()
	if err := b2.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.Dest, "stamp")); got != stamp {
		t.Error("another proxy made BuildKit run the step again: proxies are in the cache key")
	}
}

// TestRealJavaTrustStore runs a Java program fetching from Maven Central in a
// root filesystem with a JDK (LAYERPACK_TEST_ROOTFS_JAVA_<ARCH>, made by
// scripts/testenv.sh), with nothing but what the engine gives every step: it
// succeeds with the host CA and fails the PKIX check without it when the host
// reaches Maven Central through a TLS-intercepting proxy (the JDK's own trust
// store in the image does not know the proxy's CA).
func TestRealJavaTrustStore(t *testing.T) {
	e := needReal(t)
	var arch lambda.Arch
	for _, a := range []lambda.Arch{lambda.X86_64, lambda.ARM64} {
		if dir := os.Getenv("LAYERPACK_TEST_ROOTFS_JAVA_" + strings.ToUpper(string(a))); dir != "" {
			arch, e.rootfs[a] = a, dir
			break
		}
	}
	if arch == "" {
		testneed.Missing(t, "no root filesystem with a JDK (LAYERPACK_TEST_ROOTFS_JAVA_X86_64 or _ARM64)")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "Fetch.java"), []byte(fetchJava), 0o644); err != nil {
		t.Fatal(err)
	}
	const url = "https://repo.maven.apache.org/maven2/junit/junit/maven-metadata.xml"
	step := func() *Step {
		s := e.step(t, "java-fetch", arch, "java /src/Fetch.java "+url+" > /out/status")
		s.Mounts = []Mount{{Source: src, Target: "/src"}}
		return s
	}

	b := e.open(t, func(o *Options) { o.TrustHostCA = true })
	s := step()
	start := time.Now()
	if err := b.Run(context.Background(), s); err != nil {
		t.Fatalf("with the host CA: %v", err)
	}
	t.Logf("java fetch with the host CA: %v", time.Since(start).Round(time.Millisecond))
	if got := readFile(t, filepath.Join(s.Dest, "status")); got != "status 200\n" {
		t.Errorf("with the host CA: %q, want status 200", got)
	}

	// Without it, whether the fetch works depends on the network: through an
	// intercepting proxy it must fail clearly.
	err := e.open(t, nil).Run(context.Background(), step())
	var se *StepError
	switch {
	case err == nil:
		t.Log("fetched without the host CA too: no TLS-intercepting proxy on this network")
	case !errors.As(err, &se):
		t.Errorf("without the host CA: %v, want a step error", err)
	case !strings.Contains(strings.Join(se.Lines, "\n"), "PKIX path building failed"):
		t.Errorf("without the host CA: %v, want a PKIX error", err)
	}
}

func TestRealReadOnlyMount(t *testing.T) {
	e := needReal(t)
	b := e.shared(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello.c"), []byte(helloC), 0o644); err != nil {
		t.Fatal(err)
	}
	s := e.step(t, "read-only", lambda.X86_64, `test -f /src/hello.c
if touch /src/new 2>/dev/null; then echo "/src is writable"; exit 1; fi
if rm /src/hello.c 2>/dev/null; then echo "/src is writable"; exit 1; fi
echo ok > /out/ok`)
	s.Mounts = []Mount{{Source: src, Target: "/src"}}
	if err := b.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.Dest, "ok")); got != "ok\n" {
		t.Errorf("ok = %q", got)
	}
	if entries, _ := os.ReadDir(src); len(entries) != 1 {
		t.Errorf("the host folder changed: %v", entries)
	}
}

// TestRealOCILayout makes a tiny image (dash and the C library from the amd64
// root filesystem), exports it as an OCI layout, and runs a step on it.
func TestRealOCILayout(t *testing.T) {
	e := needReal(t)
	b := e.shared(t)
	c, err := b.connect(context.Background(), lambda.X86_64)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := e.rootfs[lambda.X86_64]
	// source -> destination; the C library and loader by their real (not
	// symlinked) paths, the loader where dash's ELF header wants it.
	files := [][2]string{
		{"/usr/bin/dash", "/bin/sh"},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"},
	}
	var follow []string
	for _, f := range files {
		follow = append(follow, strings.TrimPrefix(f[0], "/"))
	}
	src := llb.Local("rootfs", llb.FollowPaths(follow))
	st := llb.Scratch()
	for _, f := range files {
		st = st.File(llb.Copy(src, f[0], f[1], &llb.CopyInfo{CreateDestPath: true}))
	}
	def, err := st.Marshal(context.Background(), llb.LinuxAmd64)
	if err != nil {
		t.Fatal(err)
	}
	layout := t.TempDir()
	fsys, err := fsutilFS(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.c.Solve(context.Background(), def, client.SolveOpt{
		LocalMounts: fsys,
		Exports:     []client.ExportEntry{{Type: client.ExporterOCI, OutputDir: layout, Attrs: map[string]string{"tar": "false"}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	image := "oci-layout://" + layout + ":latest"
	dgst, err := b.ImageDigest(context.Background(), image, lambda.X86_64)
	if err != nil || !strings.HasPrefix(dgst, "sha256:") {
		t.Fatalf("ImageDigest = %q, %v", dgst, err)
	}
	s := e.step(t, "on oci layout", lambda.X86_64, `echo "hello from $0" > /out/hi`)
	s.Image = image
	if err := b.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.Dest, "hi")); got != "hello from /bin/sh\n" {
		t.Errorf("hi = %q", got)
	}
}

// TestRealPrivateDaemon starts a private buildkitd (buildkitd on PATH, root) when
// nothing else is found, and stops it on Close.
func TestRealPrivateDaemon(t *testing.T) {
	needReal(t)
	if os.Geteuid() != 0 {
		testneed.Missing(t, "a private buildkitd needs root")
	}
	if _, err := lookPathSbin("buildkitd"); err != nil {
		testneed.Missing(t, "buildkitd not on PATH")
	}
	if _, err := os.Stat(DefaultSocket); err == nil {
		t.Skip(DefaultSocket + " exists: discovery would use it")
	}
	cache := t.TempDir()
	b, err := Open(context.Background(), Options{CacheDir: cache, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := b.connect(context.Background(), lambda.X86_64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("private buildkitd answered after %v", time.Since(start).Round(time.Millisecond))
	if c.daemon == nil || c.t.Addr != "unix://"+filepath.Join(cache, "buildkitd", "buildkitd.sock") {
		t.Fatalf("connected to %s (daemon %v), want a private daemon", c.t, c.daemon)
	}
	if got := b.Describe(lambda.X86_64); !strings.HasPrefix(got, c.t.Addr+" (linux/amd64, ") {
		t.Errorf("Describe = %q", got)
	}
	pid := c.daemon.cmd.Process.Pid
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
		t.Errorf("buildkitd (pid %d) still runs after Close", pid)
	}
	if _, err := os.Stat(filepath.Join(cache, "buildkitd", "buildkitd.sock")); err == nil {
		t.Error("socket left behind")
	}
}

// TestRealDockerDialer plays a Docker engine in front of the test daemon (POST
// /grpc is spliced to its socket, POST /session to a session stream through its
// control API, as Docker's own BuildKit does) and runs a step through the Docker
// dialers.
func TestRealDockerDialer(t *testing.T) {
	e := needReal(t)
	if _, err := os.Stat(DefaultSocket); err == nil {
		t.Skip(DefaultSocket + " exists: discovery would use it")
	}
	bkSock, ok := strings.CutPrefix(e.addr, "unix://")
	if !ok {
		t.Skip("test daemon is not on a unix socket")
	}
	bk, err := client.New(context.Background(), e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var upgrades sync.Map
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go fakeDocker(nc, bkSock, bk, &upgrades)
		}
	}()

	b := e.open(t, func(o *Options) {
		o.Addr = ""
		env := map[string]string{"DOCKER_HOST": "unix://" + sock}
		o.Getenv = func(k string) string { return env[k] }
	})
	s := e.step(t, "via docker", lambda.X86_64, `echo docker > /out/via`)
	if err := b.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.Dest, "via")); got != "docker\n" {
		t.Errorf("via = %q", got)
	}
	for _, p := range []string{"/grpc", "/session"} {
		if _, ok := upgrades.Load(p); !ok {
			t.Errorf("no %s upgrade seen", p)
		}
	}
	if got := b.Describe(lambda.X86_64); !strings.HasPrefix(got, "docker unix://"+sock) {
		t.Errorf("Describe = %q", got)
	}
}

func fakeDocker(nc net.Conn, bkSock string, bk *client.Client, upgrades *sync.Map) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	var back net.Conn
	switch {
	case req.URL.Path == "/_ping":
		io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
		return
	case req.URL.Path == "/grpc":
		back, err = net.Dial("unix", bkSock)
	case req.URL.Path == "/session":
		meta := map[string][]string{}
		for k, v := range req.Header {
			if strings.HasPrefix(k, "X-Docker-Expose-Session-") {
				meta[k] = v
			}
		}
		back, err = grpchijack.Dialer(bk.ControlClient())(context.Background(), req.Header.Get("Upgrade"), meta)
	default:
		io.WriteString(nc, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if err != nil {
		io.WriteString(nc, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer back.Close()
	upgrades.Store(req.URL.Path, true)
	io.WriteString(nc, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: "+req.Header.Get("Upgrade")+"\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() { io.Copy(back, br); done <- struct{}{} }()
	go func() { io.Copy(nc, back); done <- struct{}{} }()
	<-done
}

func fsutilFS(dir string) (map[string]fsutil.FS, error) {
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, err
	}
	return map[string]fsutil.FS{"rootfs": fs}, nil
}

// TestRealParallel runs steps of both architectures at once on one engine.
func TestRealParallel(t *testing.T) {
	e := needReal(t)
	b := e.shared(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	dests := make([]string, 6)
	for i := range dests {
		arch := lambda.Arches[i%2]
		s := e.step(t, fmt.Sprintf("parallel %d", i), arch, fmt.Sprintf("echo %d > /out/n; uname -m >> /out/n", i))
		dests[i] = s.Dest
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.Run(context.Background(), s)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, d := range dests {
		if got, want := readFile(t, filepath.Join(d, "n")), fmt.Sprintf("%d\n%s\n", i, lambda.Arches[i%2].GNU()); got != want {
			t.Errorf("step %d wrote %q, want %q", i, got, want)
		}
	}
}

// TestRealCacheExport exports a step's cache to a local folder under the step's
// own tag, and imports it again without error.
func TestRealCacheExport(t *testing.T) {
	e := needReal(t)
	dir := t.TempDir()
	b := e.open(t, func(o *Options) {
		o.CacheTo = []string{"type=local,dest=" + dir}
		o.CacheFrom = []string{"type=local,src=" + dir}
	})
	s := e.step(t, "cache me", lambda.X86_64, "echo cached > /out/c")
	for i := range 2 {
		s.Dest = t.TempDir()
		if err := b.Run(context.Background(), s); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	desc, err := ociindex.NewStoreIndex(dir).Get(stepCacheTag(s.Name, s.Arch))
	if err != nil || desc == nil {
		t.Fatalf("no cache for the step's tag in %s/index.json: %v", dir, err)
	}
}
