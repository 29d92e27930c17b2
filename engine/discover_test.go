package engine

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/layerpack/layerpack/lambda"
)

// fakeMachine plays the machine for discovery: which sockets exist, which
// addresses answer as BuildKit, whether buildkitd is on PATH, and who we are.
type fakeMachine struct {
	env       map[string]string
	sockets   map[string]error // socket path -> dial error (nil: it answers)
	buildkit  map[string]error // address -> connect error (nil: BuildKit answers)
	docker    map[string]error // Docker socket -> ping error
	buildkitd string           // path of buildkitd, "" when not on PATH
	euid      int
	startErr  error

	log []string // what was done, in order
}

func (m *fakeMachine) sys() *sys {
	return &sys{
		getenv: func(k string) string { return m.env[k] },
		lookPath: func(name string) (string, error) {
			m.log = append(m.log, "lookPath "+name)
			if name == "buildkitd" && m.buildkitd != "" {
				return m.buildkitd, nil
			}
			return "", errors.New("not found")
		},
		euid: func() int { return m.euid },
		dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			m.log = append(m.log, "dial "+addr)
			err, ok := m.sockets[addr]
			if !ok {
				return nil, &net.OpError{Op: "dial", Net: network, Err: &os.SyscallError{Syscall: "connect", Err: syscall.ENOENT}}
			}
			if err != nil {
				return nil, err
			}
			c1, c2 := net.Pipe()
			c2.Close()
			return c1, nil
		},
		connect: func(ctx context.Context, t target) (*conn, error) {
			m.log = append(m.log, "connect "+t.String())
			err, ok := m.buildkit[t.Addr]
			if !ok {
				err = errors.New("rpc error: code = Unavailable desc = connection refused")
			}
			if err != nil {
				return nil, err
			}
			return &conn{t: t, platforms: []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}}}, nil
		},
		dockerPing: func(ctx context.Context, socket string) error {
			m.log = append(m.log, "ping "+socket)
			err, ok := m.docker[socket]
			if !ok {
				return errors.New("GET /_ping: 404 Not Found")
			}
			return err
		},
		start: func(ctx context.Context, bin, cacheDir string) (*conn, error) {
			m.log = append(m.log, "start "+bin+" "+cacheDir)
			if m.startErr != nil {
				return nil, m.startErr
			}
			return &conn{t: target{Via: "private buildkitd", Addr: "unix://" + cacheDir + "/buildkitd/buildkitd.sock"}}, nil
		},
	}
}

