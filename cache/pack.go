package cache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Pack is the zipper's Reuse store for one layer and architecture: the blobs of
// its small files (most of a node_modules tree by count, little by size), where a
// file per blob would cost more than deflating again, live in one pack file that
// is read whole when the pack opens and rewritten, with just what this build
// used, when it closes; larger blobs go to the shared Entries. A pack is bounded
// by its layer, the last writer of one wins (both wrote a valid pack), and a
// torn or stale pack reads as empty.
type Pack struct {
	*Entries
	path string
	old  map[string][]byte
	mu   sync.Mutex
	used map[string][]byte
	size int  // bytes in used
	new  bool // a blob not in old was used or put
}

const (
	packMagic = "LPK1"
	// packMaxBlob: blobs up to this size go to the pack, the rest to the
	// shared Entries. A file per blob costs a create and a rename each, which
	// measured 0.2 to 0.9 ms on ext4 (a 198 MB node_modules layer has 2,700
	// blobs over 8 KiB): one pack file for them is cheaper than that.
	packMaxBlob = 256 << 10
	// packSmallBlob: the largest blob of a file under 4 KiB (its header and
	// head included).
	packSmallBlob = 4<<10 + 256
	// packBudget bounds what one build puts in a pack (it is held in memory
	// until Close); past it, blobs go to Entries.
	packBudget = 32 << 20
	// packMaxBytes bounds what a pack file may hold or be read as.
	packMaxBytes = 256 << 20
	// PacksMaxAge: a pack not rewritten for this long is removed by Prune.
	PacksMaxAge = EntriesMaxAge
)

// Pack opens the pack named name (a hex id of the layer, architecture and project;
// see validKey).
func (e *Entries) Pack(name string) *Pack {
	p := &Pack{Entries: e, old: map[string][]byte{}, used: map[string][]byte{}}
	if !validKey(name) {
		return p
	}
	p.path = filepath.Join(e.dir, "packs", name+".pack")
	if b, err := readLimited(p.path, packMaxBytes); err == nil {
		p.old = decodePack(b)
	}
	return p
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > max {
		return nil, os.ErrInvalid
	}
	b := make([]byte, st.Size())
	_, err = f.ReadAt(b, 0)
	return b, err
}

// GetSmall returns a blob from the pack (not from Entries, where PutSmall
// sends what the pack does not take: the zipper asks Get for those when a file
// access is worth it).
func (p *Pack) GetSmall(key string) ([]byte, bool) {
	b, ok := p.old[key] // old is never written after Pack returns
	if !ok {
		return nil, false
	}
	p.mu.Lock()
	if _, seen := p.used[key]; !seen {
		p.used[key] = b
		p.size += len(b)
	}
	p.mu.Unlock()
	return b, true
}

// PutSmall keeps a small blob for the next pack (a large one goes to Entries).
func (p *Pack) PutSmall(key string, blob []byte) {
	if len(blob) > packMaxBlob || !validKey(key) {
		p.Put(key, blob)
		return
	}
	p.mu.Lock()
	// The blob of a file under 4 KiB (header and head included, under
	// packSmallBlob) stays whatever the budget: the zipper looks for those
	// nowhere else.
	old, seen := p.used[key]
	if !seen && len(blob) > packSmallBlob && p.size+len(blob) > packBudget {
		p.mu.Unlock()
		p.Put(key, blob)
		return
	}
	p.used[key] = slices.Clone(blob)
	p.size += len(blob) - len(old)
	p.new = true
	p.mu.Unlock()
}

// Close writes the pack of what this build used, when that differs from what was
// read; failing to write only costs compressions next time.
func (p *Pack) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path == "" || (!p.new && len(p.used) == len(p.old)) {
		if p.path != "" && len(p.used) > 0 {
			touch(p.path) // still in use: Prune keeps it
		}
		return
	}
	if len(p.used) == 0 {
		os.Remove(p.path)
		return
	}
	if os.MkdirAll(filepath.Dir(p.path), 0o755) != nil {
		return
	}
	// Unsynced, like the blobs: a torn pack fails its checksum and reads as empty.
	_ = renameInto(p.path, func(f *os.File) error { return writePack(f, p.used) })
}

func touch(path string) {
	if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) > entriesTouch {
		now := time.Now()
		os.Chtimes(path, now, now)
	}
}

// A pack: magic, then per blob (sorted by key, so the same set gives the same
// bytes) a key length byte, the key, a 4-byte blob length and the blob; then the
// CRC-32 of everything before it.
func encodePack(m map[string][]byte) []byte {
	var b bytes.Buffer
	writePack(&b, m)
	return b.Bytes()
}

// writePack writes the pack of m to w, streamed: a pack can be tens of MB, and
// Close must not hold it twice.
func writePack(w io.Writer, m map[string][]byte) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bw := bufio.NewWriterSize(w, 256<<10)
	crc := crc32.NewIEEE()
	out := io.MultiWriter(bw, crc)
	io.WriteString(out, packMagic)
	var hdr []byte
	for _, k := range keys {
		hdr = append(append(hdr[:0], byte(len(k))), k...)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(m[k])))
		out.Write(hdr)
		out.Write(m[k])
	}
	bw.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return bw.Flush()
}

func decodePack(b []byte) map[string][]byte {
	m := map[string][]byte{}
	if len(b) < len(packMagic)+4 || string(b[:len(packMagic)]) != packMagic {
		return m
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return m
	}
	rest := body[len(packMagic):]
	for len(rest) > 0 {
		kl := int(rest[0])
		if len(rest) < 1+kl+4 {
			return map[string][]byte{}
		}
		key := string(rest[1 : 1+kl])
		bl := int(binary.LittleEndian.Uint32(rest[1+kl:]))
		rest = rest[1+kl+4:]
		if bl > len(rest) || !validKey(key) {
			return map[string][]byte{}
		}
		m[key] = rest[:bl:bl]
		rest = rest[bl:]
	}
	return m
}
