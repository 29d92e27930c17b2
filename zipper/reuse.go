package zipper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"strconv"

	"github.com/klauspost/compress/flate"
)

// Reuse is a store of entries compressed by earlier runs (Options.Reuse).
// Keys are hex strings naming the content, the encoder's version and the
// level; blobs are opaque and checked by Write before use, so a store may
// lose, truncate or garble them: a bad blob only costs a compression. Get and
// Put are called from several goroutines at once.
type Reuse interface {
	Get(key string) ([]byte, bool)
	Put(key string, blob []byte)
}

// SmallReuse is a Reuse that also keeps entries in memory, loaded at once, so
// a lookup costs no file access: what files under 4 KiB need to beat
// compressing again, and cheaper than a file per entry for the rest. Write
// sends every file it holds whole to PutSmall, which may pass it on to Put; it
// looks in GetSmall, and for files of 4 KiB and more then in Get. Files under
// 4 KiB never go to Get or Put.
type SmallReuse interface {
	Reuse
	GetSmall(key string) ([]byte, bool)
	PutSmall(key string, blob []byte)
}

// FileReuse is a Reuse that also keeps entries whose compressed form is too
// large to hold in memory (over 4 MiB: a big shared library, a model), as
// files: Write streams them in and out, checking a blob's checksum before it
// copies a byte of it.
type FileReuse interface {
	Reuse
	// OpenBlob returns the blob stored under key, open for reading; the caller
	// closes it.
	OpenBlob(key string) (*os.File, bool)
	// PutBlob stores the blob r yields under key.
	PutBlob(key string, r io.Reader)
}

// blob layout: magic, method, CRC-32 and uncompressed size of the entry, the
// length of the data, the length of the head and the head (the file's first
// InspectShort bytes, or fewer when they were not seen), the data (none for a
// stored entry: only the decision and the CRC are kept), then the CRC-32 of
// everything before it, which catches a blob torn by a crash.
const (
	blobMagic  = "LPZ2"
	blobHeader = 4 + 2 + 4 + 8 + 8 + 1
)

// reuseSalt is what, besides the content, decides an entry's compressed bytes.
func reuseSalt(level int) string {
	return "layerpack zipper entry\x00" + Encoder + "@" + EncoderVersion() + "\x00level " + strconv.Itoa(level) + "\x00"
}

func (z *zw) reuseKey(sum []byte) string {
	h := sha256.New()
	io.WriteString(h, z.salt)
	h.Write(sum)
	return hex.EncodeToString(h.Sum(nil))
}