func TestDiscoverOrder(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "unix", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name  string
		m     fakeMachine
		opts  Options
		arch  lambda.Arch
		want  string // the target used
		calls string // the machine's log
	}{
		{
			name:  "explicit address",
			m:     fakeMachine{sockets: map[string]error{"/x.sock": nil}, buildkit: map[string]error{"unix:///x.sock": nil}, env: map[string]string{"BUILDKIT_HOST": "tcp://ignored:1"}},
			opts:  Options{Addr: "unix:///x.sock"},
			arch:  lambda.X86_64,
			want:  "unix:///x.sock",
			calls: "dial /x.sock; connect unix:///x.sock",
		},
		{
			name:  "BUILDKIT_HOST when no address",
			m:     fakeMachine{buildkit: map[string]error{"tcp://10.0.0.2:1234": nil}, env: map[string]string{"BUILDKIT_HOST": "tcp://10.0.0.2:1234"}},
			arch:  lambda.X86_64,
			want:  "tcp://10.0.0.2:1234",
			calls: "connect tcp://10.0.0.2:1234",
		},
		{
			name:  "per-architecture address for that architecture",
			m:     fakeMachine{buildkit: map[string]error{"tcp://arm:1234": nil}},
			opts:  Options{Addr: "unix:///x.sock", ArchAddr: map[lambda.Arch]string{lambda.ARM64: "tcp://arm:1234"}},
			arch:  lambda.ARM64,
			want:  "tcp://arm:1234",
			calls: "connect tcp://arm:1234",
		},
		{
			name:  "per-architecture address not for the other one",
			m:     fakeMachine{sockets: map[string]error{"/x.sock": nil}, buildkit: map[string]error{"unix:///x.sock": nil}},
			opts:  Options{Addr: "unix:///x.sock", ArchAddr: map[lambda.Arch]string{lambda.ARM64: "tcp://arm:1234"}},
			arch:  lambda.X86_64,
			want:  "unix:///x.sock",
			calls: "dial /x.sock; connect unix:///x.sock",
		},
		{
			name:  "default socket",
			m:     fakeMachine{sockets: map[string]error{DefaultSocket: nil}, buildkit: map[string]error{"unix://" + DefaultSocket: nil}},
			arch:  lambda.ARM64,
			want:  "unix:///run/buildkit/buildkitd.sock",
			calls: "dial /run/buildkit/buildkitd.sock; connect unix:///run/buildkit/buildkitd.sock",
		},
		{
			name: "Docker when the default socket is stale",
			m: fakeMachine{
				sockets:  map[string]error{DefaultSocket: refused, DefaultDockerHost: nil},
				docker:   map[string]error{DefaultDockerHost: nil},
				buildkit: map[string]error{"unix://" + DefaultDockerHost: nil},
			},
			arch:  lambda.X86_64,
			want:  "docker unix:///var/run/docker.sock",
			calls: "dial /run/buildkit/buildkitd.sock; dial /var/run/docker.sock; ping /var/run/docker.sock; connect docker unix:///var/run/docker.sock",
		},
		{
			name: "DOCKER_HOST",
			m: fakeMachine{
				env:      map[string]string{"DOCKER_HOST": "unix:///home/me/docker.sock"},
				sockets:  map[string]error{"/home/me/docker.sock": nil},
				docker:   map[string]error{"/home/me/docker.sock": nil},
				buildkit: map[string]error{"unix:///home/me/docker.sock": nil},
			},
			arch:  lambda.X86_64,
			want:  "docker unix:///home/me/docker.sock",
			calls: "dial /run/buildkit/buildkitd.sock; dial /home/me/docker.sock; ping /home/me/docker.sock; connect docker unix:///home/me/docker.sock",
		},
		{
			name:  "private daemon last",
			m:     fakeMachine{buildkitd: "/usr/local/bin/buildkitd", euid: 0},
			opts:  Options{CacheDir: "/var/cache/layerpack"},
			arch:  lambda.ARM64,
			want:  "unix:///var/cache/layerpack/buildkitd/buildkitd.sock",
			calls: "dial /run/buildkit/buildkitd.sock; dial /var/run/docker.sock; lookPath buildkitd; start /usr/local/bin/buildkitd /var/cache/layerpack",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := discover(context.Background(), tt.m.sys(), &tt.opts, tt.arch)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.t.String(); got != tt.want {
				t.Errorf("used %s, want %s", got, tt.want)
			}
			if got := strings.Join(tt.m.log, "; "); got != tt.calls {
				t.Errorf("calls:\n got  %s\n want %s", got, tt.calls)
			}
		})
	}
}

func TestDiscoverNothingFound(t *testing.T) {
	m := fakeMachine{euid: 0}
	_, err := discover(context.Background(), m.sys(), &Options{CacheDir: "/var/cache/layerpack"}, lambda.ARM64)
	want := `no BuildKit daemon for arm64 steps; tried:
  - --buildkit-addr / [buildkit] addr: not set
  - BUILDKIT_HOST: not set
  - default socket unix:///run/buildkit/buildkitd.sock: no socket at /run/buildkit/buildkitd.sock
  - Docker's BuildKit at unix:///var/run/docker.sock: no socket at /var/run/docker.sock
  - private buildkitd: buildkitd is not on PATH
To get a daemon: run scripts/testenv.sh setup from the layerpack repository (it builds and starts buildkitd, with QEMU for arm64), set BUILDKIT_HOST to a running daemon (for example unix:///run/buildkit/buildkitd.sock), or pass --buildkit-addr.`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	var nd *NoDaemonError
	if !errors.As(err, &nd) || nd.Arch != lambda.ARM64 || len(nd.Tried) != 5 {
		t.Errorf("not a NoDaemonError with 5 attempts: %#v", err)
	}
}

