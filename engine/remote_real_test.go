package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/builders/native"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/registrytest"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/plan"
)

// Remote builders, for real: a second buildkitd that this test starts on a
// loopback tcp:// port with mutual TLS (certificates made in Go), and the test
// environment's daemon (scripts/testenv.sh). Only one extra daemon runs at a time.

// tlsDaemon is a buildkitd started by a test, serving tcp:// with mTLS.
type tlsDaemon struct {
	addr string
	pki  *engine.TestPKI
	log  string
	cmd  *exec.Cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startTLSDaemon starts `buildkitd --addr tcp://127.0.0.1:PORT --tlscacert ...`
// with its own state under a temp folder, stopped when the test ends.
func startTLSDaemon(t *testing.T, pki *engine.TestPKI) *tlsDaemon {
	t.Helper()
	bin := testneed.Tool(t, "buildkitd")
	if os.Geteuid() != 0 {
		testneed.Missing(t, "buildkitd with the OCI worker needs root")
	}
	// The state folder must not be under t.TempDir(): its removal races with
	// buildkitd's unmounts; it is removed by the cleanup below, after the stop.
	root, err := os.MkdirTemp("", "layerpack-tls-buildkitd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &tlsDaemon{addr: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), pki: pki, log: filepath.Join(root, "buildkitd.log")}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "--debug",
		"--addr", d.addr,
		"--tlscacert", pki.CA, "--tlscert", pki.ServerCert, "--tlskey", pki.ServerKey,
		"--root", filepath.Join(root, "state"),
		"--oci-worker=true", "--containerd-worker=false")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = d.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			dt, _ := os.ReadFile(d.log)
			if len(dt) > 4000 {
				dt = dt[len(dt)-4000:]
			}
			t.Logf("tail of %s:\n%s", d.log, dt)
		}
		_ = os.RemoveAll(root)
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := client.New(context.Background(), d.addr,
			client.WithServerConfig("", pki.CA), client.WithCredentials(pki.ClientCert, pki.ClientKey))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = c.ListWorkers(ctx)
			cancel()
			c.Close()
			if err == nil {
				return d
			}
		}
		select {
		case <-exited:
			dt, _ := os.ReadFile(d.log)
			t.Fatalf("buildkitd exited before it answered:\n%s", dt)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd did not answer on %s within 60s: %v", d.addr, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (d *tlsDaemon) tls() engine.TLS {
	return engine.TLS{CA: d.pki.CA, Cert: d.pki.ClientCert, Key: d.pki.ClientKey}
}

