package cache

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/layerpack/layerpack/internal/atomicfile"
)

// Entries is the store of compressed zip entries (the zipper's Reuse store) in the
// cache folder "entries": one file per key, under a folder named for the key's first
// two characters. Blobs carry their own checksum (the zipper checks it), so they are
// renamed into place without a sync: a crash can leave a torn blob, which reads as a
// miss, never a half-written file under another key's name.
type Entries struct {
	dir    string
	mu     sync.Mutex
	shards map[string]bool // shard folders known to exist
}

// Limits of the entry store, applied by Prune.
const (
	EntriesMaxBytes = 2 << 30             // total size kept
	EntriesMaxAge   = 30 * 24 * time.Hour // a blob unused this long goes
	// entriesMaxBlob bounds what Get reads: the zipper stores no entry over a few MiB.
	entriesMaxBlob = 64 << 20
	// entriesTouch: Get refreshes a blob's mtime (its age for Prune) when it is
	// older than this, so a hit costs no write on most builds.
	entriesTouch = 24 * time.Hour
	// entriesPruneEvery: Prune does its walk at most this often.
	entriesPruneEvery = time.Hour
)

// Entries returns the cache's entry store.
func (c *Cache) Entries() *Entries {
	return &Entries{dir: filepath.Join(c.Dir, "entries"), shards: map[string]bool{}}
}

// validKey accepts the lower-case hex keys the zipper makes; anything else (a path,
// an empty string) is never a file name.
func validKey(key string) bool {
	if len(key) < 16 || len(key) > 128 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (e *Entries) path(key string) string { return filepath.Join(e.dir, key[:2], key) }

// Get returns the blob stored under key.
func (e *Entries) Get(key string) ([]byte, bool) {
	if !validKey(key) {
		return nil, false
	}
	f, err := os.Open(e.path(key))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > entriesMaxBlob {
		return nil, false
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, false
	}
	if now := time.Now(); now.Sub(st.ModTime()) > entriesTouch {
		os.Chtimes(f.Name(), now, now) // best effort: only Prune's order depends on it
	}
	return b, true
}

// OpenBlob returns the blob under key as an open file, for blobs too large to
// read into memory (the zipper checks its checksum before using it).
func (e *Entries) OpenBlob(key string) (*os.File, bool) {
	if !validKey(key) {
		return nil, false
	}
	f, err := os.Open(e.path(key))
	if err != nil {
		return nil, false
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, false
	} else if now := time.Now(); now.Sub(st.ModTime()) > entriesTouch {
		os.Chtimes(f.Name(), now, now)
	}
	return f, true
}

// PutBlob stores what r yields under key, streamed to a temp file and renamed.
func (e *Entries) PutBlob(key string, r io.Reader) {
	e.put(key, func(f *os.File) error {
		_, err := io.Copy(f, r)
		return err
	})
}

// Put stores blob under key; failing to store only costs a compression next time.
func (e *Entries) Put(key string, blob []byte) {
	e.put(key, func(f *os.File) error {
		_, err := f.Write(blob)
		return err
	})
}

func (e *Entries) put(key string, write func(*os.File) error) {
	if !validKey(key) {
		return
	}
	shard := filepath.Join(e.dir, key[:2])
	e.mu.Lock()
	known := e.shards[shard]
	e.mu.Unlock()
	if !known {
		if os.MkdirAll(shard, 0o755) != nil {
			return
		}
		e.mu.Lock()
		e.shards[shard] = true
		e.mu.Unlock()
	}
	renameInto(e.path(key), write)
}

// renameInto writes a temp file beside path and renames it there, without a sync:
// what the store keeps carries its own checksum, so a torn file reads as a miss.
func renameInto(path string, write func(*os.File) error) error {
	f, err := atomicfile.CreateTemp(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// MaybePrune runs Prune with the default limits unless it ran within the last hour
// (a stamp file records when), so most builds do not walk the store.
func (e *Entries) MaybePrune() {
	stamp := filepath.Join(e.dir, ".pruned")
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < entriesPruneEvery {
		return
	}
	if os.MkdirAll(e.dir, 0o755) != nil {
		return
	}
	if f, err := os.Create(stamp); err == nil {
		f.Close()
	}
	e.Prune(EntriesMaxBytes, EntriesMaxAge, time.Now())
}

// Prune removes what killed runs left behind, the blobs not used for maxAge, and then
// the least recently used ones until the store holds at most maxBytes. Concurrent
// builds are safe: a blob removed under a reader is a miss.
func (e *Entries) Prune(maxBytes int64, maxAge time.Duration, now time.Time) (removed int) {
	shards, err := os.ReadDir(e.dir)
	if err != nil {
		return 0
	}
	type blob struct {
		path  string
		size  int64
		mtime time.Time
	}
	var keep []blob
	var total int64
	for _, s := range shards {
		if !s.IsDir() {
			continue
		}
		dir := filepath.Join(e.dir, s.Name())
		if s.Name() == "packs" {
			removed += prunePacks(dir, now)
			continue
		}
		removed += len(atomicfile.Sweep(dir, nil))
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, d := range ents {
			if !validKey(d.Name()) {
				continue // a live run's temp file
			}
			info, err := d.Info()
			if err != nil {
				continue
			}
			p := filepath.Join(dir, d.Name())
			if now.Sub(info.ModTime()) > maxAge {
				if os.Remove(p) == nil {
					removed++
				}
				continue
			}
			keep = append(keep, blob{p, info.Size(), info.ModTime()})
			total += info.Size()
		}
	}
	if total <= maxBytes {
		return removed
	}
	slices.SortFunc(keep, func(a, b blob) int { return a.mtime.Compare(b.mtime) })
	for _, b := range keep {
		if total <= maxBytes {
			break
		}
		if os.Remove(b.path) == nil {
			removed++
		}
		total -= b.size
	}
	return removed
}

// prunePacks removes what killed runs left in the packs folder and the packs no
// build rewrote or used for PacksMaxAge (a layer that is gone).
func prunePacks(dir string, now time.Time) (removed int) {
	removed = len(atomicfile.Sweep(dir, nil))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return removed
	}
	for _, d := range ents {
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() && now.Sub(info.ModTime()) > PacksMaxAge {
			if os.Remove(filepath.Join(dir, d.Name())) == nil {
				removed++
			}
		}
	}
	return removed
}
