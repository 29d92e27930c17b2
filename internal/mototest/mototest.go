// Package mototest starts moto's AWS API emulator (moto_server, installed by
// scripts/testenv.d/moto.sh) for tests, on a free loopback port.
package mototest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layerpack/layerpack/internal/testneed"
)

// EnvVar names the moto_server program.
const EnvVar = "LAYERPACK_TEST_MOTO_SERVER"

// Server is one moto_server process.
type Server struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
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
	s := &Server{cmd: cmd, log: &bytes.Buffer{}, Addr: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
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
	return nil, fmt.Errorf("moto_server did not answer on %s within 30s: %s", s.Addr, s.log.String())
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

// Stop kills the server.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
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
