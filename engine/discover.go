package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/layerpack/layerpack/lambda"
)

// Where a daemon is looked for when nothing names one.
const (
	DefaultSocket      = "/run/buildkit/buildkitd.sock"
	DefaultDockerHost  = "/var/run/docker.sock"
	probeTimeout       = 5 * time.Second
	socketCheckTimeout = 2 * time.Second
	daemonStartTimeout = 30 * time.Second
	daemonStopTimeout  = 10 * time.Second
)

// attempt records one place a daemon was looked for.
type attempt struct {
	what string // "BUILDKIT_HOST", "default socket unix:///run/buildkit/buildkitd.sock", ...
	why  string // why it was not used
}

// NoDaemonError says that no BuildKit daemon could be found or started, listing
// every place tried.
type NoDaemonError struct {
	Arch     lambda.Arch
	Explicit bool // the address was given (flag, config or BUILDKIT_HOST): nothing else was tried
	Tried    []attempt
}

func (e *NoDaemonError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no BuildKit daemon for %s steps; tried:\n", e.Arch)
	for _, a := range e.Tried {
		fmt.Fprintf(&b, "  - %s: %s\n", a.what, a.why)
	}
	if e.Explicit {
		b.WriteString("Start the daemon at that address, or change the address (--buildkit-addr, [buildkit] addr, BUILDKIT_HOST).")
		return b.String()
	}
	b.WriteString("To get a daemon: run scripts/testenv.sh setup from the layerpack repository (it builds and starts buildkitd, with QEMU for arm64), " +
		"set BUILDKIT_HOST to a running daemon (for example unix:///run/buildkit/buildkitd.sock), " +
		"or pass --buildkit-addr.")
	return b.String()
}

// sys is what discovery needs from the machine; tests replace it.
type sys struct {
	getenv   func(string) string
	lookPath func(string) (string, error)
	euid     func() int
	// dial opens a raw connection; discovery uses it to check that a socket exists
	// and answers before speaking gRPC to it.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// connect speaks to a daemon (ListWorkers) and returns an open connection.
	connect func(ctx context.Context, t target) (*conn, error)
	// dockerPing checks that a Docker engine answers on a socket.
	dockerPing func(ctx context.Context, socket string) error
	// start starts a private buildkitd.
	start func(ctx context.Context, bin, cacheDir string) (*conn, error)
}

func realSys(getenv func(string) string) *sys {
	s := &sys{
		getenv:   getenv,
		lookPath: lookPathSbin,
		euid:     os.Geteuid,
		dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		connect: connectClient,
	}
	s.dockerPing = func(ctx context.Context, socket string) error { return dockerPing(ctx, s.dial, socket) }
	s.start = func(ctx context.Context, bin, cacheDir string) (*conn, error) {
		return startDaemon(ctx, s, bin, cacheDir)
	}
	return s
}

// explicitTarget returns the address the user gave for arch, if any: a
// per-architecture address, then Options.Addr, then BUILDKIT_HOST.
func explicitTarget(opts *Options, getenv func(string) string, arch lambda.Arch) (target, bool) {
	var t target
	switch {
	case opts.ArchAddr[arch] != "":
		t = target{Via: "[buildkit." + string(arch) + "] addr", Addr: opts.ArchAddr[arch]}
	case opts.Addr != "":
		t = target{Via: "--buildkit-addr", Addr: opts.Addr}
	case getenv("BUILDKIT_HOST") != "":
		t = target{Via: "BUILDKIT_HOST", Addr: getenv("BUILDKIT_HOST")}
	default:
		return target{}, false
	}
	t.TLS = tlsFor(opts, arch, t.Addr)
	return t, true
}