func TestDiscoverReasons(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "unix", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	denied := &net.OpError{Op: "dial", Net: "unix", Err: &os.SyscallError{Syscall: "connect", Err: syscall.EACCES}}
	m := fakeMachine{
		sockets:   map[string]error{DefaultSocket: refused, DefaultDockerHost: nil},
		docker:    map[string]error{DefaultDockerHost: errors.New("GET /_ping: 500 Internal Server Error")},
		buildkitd: "/usr/bin/buildkitd",
		euid:      1000,
	}
	_, err := discover(context.Background(), m.sys(), &Options{CacheDir: "/c"}, lambda.X86_64)
	for _, want := range []string{
		"  - default socket unix:///run/buildkit/buildkitd.sock: nothing listens on /run/buildkit/buildkitd.sock (a stale socket?)\n",
		"  - Docker's BuildKit at unix:///var/run/docker.sock: the socket does not answer as a Docker engine: GET /_ping: 500 Internal Server Error\n",
		"  - private buildkitd: not running as root (a private buildkitd needs root to run containers with runc)\n",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}

	// Docker answers but has no BuildKit; the private daemon fails to start.
	m = fakeMachine{
		sockets:   map[string]error{DefaultSocket: denied, DefaultDockerHost: nil},
		docker:    map[string]error{DefaultDockerHost: nil},
		buildkit:  map[string]error{"unix://" + DefaultDockerHost: errors.New(`POST /grpc on /var/run/docker.sock: 404 Not Found: page not found`)},
		buildkitd: "/usr/bin/buildkitd",
		startErr:  errors.New("/usr/bin/buildkitd exited (exit status 1) before it answered; its log /c/buildkitd/buildkitd.log is empty"),
	}
	_, err = discover(context.Background(), m.sys(), &Options{CacheDir: "/c"}, lambda.X86_64)
	for _, want := range []string{
		"  - default socket unix:///run/buildkit/buildkitd.sock: no permission to use /run/buildkit/buildkitd.sock\n",
		"  - Docker's BuildKit at unix:///var/run/docker.sock: Docker answers but its BuildKit does not: POST /grpc on /var/run/docker.sock: 404 Not Found: page not found\n",
		"  - private buildkitd /usr/bin/buildkitd: /usr/bin/buildkitd exited (exit status 1) before it answered; its log /c/buildkitd/buildkitd.log is empty\n",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}

	// DOCKER_HOST over TCP is not tried; no cache folder means no private daemon.
	m = fakeMachine{env: map[string]string{"DOCKER_HOST": "tcp://docker:2375"}, buildkitd: "/usr/bin/buildkitd"}
	_, err = discover(context.Background(), m.sys(), &Options{}, lambda.X86_64)
	for _, want := range []string{
		"  - Docker's BuildKit at unix:///var/run/docker.sock: DOCKER_HOST=tcp://docker:2375 is not a unix socket; only a local Docker engine is tried\n",
		"  - private buildkitd: no cache folder to keep its state in\n",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

func TestDiscoverExplicitFailure(t *testing.T) {
	m := fakeMachine{sockets: map[string]error{DefaultSocket: nil}, buildkit: map[string]error{"unix://" + DefaultSocket: nil}}
	opts := &Options{ArchAddr: map[lambda.Arch]string{lambda.ARM64: "tcp://arm-builder:1234"}}
	_, err := discover(context.Background(), m.sys(), opts, lambda.ARM64)
	want := `no BuildKit daemon for arm64 steps; tried:
  - [buildkit.arm64] addr tcp://arm-builder:1234: connection refused
Start the daemon at that address, or change the address (--buildkit-addr, [buildkit] addr, BUILDKIT_HOST).`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	if got := strings.Join(m.log, "; "); got != "connect tcp://arm-builder:1234" {
		t.Errorf("an explicit address must be the only one tried; calls: %s", got)
	}

	m = fakeMachine{env: map[string]string{"BUILDKIT_HOST": "unix:///nowhere.sock"}}
	_, err = discover(context.Background(), m.sys(), &Options{}, lambda.X86_64)
	want = `no BuildKit daemon for x86_64 steps; tried:
  - BUILDKIT_HOST unix:///nowhere.sock: no socket at /nowhere.sock
Start the daemon at that address, or change the address (--buildkit-addr, [buildkit] addr, BUILDKIT_HOST).`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestDiscoverCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := fakeMachine{}
	s := m.sys()
	s.dial = func(ctx context.Context, _, _ string) (net.Conn, error) { return nil, ctx.Err() }
	_, err := discover(ctx, s, &Options{}, lambda.X86_64)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestReason(t *testing.T) {
	for in, want := range map[string]string{
		`failed to list workers: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.1:1234: connect: connection refused"`: "connection refused",
		`failed to list workers: rpc error: code = DeadlineExceeded desc = context deadline exceeded`:                                                                                 "no answer within 5s",
		`no socket at /x`: "no socket at /x",
	} {
		if got := reason(errors.New(in)); got != want {
			t.Errorf("reason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenDoesNotConnect(t *testing.T) {
	b, err := Open(context.Background(), Options{Addr: "unix:///nonexistent/buildkitd.sock", Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	b.sys.dial = func(context.Context, string, string) (net.Conn, error) {
		t.Fatal("Open or Describe dialed")
		return nil, nil
	}
	b.sys.connect = func(context.Context, target) (*conn, error) {
		t.Fatal("Open or Describe connected")
		return nil, nil
	}
	got := b.Describe(lambda.ARM64)
	want := "unix:///nonexistent/buildkitd.sock (linux/arm64, emulated by QEMU)"
	if nativeArch() == "arm64" {
		want = "unix:///nonexistent/buildkitd.sock (linux/arm64, native)"
	}
	if got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDescribe(t *testing.T) {
	b, err := Open(context.Background(), Options{
		ArchAddr: map[lambda.Arch]string{lambda.ARM64: "tcp://graviton:1234"},
		Getenv:   func(string) string { return "" },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Describe(lambda.ARM64), "tcp://graviton:1234 (linux/arm64)"; got != want {
		t.Errorf("Describe(arm64) before connecting = %q, want %q", got, want)
	}
	// Once connected, the daemon's own platform list says what is native.
	sl, _ := b.slotFor(lambda.ARM64)
	sl.conn = &conn{t: target{Addr: "tcp://graviton:1234"}, platforms: []ocispecs.Platform{{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "amd64"}}}
	if got, want := b.Describe(lambda.ARM64), "tcp://graviton:1234 (linux/arm64, native)"; got != want {
		t.Errorf("Describe(arm64) = %q, want %q", got, want)
	}
	sl.conn = nil
}

func TestUnsupportedPlatform(t *testing.T) {
	b, err := Open(context.Background(), Options{Addr: "unix:///b.sock", Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	b.sys.dial = func(context.Context, string, string) (net.Conn, error) {
		c1, c2 := net.Pipe()
		c2.Close()
		return c1, nil
	}
	b.sys.connect = func(_ context.Context, t target) (*conn, error) {
		return &conn{t: t, platforms: []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "386"}}}, nil
	}
	_, err = b.connect(context.Background(), lambda.ARM64)
	want := "BuildKit at unix:///b.sock cannot run linux/arm64 containers (its platforms: linux/amd64, linux/386); " +
		"register QEMU with binfmt_misc and restart the daemon (scripts/testenv.sh setup does both), or give [buildkit.arm64] addr a daemon that can"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if _, err := b.connect(context.Background(), lambda.X86_64); err != nil {
		t.Errorf("x86_64: %v", err)
	}
	sl, _ := b.slotFor(lambda.X86_64)
	sl.conn = nil // no real client to close
	b.Close()
}

func TestPrivateSocket(t *testing.T) {
	if got := privateSocket("/var/cache/layerpack/buildkitd"); got != "/var/cache/layerpack/buildkitd/buildkitd.sock" {
		t.Errorf("privateSocket = %s", got)
	}
	long := "/" + strings.Repeat("x", 120) + "/buildkitd"
	got := privateSocket(long)
	if len(got) > maxSocketPath || !strings.HasPrefix(got, os.TempDir()) {
		t.Errorf("privateSocket(long) = %s", got)
	}
	if got != privateSocket(long) {
		t.Error("privateSocket is not stable")
	}
}
