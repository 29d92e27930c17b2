// Package fsutil has the file helpers several packages need.
package fsutil

import (
	"io"
	"io/fs"
	"os"
)

// CopyFile copies src to dst (replacing it) and gives dst exactly perm, whatever
// the umask; the file is writable by its owner while it is being written.
func CopyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}
