package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/layerpack/layerpack/internal/atomicfile"
)

// Hasher hashes the content of input files and folders. It remembers each file's hash
// with the stat data it was computed from (size, nanosecond mtime and inode, like
// git's index with trustctime off), so a no-op build reads no input again. The ctime
// is left out on purpose: staging hard-links inputs, which changes their ctime on
// every build. A write changes the mtime; a tool that writes and then restores the
// old mtime and size exactly would be missed (use --no-cache after such a tool).
type Hasher struct {
	path  string
	mu    sync.Mutex
	memo  map[string]memoEntry
	dirty bool
	trees map[string]string // tree hashes of this run: each arch of a layer asks again
}

type memoEntry struct {
	Size  int64  `json:"s"`
	Mtime int64  `json:"m"`
	Ino   uint64 `json:"i"`
	Sum   string `json:"h"`
}

// NewHasher loads the memo from the cache (a missing or corrupt memo is just empty).
func (c *Cache) NewHasher() *Hasher {
	h := &Hasher{path: filepath.Join(c.Dir, "filehash.json"), memo: map[string]memoEntry{}, trees: map[string]string{}}
	if b, err := os.ReadFile(h.path); err == nil {
		_ = json.Unmarshal(b, &h.memo)
	}
	return h
}

// Save writes the memo back, atomically.
func (h *Hasher) Save() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty || h.path == "" {
		return nil
	}
	b, err := json.Marshal(h.memo)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(h.path, b, 0o644)
}

// Path hashes a file or a folder tree. For a tree, the hash covers every relative
// path, entry type, execute bit, symlink target and file content, in sorted order;
// mtimes, owners and other mode bits do not count, because the zip does not keep them.
func (h *Hasher) Path(p string) (string, error) {
	st, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return h.entry(p, st)
	}
	h.mu.Lock()
	sum, ok := h.trees[p]
	h.mu.Unlock()
	if ok {
		return sum, nil
	}
	var lines []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(p, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum, err := h.entry(path, info)
		if err != nil {
			return err
		}
		lines = append(lines, filepath.ToSlash(rel)+"\x00"+sum)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	sort.Strings(lines)
	d := sha256.New()
	for _, l := range lines {
		io.WriteString(d, l+"\n")
	}
	sum = "tree:" + hex.EncodeToString(d.Sum(nil))
	h.mu.Lock()
	h.trees[p] = sum
	h.mu.Unlock()
	return sum, nil
}

func (h *Hasher) entry(path string, info fs.FileInfo) (string, error) {
	switch {
	case info.IsDir():
		return "dir", nil
	case info.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(path)
		return "link:" + t, err
	case !info.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file, folder or symlink", path)
	}
	exec := "f"
	if info.Mode()&0o111 != 0 {
		exec = "x"
	}
	sum, err := h.file(path, info)
	return exec + ":" + sum, err
}

func (h *Hasher) file(path string, info fs.FileInfo) (string, error) {
	var key memoEntry
	abs, _ := filepath.Abs(path)
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		key = memoEntry{Size: info.Size(), Mtime: info.ModTime().UnixNano(), Ino: sys.Ino}
		h.mu.Lock()
		m, ok := h.memo[abs]
		h.mu.Unlock()
		if ok && m.Size == key.Size && m.Mtime == key.Mtime && m.Ino == key.Ino {
			return m.Sum, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	key.Sum = hex.EncodeToString(d.Sum(nil))
	if key.Ino != 0 {
		h.mu.Lock()
		h.memo[abs] = key
		h.dirty = true
		h.mu.Unlock()
	}
	return key.Sum, nil
}

// Key hashes the lines that describe a build into a cache key.
func Key(lines []string) string {
	d := sha256.New()
	for _, l := range lines {
		io.WriteString(d, l)
		io.WriteString(d, "\n")
	}
	return hex.EncodeToString(d.Sum(nil))[:32]
}
