// Package mototest starts moto's AWS API emulator (moto_server, installed by
// scripts/testenv.d/moto.sh) for tests, on a free loopback port.
package mototest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/layerpack/layerpack/internal/testneed"
)

// EnvVar names the moto_server program.
const EnvVar = "LAYERPACK_TEST_MOTO_SERVER"

// Server is one moto_server process.
type Server struct {
	cmd  *exec.Cmd
	logf *os.File
	Addr string // http://127.0.0.1:PORT
	Port int
}

// Start runs bin on port (0: a free one) and waits until it answers.
func Start(bin string, port int) (*Server, error) {
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	// The server must not see the tests' client settings (an empty AWS_CA_BUNDLE
	// breaks its own boto calls).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The server dies with the test process, even one that panics before its
	// cleanup; and it logs to a file, not a pipe, so a vanished reader cannot make
	// it spin on write errors.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.CreateTemp("", "moto-*.log")
	if err != nil {
		return nil, err
	}
	os.Remove(logf.Name()) // open until the server ends; nothing to clean up
	s := &Server{cmd: cmd, logf: logf, Addr: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig follows the thread that started the child: keep it alive meanwhile.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		logf.Close()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// A fresh server answers its first Lambda call with a 500 until reset.
		if s.Reset() == nil {
			return s, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("moto_server did not answer on %s within 30s: %s", s.Addr, s.logText())
}

// Reset drops every resource the emulator holds.
func (s *Server) Reset() error {
	resp, err := http.Post(s.Addr+"/moto-api/reset", "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto reset: %s", resp.Status)
	}
	return nil
}

// Host is the server's host:port.
func (s *Server) Host() string { return strings.TrimPrefix(s.Addr, "http://") }

func (s *Server) logText() string {
	b := make([]byte, 4096)
	n, _ := s.logf.ReadAt(b, 0)
	return string(b[:n])
}

// Stop kills the server.
func (s *Server) Stop() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	s.logf.Close()
}

var (
	once   sync.Once
	shared *Server
	err    error
)

// Shared returns the package's one server, started on first use and reset for the
// caller; Close stops it (call it from TestMain). It needs LAYERPACK_TEST_MOTO_SERVER
// (a skip, or a failure under CI, without it).
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := testneed.Env(t, EnvVar)
	once.Do(func() { shared, err = Start(bin, 0) })
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.Reset(); err != nil {
		t.Fatal(err)
	}
	return shared
}

// Close stops the shared server, if one was started.
func Close() {
	if shared != nil {
		shared.Stop()
	}
}

// Env is the environment for a client of s: dummy credentials, the endpoint, a
// region, and no shared config files or instance metadata of the machine.
func Env(s *Server, dir string) map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": "us-east-1", "AWS_PROFILE": "", "AWS_ENDPOINT_URL": s.Addr,
		"AWS_CONFIG_FILE": dir + "/aws-config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/aws-credentials",
		"AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CA_BUNDLE":             "", // the emulator is plain HTTP
	}
}
