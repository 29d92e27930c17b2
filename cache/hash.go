package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
)

// Hasher hashes the content of input files and folders. It remembers each file's hash
// with the stat data it was computed from (size, nanosecond mtime and inode, like
// git's index with trustctime off), so a no-op build reads no input again. The ctime
// is left out on purpose: staging hard-links inputs, which changes their ctime on
// every build. A write changes the mtime; a tool that writes and then restores the
// old mtime and size exactly would be missed (use --no-cache after such a tool).
type Hasher struct {
	path   string
	mu     sync.Mutex   // guards trees, walks and busy
	memoMu sync.RWMutex // guards memo and dirty: read by every file of every walk
	memo   map[string]memoEntry
	dirty  bool
	trees  map[string]string // tree hashes of this run: each arch of a layer asks again
	// walks are the trees hashed in this run, as walked: a builder that copies
	// one goes through the same list instead of reading every folder again.
	walks map[string][]Walked
	busy  map[string]chan struct{} // trees being walked, closed when done
	// loaded is closed once memo holds the saved memo; everything that reads
	// or writes memo waits for it.
	loaded chan struct{}
}

// Walked is one path of a tree Path hashed, in filepath.WalkDir's order.
type Walked struct {
	Path string
	Rel  string // Path relative to the tree, slash-separated; "." for the tree itself
	Info fs.FileInfo
	// Sum is the SHA-256 of a regular file's content as hashed for the key
	// (HasSum): a builder that zips the file passes it on instead of asking
	// the memo again.
	Sum    [sha256.Size]byte
	HasSum bool
}

type memoEntry struct {
	Size  int64
	Mtime int64
	Ino   uint64
	Sum   [sha256.Size]byte
}

// NewHasher loads the memo from the cache (a missing or corrupt memo is just empty).
func (c *Cache) NewHasher() *Hasher {
	h := &Hasher{path: filepath.Join(c.Dir, "filehash.bin"), memo: map[string]memoEntry{}, trees: map[string]string{}, walks: map[string][]Walked{}, busy: map[string]chan struct{}{}}
	// Decoded while the first tree is walked (the walk needs no memo, hashing
	// does): a 100,000-file memo takes about 0.1 s to decode.
	h.loaded = make(chan struct{})
	go func() {
		defer close(h.loaded)
		if b, err := os.ReadFile(h.path); err == nil {
			m := decodeMemo(b)
			h.memoMu.Lock()
			h.memo = m
			h.memoMu.Unlock()
		}
	}()
	return h
}