func encodeBlob(method uint16, crc uint32, usize int64, head, data []byte) []byte {
	head = head[:min(len(head), InspectShort)]
	b := make([]byte, blobHeader, blobHeader+len(head)+len(data)+4)
	copy(b, blobMagic)
	binary.LittleEndian.PutUint16(b[4:], method)
	binary.LittleEndian.PutUint32(b[6:], crc)
	binary.LittleEndian.PutUint64(b[10:], uint64(usize))
	binary.LittleEndian.PutUint64(b[18:], uint64(len(data)))
	b[26] = byte(len(head))
	b = append(b, head...)
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// decodeBlob returns a blob's fields if it is whole and describes an entry of
// usize bytes; data is nil for a stored entry.
func decodeBlob(b []byte, usize int64) (method uint16, crc uint32, head, data []byte, ok bool) {
	if len(b) < blobHeader+4 || string(b[:4]) != blobMagic {
		return 0, 0, nil, nil, false
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return 0, 0, nil, nil, false
	}
	method = binary.LittleEndian.Uint16(b[4:])
	crc = binary.LittleEndian.Uint32(b[6:])
	hl := int(b[26])
	if hl > InspectShort || binary.LittleEndian.Uint64(b[10:]) != uint64(usize) || binary.LittleEndian.Uint64(b[18:]) != uint64(len(body)-blobHeader-hl) {
		return 0, 0, nil, nil, false
	}
	head, data = body[blobHeader:blobHeader+hl], body[blobHeader+hl:]
	switch {
	case method == methodStore && len(data) == 0:
		return method, crc, head, nil, true
	case method == methodStore && int64(len(data)) == usize && usize < 4<<10:
		return method, crc, head, data, true // a small file kept whole
	case method == methodDeflate && len(data) > 0 && int64(len(data)) < usize:
		return method, crc, head, data, true
	}
	return 0, 0, nil, nil, false
}

// reuseGet is where the entry of a file of size may be found: with a
// SmallReuse its in-memory store, and for a file large enough that a file
// access beats compressing it again, then the plain store (where SmallReuse
// sends what it does not keep); nil when nowhere.
func (z *zw) reuseGet(size int64) func(string) ([]byte, bool) {
	sr, small := z.opt.Reuse.(SmallReuse)
	switch {
	case small && size < z.lim.reuseMin:
		return sr.GetSmall
	case small:
		return func(key string) ([]byte, bool) {
			if b, ok := sr.GetSmall(key); ok {
				return b, ok
			}
			return sr.Get(key)
		}
	case size < z.lim.reuseMin:
		return nil
	}
	return z.opt.Reuse.Get
}

// smallReused is inMemory for a file whose compressed form may be in the
// Reuse store; what it compresses goes there.
func (w *worker) smallReused(j *job, in, sum []byte, sr SmallReuse) {
	key := w.z.reuseKey(sum)
	get, put := w.z.reuseGet(j.it.size), w.z.opt.Reuse.Put
	if sr != nil {
		put = sr.PutSmall
	}
	if b, ok := get(key); ok {
		if method, crc, _, data, ok := decodeBlob(b, j.it.size); ok {
			w.inspect(j, crc, in)
			if method == methodDeflate {
				putBuf(in)
				w.z.drop(j, int64(cap(in)))
				j.method, j.crc, j.data, j.pooled, j.csize = methodDeflate, crc, data, nil, int64(len(data))
				return
			}
			w.z.drop(j, int64(classSize(len(in))))
			j.method, j.crc, j.data, j.pooled, j.csize = methodStore, crc, in, in, int64(len(in))
			return
		}
	}
	// The blob's head is copied first: once deflated, inMemory gives in back
	// to the pool, where another worker may already be reading a file into it.
	var hb [InspectShort]byte
	head := hb[:copy(hb[:], in)]
	w.inMemory(j, in, in)
	data := j.data
	if j.method == methodStore && (sr == nil || j.it.size >= w.z.lim.reuseMin) {
		data = nil // a SmallReuse keeps small stored files whole, so they need no read
	}
	w.put(put, key, j, head, data)
}

func (w *worker) put(put func(string, []byte), key string, j *job, head, data []byte) {
	put(key, encodeBlob(j.method, j.crc, j.it.size, head, data))
}

// largeReused is large for a file whose compressed form may be in the Reuse
// store. The file is hashed first; on a miss it is compressed from a second
// read, hashed again, and stored only when both reads agree.
func (w *worker) largeReused(ctx context.Context, j *job) error {
	sum, err := w.hashFile(ctx, j.it)
	if err != nil {
		return err
	}
	w.hashed(j, sum)
	if w.z.prev != nil && w.fromPrevious(j, sum, w.head, true) {
		return nil
	}
	if w.z.opt.Reuse == nil {
		return w.large(ctx, j)
	}
	key := w.z.reuseKey(sum)
	if w.fromFile(j, key, w.head) {
		return nil
	}
	if b, ok := w.z.opt.Reuse.Get(key); ok {
		method, crc, _, data, ok := decodeBlob(b, j.it.size)
		if ok && (method == methodStore || len(data) <= w.z.lim.spillMem) {
			w.inspect(j, crc, w.head)
		}
		switch {
		case ok && method == methodDeflate && len(data) <= w.z.lim.spillMem:
			j.method, j.crc, j.data, j.csize = methodDeflate, crc, data, int64(len(data))
			w.z.bytesRead.Add(j.it.size)
			return nil
		case ok && method == methodStore:
			// The writer copies the file again and checks it against crc.
			w.z.drop(j, j.cost)
			j.method, j.crc, j.reread, j.csize = methodStore, crc, true, j.it.size
			w.z.bytesRead.Add(j.it.size)
			return nil
		}
	}
	w.sha = sha256.New()
	defer func() { w.sha = nil }()
	if err := w.large(ctx, j); err != nil {
		return err
	}
	if string(w.sha.Sum(nil)) != string(sum) {
		return nil // changed between the reads; the writer's check decides
	}
	switch {
	case j.spill != nil && j.spill.f != nil:
		if fr, ok := w.z.opt.Reuse.(FileReuse); ok {
			w.putFile(fr, key, j, w.head)
		}
	case j.spill != nil && j.spill.f == nil:
		w.put(w.z.opt.Reuse.Put, key, j, w.head, j.spill.buf)
	case j.reread: // stored: the blob keeps the decision and the CRC
		w.put(w.z.opt.Reuse.Put, key, j, w.head, nil)
	}
	return nil
}

// hashFile returns the SHA-256 of an entry's content, checking its size.
func (w *worker) hashFile(ctx context.Context, it *item) (sum []byte, err error) {
	rc, err := it.open()
	if err != nil {
		return nil, fmt.Errorf("zipper: entry %q: open: %w", it.name, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("zipper: entry %q: close: %w", it.name, cerr)
		}
	}()
	h := sha256.New()
	w.head = w.head[:0]
	src := &ctxReader{ctx: ctx, r: rc}
	n, err := io.CopyBuffer(headWriter{w, h}, io.LimitReader(src, it.size+1), w.chunk)
	if err != nil {
		if src.err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("zipper: %w", context.Cause(ctx))
		}
		return nil, fmt.Errorf("zipper: entry %q: read: %w", it.name, err)
	}
	if n != it.size {
		return nil, fmt.Errorf("zipper: entry %q: %w: read %d of %d bytes", it.name, ErrChanged, n, it.size)
	}
	return h.Sum(nil), nil
}

