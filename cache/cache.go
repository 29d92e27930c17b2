// Package cache keeps built zips keyed by a hash of everything that can change their
// bytes, so an unchanged layer is not rebuilt. Entries are written atomically (temp file,
// then rename) and guarded by a per-key file lock, so concurrent runs and crashes never
// leave a corrupt entry: a half-written file is never under its final name.
package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/layerpack/layerpack/internal/atomicfile"
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
	if err := atomicfile.LinkOrCopy(zipFile, c.zipPath(e.Key)); err != nil {
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
	return atomicfile.WriteFile(c.metaPath(e.Key), b, 0o644)
}

// TempDir makes a scratch folder inside the cache, on the same file system as it.
func (c *Cache) TempDir(pattern string) (string, error) {
	return atomicfile.MkdirTemp(filepath.Join(c.Dir, "tmp"), pattern)
}

// Sweep removes scratch folders and temp files that killed runs left in the cache.
func (c *Cache) Sweep() []string {
	removed := atomicfile.Sweep(filepath.Join(c.Dir, "tmp"), func(n string) bool { return strings.HasPrefix(n, "build-") })
	legacy := func(n string) bool { return strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-") }
	removed = append(removed, atomicfile.Sweep(filepath.Join(c.Dir, "zips"), legacy)...)
	removed = append(removed, atomicfile.Sweep(c.Dir, legacy)...)
	return removed
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