// Save writes the memo back, atomically but without a sync: the memo ends in a
// checksum, so one torn by a crash reads as empty (files are hashed again), and
// a sync would cost every build that hashed anything new.
func (h *Hasher) Save() error {
	<-h.loaded
	h.memoMu.RLock()
	defer h.memoMu.RUnlock()
	if !h.dirty || h.path == "" {
		return nil
	}
	b := encodeMemo(h.memo)
	return renameInto(h.path, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// The memo file: magic, then per file (sorted by path) the path's length and
// the path, size, mtime and inode, and the 32-byte SHA-256; then a CRC-32 of all
// before it. A binary file because a 100,000-file tree's memo is read on every
// build, no-op ones included, and JSON took most of such a build.
const memoMagic = "LPH1"

func encodeMemo(m map[string]memoEntry) []byte {
	paths := make([]string, 0, len(m))
	for p := range m {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	b := make([]byte, 0, len(m)*(80+sha256.Size))
	b = append(b, memoMagic...)
	for _, p := range paths {
		e := m[p]
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
		b = binary.AppendVarint(b, e.Size)
		b = binary.AppendVarint(b, e.Mtime)
		b = binary.AppendUvarint(b, e.Ino)
		b = append(b, e.Sum[:]...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// decodeMemo reads a memo file; anything torn or foreign is an empty memo.
func decodeMemo(b []byte) map[string]memoEntry {
	m := map[string]memoEntry{}
	if len(b) < len(memoMagic)+4 || string(b[:len(memoMagic)]) != memoMagic ||
		crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return m
	}
	// The paths are substrings of one copy of the file: one allocation, not one
	// a path.
	all := string(b[len(memoMagic) : len(b)-4])
	rest := b[len(memoMagic) : len(b)-4]
	m = make(map[string]memoEntry, len(rest)/96)
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return map[string]memoEntry{}
		}
		at := len(all) - len(rest) + k
		p := all[at : at+int(n)]
		rest = rest[k+int(n):]
		var e memoEntry
		var k1, k2, k3 int
		e.Size, k1 = binary.Varint(rest)
		if k1 > 0 {
			e.Mtime, k2 = binary.Varint(rest[k1:])
		}
		if k1 > 0 && k2 > 0 {
			e.Ino, k3 = binary.Uvarint(rest[k1+k2:])
		}
		if k1 <= 0 || k2 <= 0 || k3 <= 0 || len(rest) < k1+k2+k3+sha256.Size {
			return map[string]memoEntry{}
		}
		rest = rest[k1+k2+k3:]
		e.Sum = [sha256.Size]byte(rest[:sha256.Size])
		rest = rest[sha256.Size:]
		m[p] = e
	}
	return m
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
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		return h.entry(p, []byte(abs), st)
	}
	h.mu.Lock()
	sum, ok := h.trees[p]
	if !ok {
		// Both architectures of a layer ask at once: one walks, the other waits.
		if wait, busy := h.busy[p]; busy {
			h.mu.Unlock()
			<-wait
			return h.Path(p)
		}
		done := make(chan struct{})
		h.busy[p] = done
		defer func() {
			h.mu.Lock()
			delete(h.busy, p)
			h.mu.Unlock()
			close(done)
		}()
	}
	h.mu.Unlock()
	if ok {
		return sum, nil
	}
	walked, err := walkTree(p, st)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	lines, err := h.lines(p, walked)
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
	h.walks[p] = walked
	h.mu.Unlock()
	return sum, nil
}

// Walk returns the paths of the tree at p as Path walked it in this run (the root
// first), or false when it did not.
func (h *Hasher) Walk(p string) ([]Walked, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.walks[p]
	return w, ok
}

// lines hashes each walked path into its "rel\x00sum" line, in parallel: on a
// warm memo this is one map lookup a file, on a cold one it reads every file.
func (h *Hasher) lines(root string, walked []Walked) ([]string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(walked))
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	firstAt := len(walked)
	const chunk = 256
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), (len(walked)+chunk-1)/chunk) {
		wg.Go(func() {
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= len(walked) {
					return
				}
				var path, line []byte // scratch: a file the memo knows costs one allocation, its line
				for i := lo; i < min(lo+chunk, len(walked)); i++ {
					w := &walked[i]
					path = append(path[:0], abs...)
					if w.Rel != "." {
						path = append(append(path, filepath.Separator), filepath.FromSlash(w.Rel)...)
					}
					var err error
					if w.Info.Mode().IsRegular() {
						if w.Sum, err = h.sumOf(w.Path, path, w.Info); err == nil {
							w.HasSum = true
							line = append(append(append(line[:0], w.Rel...), 0), fileTag(w.Info.Mode())...)
							lines[i] = string(hex.AppendEncode(line, w.Sum[:]))
							continue
						}
					}
					var sum string
					if err == nil {
						sum, err = h.entry(w.Path, path, w.Info)
					}
					if err != nil {
						// The error of the first path in walk order, as a serial walk gives.
						mu.Lock()
						if i < firstAt {
							first, firstAt = err, i
						}
						mu.Unlock()
						return
					}
					lines[i] = w.Rel + "\x00" + sum
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return lines, nil
}

// remembered is the memo's entry for the regular file at abs when its stat
// data is info's.
func (h *Hasher) remembered(abs []byte, info fs.FileInfo) (memoEntry, bool) {
	sys, ok := info.Sys().(*syscall.Stat_t)
	if !ok || !info.Mode().IsRegular() {
		return memoEntry{}, false
	}
	<-h.loaded
	h.memoMu.RLock()
	m, ok := h.memo[string(abs)] // no allocation for the key
	h.memoMu.RUnlock()
	return m, ok && m.Size == info.Size() && m.Mtime == info.ModTime().UnixNano() && m.Ino == sys.Ino
}

// sumOf is the SHA-256 of the regular file at path (abs): the memo's when its
// stat data is unchanged, else read.
func (h *Hasher) sumOf(path string, abs []byte, info fs.FileInfo) ([sha256.Size]byte, error) {
	if m, ok := h.remembered(abs, info); ok {
		return m.Sum, nil
	}
	return h.hash(path, string(abs), info)
}

// fileTag is what a regular file's line says before its sum: whether it is
// executable, the one mode bit the zip keeps.
func fileTag(mode fs.FileMode) string {
	if mode&0o111 != 0 {
		return "x:"
	}
	return "f:"
}

func (h *Hasher) entry(path string, abs []byte, info fs.FileInfo) (string, error) {
	switch {
	case info.IsDir():
		return "dir", nil
	case info.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(path)
		return "link:" + t, err
	case !info.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file, folder or symlink", path)
	}
	sum, err := h.sumOf(path, abs, info)
	return fileTag(info.Mode()) + hex.EncodeToString(sum[:]), err
}

// hashBufs are the read buffers of hash.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// hash reads the regular file at path and remembers its sum under abs with
// info's stat data.
func (h *Hasher) hash(path, abs string, info fs.FileInfo) ([sha256.Size]byte, error) {
	var key memoEntry
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		key = memoEntry{Size: info.Size(), Mtime: info.ModTime().UnixNano(), Ino: sys.Ino}
	}
	f, err := os.Open(path)
	if err != nil {
		return key.Sum, err
	}
	defer f.Close()
	d := sha256.New()
	buf := hashBufs.Get().(*[]byte)
	// Only the Reader of f: io.CopyBuffer would take its WriteTo, which
	// allocates a buffer for every file.
	_, err = io.CopyBuffer(d, struct{ io.Reader }{f}, *buf)
	hashBufs.Put(buf)
	if err != nil {
		return key.Sum, fmt.Errorf("hashing %s: %w", path, err)
	}
	d.Sum(key.Sum[:0])
	if key.Ino != 0 {
		<-h.loaded
		h.memoMu.Lock()
		h.memo[abs] = key
		h.dirty = true
		h.memoMu.Unlock()
	}
	return key.Sum, nil
}

// Known returns the SHA-256 of the regular file at path when this Hasher has it
// for exactly info's size, mtime and inode (hashed in this run, or remembered
// from one before it), without reading the file; nil otherwise.
func (h *Hasher) Known(path string, info fs.FileInfo) []byte {
	abs, _ := filepath.Abs(path)
	m, ok := h.remembered([]byte(abs), info)
	if !ok {
		return nil
	}
	return m.Sum[:]
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