// headWriter hashes and keeps the head (keepHead) of what it is given.
type headWriter struct {
	w *worker
	h hash.Hash
}

func (hw headWriter) Write(p []byte) (int, error) {
	hw.w.keepHead(p)
	return hw.h.Write(p)
}

// known takes an entry whose content hash the caller gave (Entry.Sum) from the
// Reuse store without reading the file: the head Inspect wants is inflated from
// the stored bytes. A miss, or an entry stored uncompressed, returns false and
// the file is read as usual.
func (w *worker) known(j *job) bool {
	it := j.it
	if it.size > w.z.lim.small && (w.z.opt.Inspect == nil || w.z.opt.InspectLess != nil && w.z.opt.InspectLess(it.name)) &&
		w.fromFile(j, w.z.reuseKey(it.sum), nil) {
		w.hashed(j, it.sum)
		return true
	}
	get := w.z.reuseGet(it.size)
	if get == nil {
		return false
	}
	b, ok := get(w.z.reuseKey(it.sum))
	if !ok {
		return false
	}
	method, crc, head, data, ok := decodeBlob(b, it.size)
	if !ok || data == nil || len(data) > w.z.lim.spillMem {
		return false // a stored entry without its content is read as usual
	}
	if w.z.opt.Inspect != nil {
		short := min(it.size, InspectShort)
		switch {
		case method == methodStore:
			head = data[:min(len(data), InspectHead)]
		case w.z.opt.InspectLess == nil || !w.z.opt.InspectLess(it.name) || int64(len(head)) < short:
			if head, ok = w.inflateHead(data, min(it.size, InspectHead)); !ok {
				return false
			}
		default:
			head = head[:short]
		}
		if int64(len(head)) == it.size && crc32.ChecksumIEEE(head) != crc {
			return false
		}
		w.inspect(j, crc, head)
	} else if w.z.ix != nil {
		j.head = bytes.Clone(head[:min(len(head), InspectShort)])
	}
	j.method, j.crc, j.data, j.pooled, j.csize = method, crc, data, nil, int64(len(data))
	w.z.bytesRead.Add(it.size)
	w.hashed(j, it.sum)
	return true
}

// hashed tells Options.Hashed a regular file's SHA-256, and keeps it for the
// Index.
func (w *worker) hashed(j *job, sum []byte) {
	if j.it.kind != kindFile {
		return
	}
	j.sum = sum
	if fn := w.z.opt.Hashed; fn != nil {
		fn(j.it.name, sum)
	}
}

// inflateHead returns the first n bytes that deflate data decompresses to.
func (w *worker) inflateHead(data []byte, n int64) ([]byte, bool) {
	if w.fr == nil {
		w.fr = flate.NewReader(bytes.NewReader(data))
	} else if w.fr.(flate.Resetter).Reset(bytes.NewReader(data), nil) != nil {
		return nil, false
	}
	if int64(cap(w.head)) < n {
		w.head = make([]byte, n, InspectHead)
	}
	head := w.head[:n]
	if _, err := io.ReadFull(w.fr, head); err != nil {
		return nil, false
	}
	return head, true
}

