// Package atomicfile writes files so that nothing half-written ever has a final
// name: data goes to a temp file beside the target, is synced, then renamed. Temp
// names carry the writer's process id, so Sweep can remove what a killed process
// (SIGKILL, power loss) left behind without touching files of live processes.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tempMarker separates a temp file's target name from its owner: ".NAME.tmp-p<pid>-<random>".
const tempMarker = ".tmp-p"

// CreateTemp creates a temp file in dir for a file that will be renamed to name.
func CreateTemp(dir, name string) (*os.File, error) {
	return os.CreateTemp(dir, "."+name+tempMarker+strconv.Itoa(os.Getpid())+"-*")
}

// MkdirTemp creates a scratch folder in dir whose name starts with prefix and
// carries this process's id, for Sweep.
func MkdirTemp(dir, prefix string) (string, error) {
	return os.MkdirTemp(dir, prefix+tempMarker+strconv.Itoa(os.Getpid())+"-*")
}

// WriteFile writes data to path atomically with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// CopyFile copies src to dst atomically (mode 0644).
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return write(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// LinkOrCopy makes dst the same content as src, atomically: a hard link when both are
// on one file system (no bytes copied), else a copy.
func LinkOrCopy(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+tempMarker+strconv.Itoa(os.Getpid())+"-link")
	os.Remove(tmp)
	if err := os.Link(src, tmp); err == nil {
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return err
		}
		return nil
	}
	return CopyFile(src, dst)
}

func write(path string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	tmp, err := CreateTemp(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// legacyAge is how old a temp file without an owner (written by a layerpack before
// owners were recorded) must be before Sweep takes it for abandoned.
const legacyAge = time.Hour

// Sweep removes the temp files and folders in dir that were left by processes that
// no longer run, and returns their names. legacy, when not nil, recognises older
// temp names without an owner; those go only when older than an hour.
func Sweep(dir string, legacy func(name string) bool) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		name := e.Name()
		stale := false
		if pid, ok := owner(name); ok {
			stale = !alive(pid)
		} else if legacy != nil && legacy(name) {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > legacyAge {
				stale = true
			}
		}
		if !stale {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err == nil {
			removed = append(removed, name)
		}
	}
	return removed
}

// owner parses the process id out of a temp name made by this package.
func owner(name string) (int, bool) {
	i := strings.LastIndex(name, tempMarker)
	if i < 0 {
		return 0, false
	}
	rest := name[i+len(tempMarker):]
	j := strings.IndexByte(rest, '-')
	if j <= 0 {
		return 0, false
	}
	pid, err := strconv.Atoi(rest[:j])
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// alive reports whether a process with this id exists (EPERM: it does, as another user).
func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// Describe is a one-line summary of what Sweep removed, for a log.
func Describe(dir string, removed []string) string {
	if len(removed) == 0 {
		return ""
	}
	return fmt.Sprintf("removed %d temp file(s) left in %s by processes that no longer run", len(removed), dir)
}
