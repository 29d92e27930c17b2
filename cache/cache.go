// Package cache keeps built zips keyed by a hash of everything that can change their
// bytes, so an unchanged layer is not rebuilt. Entries are written atomically (temp file,
// then rename) and guarded by a per-key file lock, so concurrent runs and crashes never
// leave a corrupt entry: a half-written file is never under its final name.
package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Cache is a folder of built zips.
type Cache struct {
	Dir string
}

// DefaultDir is $XDG_CACHE_HOME/layerpack (or the OS equivalent).
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache folder: %w (set XDG_CACHE_HOME)", err)
	}
	return filepath.Join(d, "layerpack"), nil
}

// Open makes sure the cache folder exists.
func Open(dir string) (*Cache, error) {
	for _, sub := range []string{"zips", "locks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("opening cache: %w", err)
		}
	}
	return &Cache{Dir: dir}, nil
}

// Entry describes a cached zip.
type Entry struct {
	Key          string `json:"key"`
	CodeSha256   string `json:"code_sha256"`
	Size         int64  `json:"size"`
	UnzippedSize int64  `json:"unzipped_size"`
	Entries      int    `json:"entries"`
	Encoder      string `json:"encoder"`
	// ZipMtime is the cached zip's mtime when stored: the zip is shared by hard
	// link with the output, so a tool that rewrites the output in place also
	// rewrites the cached copy; a changed mtime then makes the entry a miss.
	ZipMtime int64 `json:"zip_mtime"`
}

func (c *Cache) zipPath(key string) string  { return filepath.Join(c.Dir, "zips", key+".zip") }
func (c *Cache) metaPath(key string) string { return filepath.Join(c.Dir, "zips", key+".json") }

// Get returns the entry for key and the path of its zip, if both are present and agree.
func (c *Cache) Get(key string) (*Entry, string, bool) {
	b, err := os.ReadFile(c.metaPath(key))
	if err != nil {
		return nil, "", false
	}
	var e Entry
	if json.Unmarshal(b, &e) != nil || e.Key != key {
		return nil, "", false
	}
	st, err := os.Stat(c.zipPath(key))
	if err != nil || st.Size() != e.Size || st.ModTime().UnixNano() != e.ZipMtime {
		return nil, "", false
	}
	return &e, c.zipPath(key), true
}

// Put stores a copy of zipFile under key. The zip goes in first and the entry last,
// so a crash between the two leaves an orphan zip, never an entry without its zip.
func (c *Cache) Put(e *Entry, zipFile string) error {
	if err := LinkOrCopy(zipFile, c.zipPath(e.Key)); err != nil {
		return fmt.Errorf("caching %s: %w", filepath.Base(zipFile), err)
	}
	st, err := os.Stat(c.zipPath(e.Key))
	if err != nil {
		return err
	}
	e.ZipMtime = st.ModTime().UnixNano()
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(c.metaPath(e.Key), b, 0o644)
}

// TempDir makes a scratch folder inside the cache, on the same file system as it.
func (c *Cache) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(filepath.Join(c.Dir, "tmp"), pattern)
}

// Lock takes an exclusive lock named key, waiting for other processes that hold it.
func (c *Cache) Lock(key string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(c.Dir, "locks", key+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking cache: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// LinkOrCopy makes dst the same content as src, atomically: a hard link when both are
// on one file system (no bytes copied), else a copy.
func LinkOrCopy(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), fmt.Sprintf(".%s.link-%d", filepath.Base(dst), os.Getpid()))
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

// WriteFileAtomic writes data to a temp file beside path, syncs it and renames it.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// CopyFile copies src to dst atomically.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeAtomic(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

func writeAtomic(path string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
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

// ErrMiss is returned by lookups that find nothing.
var ErrMiss = errors.New("cache miss")