// fromFile takes a large entry from a FileReuse store: the blob, once its
// checksum holds, becomes the entry's spill, copied by the writer. head is the
// file's first bytes for Inspect, or nil to use the blob's (see known).
func (w *worker) fromFile(j *job, key string, head []byte) bool {
	fr, ok := w.z.opt.Reuse.(FileReuse)
	if !ok {
		return false
	}
	f, ok := fr.OpenBlob(key)
	if !ok {
		return false
	}
	method, crc, bhead, off, n, ok := w.checkBlobFile(f, j.it.size)
	if !ok || method != methodDeflate {
		f.Close()
		return false
	}
	if head == nil {
		if int64(len(bhead)) < min(j.it.size, InspectShort) && w.z.opt.Inspect != nil {
			f.Close()
			return false
		}
		head = bhead
	}
	w.inspect(j, crc, head)
	j.method, j.crc, j.csize = methodDeflate, crc, n
	j.spill = &spill{f: f, off: off, n: n, kept: true}
	w.z.bytesRead.Add(j.it.size)
	return true
}

// checkBlobFile reads a blob file's header and checks its whole checksum; it
// returns where the data starts and how long it is.
func (w *worker) checkBlobFile(f *os.File, usize int64) (method uint16, crc uint32, head []byte, off, n int64, ok bool) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() < blobHeader+4 {
		return 0, 0, nil, 0, 0, false
	}
	var hdr [blobHeader + InspectShort]byte
	k, _ := f.ReadAt(hdr[:], 0)
	if k < blobHeader || string(hdr[:4]) != blobMagic {
		return 0, 0, nil, 0, 0, false
	}
	method = binary.LittleEndian.Uint16(hdr[4:])
	crc = binary.LittleEndian.Uint32(hdr[6:])
	hl := int64(hdr[26])
	n = int64(binary.LittleEndian.Uint64(hdr[18:]))
	off = blobHeader + hl
	if hl > InspectShort || int64(k) < off || binary.LittleEndian.Uint64(hdr[10:]) != uint64(usize) ||
		n <= 0 || n >= usize || off+n+4 != st.Size() {
		return 0, 0, nil, 0, 0, false
	}
	sum := crc32.NewIEEE()
	if m, err := io.CopyBuffer(sum, io.NewSectionReader(f, 0, off+n), w.chunk); err != nil || m != off+n {
		return 0, 0, nil, 0, 0, false
	}
	var tail [4]byte
	if _, err := f.ReadAt(tail[:], off+n); err != nil || binary.LittleEndian.Uint32(tail[:]) != sum.Sum32() {
		return 0, 0, nil, 0, 0, false
	}
	return method, crc, append([]byte(nil), hdr[blobHeader:off]...), off, n, true
}

// putFile stores a large entry's spilled compressed form as a blob file.
func (w *worker) putFile(fr FileReuse, key string, j *job, head []byte) {
	head = head[:min(len(head), InspectShort)]
	hdr := encodeBlob(j.method, j.crc, j.it.size, head, nil)
	hdr = hdr[:len(hdr)-4] // the checksum goes after the data
	binary.LittleEndian.PutUint64(hdr[18:], uint64(j.spill.n))
	if _, err := j.spill.f.Seek(j.spill.off, io.SeekStart); err != nil {
		return
	}
	sum := crc32.NewIEEE()
	sum.Write(hdr)
	body := io.TeeReader(io.LimitReader(j.spill.f, j.spill.n), sum)
	fr.PutBlob(key, io.MultiReader(bytes.NewReader(hdr), body, &tailReader{sum: sum}))
}

// tailReader yields the 4-byte checksum of what came before it, once.
type tailReader struct {
	sum  hash.Hash32
	b    []byte
	done bool
}

func (t *tailReader) Read(p []byte) (int, error) {
	if !t.done {
		t.b, t.done = binary.LittleEndian.AppendUint32(nil, t.sum.Sum32()), true
	}
	if len(t.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, t.b)
	t.b = t.b[n:]
	return n, nil
}
