package zipper

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strconv"
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

// blob layout: magic, method, CRC-32 and uncompressed size of the entry, the
// length of the data, the data (none for a stored entry: only the decision
// and the CRC are kept), then the CRC-32 of everything before it, which
// catches a blob torn by a crash.
const (
	blobMagic  = "LPZ1"
	blobHeader = 4 + 2 + 4 + 8 + 8
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

func encodeBlob(method uint16, crc uint32, usize int64, data []byte) []byte {
	b := make([]byte, blobHeader, blobHeader+len(data)+4)
	copy(b, blobMagic)
	binary.LittleEndian.PutUint16(b[4:], method)
	binary.LittleEndian.PutUint32(b[6:], crc)
	binary.LittleEndian.PutUint64(b[10:], uint64(usize))
	binary.LittleEndian.PutUint64(b[18:], uint64(len(data)))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// decodeBlob returns a blob's fields if it is whole and describes an entry of
// usize bytes; data is nil for a stored entry.
func decodeBlob(b []byte, usize int64) (method uint16, crc uint32, data []byte, ok bool) {
	if len(b) < blobHeader+4 || string(b[:4]) != blobMagic {
		return 0, 0, nil, false
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return 0, 0, nil, false
	}
	method = binary.LittleEndian.Uint16(b[4:])
	crc = binary.LittleEndian.Uint32(b[6:])
	if binary.LittleEndian.Uint64(b[10:]) != uint64(usize) || binary.LittleEndian.Uint64(b[18:]) != uint64(len(body)-blobHeader) {
		return 0, 0, nil, false
	}
	data = body[blobHeader:]
	switch {
	case method == methodStore && len(data) == 0:
		return method, crc, nil, true
	case method == methodDeflate && len(data) > 0 && int64(len(data)) < usize:
		return method, crc, data, true
	}
	return 0, 0, nil, false
}

// smallReused is inMemory for a file whose compressed form may be in the
// Reuse store; what it compresses goes there.
func (w *worker) smallReused(j *job, in []byte) {
	sum := sha256.Sum256(in)
	key := w.z.reuseKey(sum[:])
	if b, ok := w.z.opt.Reuse.Get(key); ok {
		if method, crc, data, ok := decodeBlob(b, j.it.size); ok {
			w.inspect(j.it, crc, in)
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
	w.inMemory(j, in, in)
	w.put(key, j, j.data)
}

func (w *worker) put(key string, j *job, deflated []byte) {
	if j.method == methodStore {
		deflated = nil
	}
	w.z.opt.Reuse.Put(key, encodeBlob(j.method, j.crc, j.it.size, deflated))
}

// largeReused is large for a file whose compressed form may be in the Reuse
// store. The file is hashed first; on a miss it is compressed from a second
// read, hashed again, and stored only when both reads agree.
func (w *worker) largeReused(ctx context.Context, j *job) error {
	sum, err := w.hashFile(ctx, j.it)
	if err != nil {
		return err
	}
	key := w.z.reuseKey(sum)
	if b, ok := w.z.opt.Reuse.Get(key); ok {
		method, crc, data, ok := decodeBlob(b, j.it.size)
		if ok && (method == methodStore || len(data) <= w.z.lim.spillMem) {
			w.inspect(j.it, crc, w.head)
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
	case j.spill != nil && j.spill.f == nil:
		w.put(key, j, j.spill.buf)
	case j.reread:
		w.put(key, j, nil)
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