// discover finds a daemon for arch. An address given by the user (per-architecture
// address, --buildkit-addr or config, BUILDKIT_HOST) is the only one tried: a
// build must not silently go to another daemon than the one named. Otherwise it
// tries the default socket, Docker's built-in BuildKit, then starts a private
// buildkitd (root only, when buildkitd is on PATH). The error lists every attempt.
func discover(ctx context.Context, s *sys, opts *Options, arch lambda.Arch) (*conn, error) {
	if t, ok := explicitTarget(opts, s.getenv, arch); ok {
		c, err := tryTarget(ctx, s, t)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A daemon that answers but refuses us is not a missing daemon.
		var ce *ConnectError
		if errors.As(err, &ce) && ce.Kind != NoDaemon {
			return nil, fmt.Errorf("%s %s: %w", t.Via, t.Addr, err)
		}
		return nil, &NoDaemonError{Arch: arch, Explicit: true, Tried: []attempt{{t.Via + " " + t.Addr, reason(err)}}}
	}
	tried := []attempt{
		{"--buildkit-addr / [buildkit] addr", "not set"},
		{"BUILDKIT_HOST", "not set"},
	}
	// 1. The default socket of a system buildkitd.
	t := target{Via: "default socket", Addr: "unix://" + DefaultSocket}
	c, err := tryTarget(ctx, s, t)
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	tried = append(tried, attempt{"default socket " + t.Addr, reason(err)})

	// 2. Docker's built-in BuildKit.
	sock, why := dockerSocket(s.getenv)
	if sock != "" {
		t = target{Via: "Docker", Addr: "unix://" + sock, Docker: sock}
		c, err = tryDocker(ctx, s, t)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		why = reason(err)
	}
	tried = append(tried, attempt{"Docker's BuildKit at unix://" + orDefault(sock, DefaultDockerHost), why})

	// 3. A private buildkitd for this run.
	what := "private buildkitd"
	bin, err := s.lookPath("buildkitd")
	switch {
	case err != nil:
		why = "buildkitd is not on PATH"
	case s.euid() != 0:
		why = "not running as root (a private buildkitd needs root to run containers with runc)"
	case opts.CacheDir == "":
		why = "no cache folder to keep its state in"
	default:
		what = "private buildkitd " + bin
		c, err = s.start(ctx, bin, opts.CacheDir)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		why = reason(err)
	}
	tried = append(tried, attempt{what, why})
	return nil, &NoDaemonError{Arch: arch, Tried: tried}
}

// tryTarget checks that a unix socket exists and answers (quickly, with a clear
// reason when not), then connects.
func tryTarget(ctx context.Context, s *sys, t target) (*conn, error) {
	if path, ok := strings.CutPrefix(t.Addr, "unix://"); ok {
		if err := checkSocket(ctx, s, path); err != nil {
			return nil, err
		}
	}
	return s.connect(ctx, t)
}

func tryDocker(ctx context.Context, s *sys, t target) (*conn, error) {
	if err := checkSocket(ctx, s, t.Docker); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, socketCheckTimeout)
	defer cancel()
	if err := s.dockerPing(pctx, t.Docker); err != nil {
		return nil, fmt.Errorf("the socket does not answer as a Docker engine: %w", err)
	}
	c, err := s.connect(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("Docker answers but its BuildKit does not: %w", err)
	}
	return c, nil
}

func checkSocket(ctx context.Context, s *sys, path string) error {
	dctx, cancel := context.WithTimeout(ctx, socketCheckTimeout)
	defer cancel()
	nc, err := s.dial(dctx, "unix", path)
	if err != nil {
		return socketError(path, err)
	}
	return nc.Close()
}

// socketError turns a dial error into a short reason.
func socketError(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("no socket at %s", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing listens on %s (a stale socket?)", path)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("no permission to use %s", path)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer on %s within %s", path, socketCheckTimeout)
	}
	return err
}

// reason shortens the errors of gRPC and the BuildKit client for the list of
// attempts; other errors (ours) are already short.
func reason(err error) string {
	msg := err.Error()
	if !strings.Contains(msg, "rpc error") && !strings.Contains(msg, "failed to list workers") {
		return msg
	}
	switch {
	case strings.Contains(msg, "no such file or directory"):
		return "no socket there"
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	case strings.Contains(msg, "permission denied"):
		return "permission denied"
	case strings.Contains(msg, "deadline exceeded"):
		return "no answer within " + probeTimeout.String()
	}
	return msg
}

func dockerSocket(getenv func(string) string) (socket, why string) {
	if h := getenv("DOCKER_HOST"); h != "" {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			return p, ""
		}
		return "", "DOCKER_HOST=" + h + " is not a unix socket; only a local Docker engine is tried"
	}
	return DefaultDockerHost, ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lookPathSbin is exec.LookPath that also looks in the sbin folders, which a
// non-login root shell or a CI job may lack (runc and buildkitd often live there).
func lookPathSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH", name)
}

// nativeArch is the architecture of this machine in OCI terms.
func nativeArch() string { return runtime.GOARCH }
