package engine_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
)

// sshHost is an sshd started by a test on a loopback port: throwaway host and
// user keys, key login only, buildctl on the sessions' PATH (BuildKit's ssh
// helper runs `buildctl dial-stdio` on the far side).
type sshHost struct {
	port int
	dir  string // keys, config, known_hosts, the ssh wrapper
}

func startSSHD(t *testing.T) *sshHost {
	t.Helper()
	sshd := testneed.Tool(t, "sshd")
	testneed.Tool(t, "ssh")
	keygen := testneed.Tool(t, "ssh-keygen")
	buildctl := testneed.Tool(t, "buildctl")
	if os.Geteuid() != 0 {
		testneed.Missing(t, "sshd needs root to log a user in")
	}
	h := &sshHost{port: freePort(t), dir: t.TempDir()}
	for _, k := range []string{"hostkey", "userkey"} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "layerpack-test", "-f", filepath.Join(h.dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub := func(name string) string {
		dt, err := os.ReadFile(filepath.Join(h.dir, name+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(dt))
	}
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(h.dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("authorized_keys", pub("userkey")+"\n", 0o600)
	write("known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s\n", h.port, pub("hostkey")), 0o644)
	write("sshd_config", fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/hostkey
AuthorizedKeysFile %s/authorized_keys
PidFile %s/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv PATH=%s:/usr/local/bin:/usr/bin:/bin
`, h.port, h.dir, h.dir, h.dir, filepath.Dir(buildctl)), 0o644)
	// What a user's ~/.ssh/config would say for this host, as a wrapper first on
	// PATH (the helper runs plain `ssh`): this key, this known_hosts, no prompts.
	if err := os.Mkdir(filepath.Join(h.dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("bin/ssh", fmt.Sprintf("#!/bin/sh\nexec /usr/bin/ssh -F none -i %s/userkey -o IdentitiesOnly=yes -o UserKnownHostsFile=%s/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes \"$@\"\n", h.dir, h.dir), 0o755)
	t.Setenv("PATH", filepath.Join(h.dir, "bin")+":"+os.Getenv("PATH"))

	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation folder
		t.Fatal(err)
	}
	logPath := filepath.Join(h.dir, "sshd.log")
	cmd := exec.Command(sshd, "-D", "-f", filepath.Join(h.dir, "sshd_config"), "-E", logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if out, err := exec.Command(sshd, "-t", "-f", filepath.Join(h.dir, "sshd_config")).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			dt, _ := os.ReadFile(logPath)
			t.Logf("sshd log:\n%s", dt)
		}
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", h.port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("sshd does not listen on %d: %v", h.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// buildctl must be on the remote PATH, as BuildKit's helper needs.
	if out, err := exec.Command("ssh", "-p", fmt.Sprint(h.port), "root@127.0.0.1", "command -v buildctl").CombinedOutput(); err != nil || !strings.Contains(string(out), "buildctl") {
		t.Fatalf("ssh to the test sshd: %v\n%s", err, out)
	}
	return h
}

// A layer builds through ssh://: the engine dials `ssh ... buildctl dial-stdio`
// to this machine, which reaches the test environment's daemon on its socket.
func TestSSHBuilder(t *testing.T) {
	env := lambdatest.Need(t)
	sock, ok := strings.CutPrefix(env.Addr, "unix://")
	if !ok {
		t.Skipf("the test daemon %s is not a unix socket", env.Addr)
	}
	h := startSSHD(t)
	addr := fmt.Sprintf("ssh://root@127.0.0.1:%d%s", h.port, sock)
	eng := openEngine(t, engine.Options{Addr: addr}, nil)
	want := fmt.Sprintf("%s [ssh to root@127.0.0.1 port %d, socket %s] (linux/amd64)", addr, h.port, sock)
	if got := eng.Describe(lambda.X86_64); got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	got, err := trivialStep(t.Context(), env, eng, lambda.X86_64, t.TempDir())
	if err != nil || got != "x86_64" {
		t.Fatalf("step through %s: %q, %v", addr, got, err)
	}
	res := buildGreet(t, greetProject(t, env), eng)
	out := env.Run(t, lambda.X86_64, res.Path, "greet ssh", nil)
	if !strings.Contains(out, `{"hello":"ssh"}`) {
		t.Fatalf("greet in the layer built through ssh printed:\n%s", out)
	}
}
