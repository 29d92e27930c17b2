// Package registrytest starts a real OCI registry for tests: Debian's
// docker-registry (distribution v2.8, installed by scripts/testenv.d/registry.sh),
// on a free 127.0.0.1 port, with storage in the test's temp folder and, when asked,
// htpasswd basic auth. It is stopped when the test ends. The package's own systemd
// service is never used.
package registrytest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/layerpack/layerpack/internal/testneed"
)

// Registry is a running registry.
type Registry struct {
	Host    string // 127.0.0.1:PORT
	logPath string
}

// Options of Start.
type Options struct {
	// Users, when set, turns on htpasswd auth with these user -> password pairs.
	Users map[string]string
}

var startMu sync.Mutex // one port pick at a time

// Start runs docker-registry serve with a config of the test's own, and stops it
// when the test ends.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	bin := testneed.Env(t, "LAYERPACK_TEST_REGISTRY")
	r, stop, err := StartIn(t.TempDir(), bin, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return r
}

// StartIn is Start for callers without a testing.TB (testscript commands): dir
// holds the config, storage and log; stop kills the process and waits for it.
func StartIn(dir, bin string, o Options) (r *Registry, stop func(), err error) {
	auth := ""
	if len(o.Users) > 0 {
		var lines []string
		for u, p := range o.Users {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				return nil, nil, err
			}
			lines = append(lines, u+":"+string(h))
		}
		hp := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(hp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return nil, nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: layerpack-test\n    path: %s\n", hp)
	}
	startMu.Lock()
	defer startMu.Unlock()
	host, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: layerpack-test-secret
%s`, filepath.Join(dir, "storage"), host, auth)
	cp := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cp, []byte(cfg), 0o644); err != nil {
		return nil, nil, err
	}
	r = &Registry{Host: host, logPath: filepath.Join(dir, "registry.log")}
	logf, err := os.Create(r.logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, "serve", cp)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return r, stop, nil
			}
		}
		select {
		case <-done:
			return nil, nil, fmt.Errorf("docker-registry exited:\n%s", r.Log())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("docker-registry did not answer on %s within 20s:\n%s", host, r.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log is the registry's output so far.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

var blobPut = regexp.MustCompile(`"PUT /v2/[^ ]*/blobs/uploads/[^ ]* HTTP/[0-9.]+" 201`)

// BlobUploads counts, from the registry's access log, the blob uploads it
// completed so far.
func (r *Registry) BlobUploads() int { return len(blobPut.FindAllString(r.Log(), -1)) }

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