// client opens a BuildKit client on d, for looking at the daemon's own state.
func (d *tlsDaemon) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), d.addr,
		client.WithServerConfig("", d.pki.CA), client.WithCredentials(d.pki.ClientCert, d.pki.ClientKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// localSources lists the names of the local sources d has synced ("rootfs-...").
func (d *tlsDaemon) localSources(t *testing.T) []string {
	t.Helper()
	du, err := d.client(t).DiskUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range du {
		if name, ok := strings.CutPrefix(u.Description, "local source for "); ok {
			out = append(out, name)
		}
	}
	return out
}

// openEngine opens an engine with opts and the test's output settings.
func openEngine(t *testing.T, opts engine.Options, out *lambdatest.SyncWriter) *engine.BuildKit {
	t.Helper()
	opts.Progress = "plain"
	if out == nil {
		out = &lambdatest.SyncWriter{}
	}
	opts.Out = out
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	opts.TrustHostCA = true
	eng, err := engine.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// greetProject is the native example (examples/native/greet) as a project of its own.
func greetProject(t *testing.T, env lambdatest.Env) string {
	t.Helper()
	files := map[string]string{"layerpack.toml": `[images]
default = "rootfs://images/{arch}"
[layer.greet]
compatible_runtimes = ["provided.al2023"]
architectures = ["x86_64", "arm64"]
[layer.greet.native]
context = "greet"
packages = ["libjansson-dev"]
script = "make && make install PREFIX=/opt"
`}
	src := "../examples/native/greet"
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		dt, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files["greet/"+e.Name()] = string(dt)
	}
	dir := lambdatest.WriteProject(t, files)
	if err := os.Chmod(filepath.Join(dir, "greet", "greet-extension"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range lambda.Arches {
		if err := os.Symlink(env.Rootfs[a], filepath.Join(dir, "images", string(a))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildGreet runs the real pipeline on the greet project for x86_64 with a fresh
// layerpack cache; unlike lambdatest.Build it lets BuildKit use its cache, so a
// cache imported from a registry can be seen.
func buildGreet(t *testing.T, dir string, eng engine.Engine) *pipeline.Result {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := plan.Make(cfg, nil, []lambda.Arch{lambda.X86_64}, []builders.Builder{native.New()})
	if err != nil {
		t.Fatal(err)
	}
	cch, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	log := &lambdatest.SyncWriter{}
	results, err := pipeline.Run(ctx, pipeline.Options{
		Config: cfg, Items: items, OutDir: t.TempDir(), Cache: cch, Engine: eng,
		Epoch: time.Unix(315532800, 0), Log: log,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	if len(results) != 1 {
		t.Fatalf("%d results", len(results))
	}
	return results[0]
}

// cachedStep reports whether the plain progress output shows the vertex named
// name as CACHED.
func cachedStep(progress, name string) (found, cached bool) {
	re := regexp.MustCompile(`(?m)^#(\d+) ` + regexp.QuoteMeta(name) + `$`)
	for _, m := range re.FindAllStringSubmatch(progress, -1) {
		found = true
		id := "#" + m[1] + " "
		if strings.Contains(progress, id+"CACHED\n") {
			cached = true
			continue
		}
		// A result imported from a remote cache whose layer was not yet pulled
		// shows as the layer's extraction, not CACHED; the step's process did not
		// run when it printed nothing (a run's lines are "#N <seconds> ...").
		ran := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\d+\.\d+ `).MatchString(progress)
		if !ran && regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(id)+`extracting sha256:`).MatchString(progress) {
			cached = true
		}
	}
	return found, cached
}

// trivialStep runs `uname -m` for arch and returns what it printed.
func trivialStep(ctx context.Context, env lambdatest.Env, eng engine.Engine, arch lambda.Arch, dest string) (string, error) {
	err := eng.Run(ctx, &engine.Step{
		Name: "uname " + string(arch), Arch: arch, Image: env.Image(arch),
		Script: "mkdir -p /out && uname -m > /out/arch", Dir: "/", Output: "/out", Dest: dest,
		SourceDateEpoch: 315532800, NoCache: true,
	})
	if err != nil {
		return "", err
	}
	dt, err := os.ReadFile(filepath.Join(dest, "arch"))
	return strings.TrimSpace(string(dt)), err
}

func TestRemoteBuilders(t *testing.T) {
	env := lambdatest.Need(t)
	pki := engine.NewTestPKI(t)
	d := startTLSDaemon(t, pki)
	project := greetProject(t, env)
	const stepName = "[x86_64] greet: native build (x86_64)"

	// Registry cache, first (daemon B must be empty): daemon A (the test
	// environment's) exports the steps' cache to a registry on loopback; d, with an
	// empty state, imports it and finds the compile step cached; the zips match.
	t.Run("registry cache", func(t *testing.T) {
		reg := startRegistry(t)
		ref := reg + "/layerpack/cache:greet"
		outA := &lambdatest.SyncWriter{}
		engA := openEngine(t, engine.Options{Addr: env.Addr,
			CacheTo: []string{"type=registry,ref=" + ref + ",mode=max,registry.insecure=true"}}, outA)
		ra := buildGreet(t, project, engA)
		if found, _ := cachedStep(outA.String(), stepName); !found {
			t.Fatalf("daemon A's progress has no step %q:\n%s", stepName, outA)
		}
		if !strings.Contains(outA.String(), "exporting cache to registry") {
			t.Fatalf("daemon A exported no cache:\n%s", outA)
		}
		if srcs := d.localSources(t); len(srcs) != 0 {
			t.Fatalf("daemon B is not empty: %v", srcs)
		}
		outB := &lambdatest.SyncWriter{}
		engB := openEngine(t, engine.Options{Addr: d.addr, TLS: d.tls(),
			CacheFrom: []string{"type=registry,ref=" + ref + ",registry.insecure=true"}}, outB)
		rb := buildGreet(t, project, engB)
		found, cached := cachedStep(outB.String(), stepName)
		if !found || !cached {
			t.Fatalf("daemon B did not take %q from the registry cache (found %v, cached %v):\n%s", stepName, found, cached, outB)
		}
		if ra.CodeSha256 == "" || ra.CodeSha256 != rb.CodeSha256 {
			t.Fatalf("CodeSha256: A %q, B %q", ra.CodeSha256, rb.CodeSha256)
		}
		t.Logf("CodeSha256 %s from both daemons", ra.CodeSha256)
	})

	// A real compile through the mTLS daemon (BuildKit's cache off), and the layer
	// works where Lambda would run it. arm64 (QEMU) comes last, after the routing
	// check that needs the daemon to have seen no arm64 step.
	nativeThroughTLS := func(arch lambda.Arch, uname string) func(t *testing.T) {
		return func(t *testing.T) {
			eng := openEngine(t, engine.Options{Addr: d.addr, TLS: d.tls()}, nil)
			res, log, err := lambdatest.Build(t, project, native.New(), []lambda.Arch{arch}, eng,
				lambdatest.BuildOptions{Timeout: 20 * time.Minute})
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			out := env.Run(t, arch, res[arch].Path, "uname -m; greet lambda", nil)
			if !strings.Contains(out, uname+"\n") || !strings.Contains(out, `{"hello":"lambda"}`) {
				t.Fatalf("greet in the layer printed:\n%s", out)
			}
			if got := eng.Describe(arch); !strings.HasPrefix(got, d.addr+" (mTLS) ("+arch.Platform()) {
				t.Errorf("Describe = %q", got)
			}
		}
	}
	t.Run("native x86_64 layer through mTLS", nativeThroughTLS(lambda.X86_64, "x86_64"))

	// Each TLS mistake fails with its own message, naming the address.
	t.Run("TLS failures", func(t *testing.T) {
		bad := []struct {
			name string
			tls  engine.TLS
			want string
		}{
			{"wrong CA", engine.TLS{CA: pki.OtherCA, Cert: pki.ClientCert, Key: pki.ClientKey},
				"TLS handshake failed: unknown CA: the daemon's certificate is not signed by tls_ca " + pki.OtherCA},
			{"missing client certificate", engine.TLS{CA: pki.CA},
				"TLS handshake failed: bad client certificate: the daemon requires a client certificate and none was given"},
			{"client certificate of another CA", engine.TLS{CA: pki.CA, Cert: pki.OtherClientCert, Key: pki.OtherClientKey},
				"TLS handshake failed: bad client certificate: the daemon refused " + pki.OtherClientCert},
			{"wrong server name", engine.TLS{CA: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey, ServerName: "buildkit.example.com"},
				`TLS handshake failed: name mismatch: the daemon's certificate is for localhost, 127.0.0.1, not "buildkit.example.com"`},
			{"no TLS", engine.TLS{}, "TLS handshake failed: the daemon requires TLS and none is configured"},
		}
		for _, c := range bad {
			t.Run(c.name, func(t *testing.T) {
				eng := openEngine(t, engine.Options{Addr: d.addr, TLS: c.tls}, nil)
				_, err := trivialStep(context.Background(), env, eng, lambda.X86_64, t.TempDir())
				var ce *engine.ConnectError
				if !errors.As(err, &ce) || ce.Kind != engine.TLSFailed {
					t.Fatalf("error %v, want a TLS handshake failure", err)
				}
				if msg := err.Error(); !strings.Contains(msg, "BuildKit at "+d.addr+": "+c.want) {
					t.Fatalf("error:\n%s\nwant:\n...BuildKit at %s: %s...", msg, d.addr, c.want)
				}
				if strings.Contains(err.Error(), pki.ClientKey) {
					t.Errorf("the error names the key file: %v", err)
				}
			})
		}
		// Nothing listening is "no daemon", not a TLS problem.
		addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
		eng := openEngine(t, engine.Options{Addr: addr, TLS: d.tls()}, nil)
		_, err := trivialStep(context.Background(), env, eng, lambda.X86_64, t.TempDir())
		var nd *engine.NoDaemonError
		if !errors.As(err, &nd) || !strings.Contains(err.Error(), "--buildkit-addr "+addr+": BuildKit at "+addr+": no daemon: connection refused") {
			t.Fatalf("error %v, want no daemon at %s", err, addr)
		}
	})

	// Per-architecture addresses: x86_64 steps go to the mTLS daemon, arm64 steps
	// to the test environment's daemon. The mTLS daemon's own state shows which
	// root filesystems it was sent.
	t.Run("per-architecture routing", func(t *testing.T) {
		eng := openEngine(t, engine.Options{
			ArchAddr: map[lambda.Arch]string{lambda.X86_64: d.addr, lambda.ARM64: env.Addr},
			ArchTLS:  map[lambda.Arch]engine.TLS{lambda.X86_64: d.tls()},
		}, nil)
		for arch, want := range map[lambda.Arch]string{lambda.X86_64: "x86_64", lambda.ARM64: "aarch64"} {
			got, err := trivialStep(context.Background(), env, eng, arch, t.TempDir())
			if err != nil || got != want {
				t.Fatalf("%s step: %q, %v", arch, got, err)
			}
		}
		srcs := strings.Join(d.localSources(t), " ")
		x86, arm := engine.RootfsLocal(env.Rootfs[lambda.X86_64]), engine.RootfsLocal(env.Rootfs[lambda.ARM64])
		if !strings.Contains(srcs, x86) || strings.Contains(srcs, arm) {
			t.Fatalf("the mTLS daemon's local sources %q: want %s (x86_64) and not %s (arm64)", srcs, x86, arm)
		}
		if got := eng.Describe(lambda.ARM64); !strings.HasPrefix(got, env.Addr+" (linux/arm64") {
			t.Errorf("arm64 Describe = %q", got)
		}
	})

	t.Run("native arm64 layer through mTLS", nativeThroughTLS(lambda.ARM64, "aarch64"))
}

// startRegistry runs Debian's docker-registry on a loopback port with its
// storage in a temp folder (internal/registrytest), and returns HOST:PORT.
func startRegistry(t *testing.T) string {
	t.Helper()
	return registrytest.Start(t, registrytest.Options{}).Host
}

func TestCachedStepReadsProgress(t *testing.T) {
	const name = "[x86_64] greet: native build (x86_64)"
	imported := "#6 " + name + "\n#6 sha256:2c08 31.74kB / 31.74kB done\n#6 extracting sha256:2c08 done\n#6 DONE 0.0s\n"
	ran := "#6 " + name + "\n#6 0.412 gcc -O2 -c greet.c\n#6 DONE 1.2s\n"
	hit := "#6 " + name + "\n#6 CACHED\n"
	for _, c := range []struct {
		progress string
		cached   bool
	}{{imported, true}, {ran, false}, {hit, true}} {
		if found, cached := cachedStep(c.progress, name); !found || cached != c.cached {
			t.Errorf("cachedStep(%q) = %v, %v; want true, %v", c.progress, found, cached, c.cached)
		}
	}
}
