package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// daemon is a buildkitd this engine started for the run, stopped by Close.
type daemon struct {
	cmd    *exec.Cmd
	socket string
	log    string
	exited chan struct{} // closed when the process is gone
	err    error         // Wait's result, valid after exited is closed
}

// maxSocketPath is below the 108 bytes of sun_path.
const maxSocketPath = 100

// privateSocket is the socket of the private daemon: in its root folder when the
// path is short enough, else in the temporary folder under a name derived from it.
func privateSocket(root string) string {
	if p := filepath.Join(root, "buildkitd.sock"); len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(os.TempDir(), "layerpack-buildkitd-"+hex.EncodeToString(sum[:6])+".sock")
}

// startDaemon starts `buildkitd --root CACHEDIR/buildkitd` with the OCI worker and
// waits (bounded) until it answers ListWorkers. A daemon already serving that
// socket (another layerpack run with the same cache folder) is used as is and
// left running.
func startDaemon(ctx context.Context, s *sys, bin, cacheDir string) (*conn, error) {
	root := filepath.Join(cacheDir, "buildkitd")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	sock := privateSocket(root)
	t := target{Via: "private buildkitd", Addr: "unix://" + sock}
	if c, err := tryTarget(ctx, s, t); err == nil {
		return c, nil
	}
	_ = os.Remove(sock) // stale

	logPath := filepath.Join(root, "buildkitd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--root", root,
		"--addr", t.Addr,
		"--oci-worker=true",
		"--containerd-worker=false",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C in the terminal reaches only layerpack,
	// which then cancels the solves and stops the daemon in order; and SIGTERM
	// when layerpack dies without Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, socket: sock, log: logPath, exited: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()

	deadline := time.NewTimer(daemonStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-d.exited:
			return nil, fmt.Errorf("%s exited (%v) before it answered; %s", bin, d.err, d.logTail(10))
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-deadline.C:
			d.stop()
			return nil, fmt.Errorf("%s did not answer on %s within %s; %s", bin, t.Addr, daemonStartTimeout, d.logTail(10))
		case <-tick.C:
			if _, err := os.Stat(sock); err != nil {
				continue
			}
			c, err := s.connect(ctx, t)
			if err != nil {
				continue
			}
			c.daemon = d
			return c, nil
		}
	}
}

// stop sends SIGTERM, waits, and kills the daemon if it does not stop in time.
func (d *daemon) stop() error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(daemonStopTimeout):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("buildkitd (pid %d) did not stop within %s after SIGTERM and was killed", d.cmd.Process.Pid, daemonStopTimeout)
	}
	_ = os.Remove(d.socket)
	return nil
}

func (d *daemon) logTail(n int) string {
	dt, err := os.ReadFile(d.log)
	if err != nil {
		return "no log (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(dt), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(bytes.TrimSpace(dt)) == 0 {
		return "its log " + d.log + " is empty"
	}
	return "last lines of " + d.log + ":\n    " + strings.Join(lines, "\n    ")
}
