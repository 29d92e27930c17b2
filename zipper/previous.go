package zipper

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// An Index lists the file entries of an archive Write made (Options.Index):
// for each, the SHA-256 of its content and where its data lies. Given back
// with that archive as Options.Previous, it lets the next Write copy the data
// of every unchanged file straight from the old archive: no file read, no
// blob looked up, nothing compressed. Each entry's data carries a CRC-32C, so
// a damaged old archive costs a compression, never a wrong entry.
type Index struct {
	salt  [32]byte // what besides the content decided the data (reuseSalt)
	size  int64    // the archive's size
	files []indexed
	bySum map[[32]byte]int32
}

type indexed struct {
	sum      [32]byte
	off      int64 // of the data, after the local header
	csize    int64
	usize    int64
	crc      uint32 // CRC-32 of the content, as in the header
	dcrc     uint32 // CRC-32C of the data as it is in the archive
	method   uint16
	compress bool   // deflate was tried (not Options.Store, level > 0)
	head     []byte // the first InspectShort bytes of the content, or fewer if shorter
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const indexMagic = "LPX1"

// Len is the number of files the index lists.
func (x *Index) Len() int { return len(x.files) }

// MarshalBinary encodes the index: magic, salt, archive size, count, the
// entries, then a CRC-32 of everything before it.
func (x *Index) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 64+len(x.files)*(60+InspectShort))
	b = append(b, indexMagic...)
	b = append(b, x.salt[:]...)
	b = binary.AppendUvarint(b, uint64(x.size))
	b = binary.AppendUvarint(b, uint64(len(x.files)))
	for i := range x.files {
		f := &x.files[i]
		b = append(b, f.sum[:]...)
		b = binary.AppendUvarint(b, uint64(f.off))
		b = binary.AppendUvarint(b, uint64(f.csize))
		b = binary.AppendUvarint(b, uint64(f.usize))
		b = binary.LittleEndian.AppendUint32(b, f.crc)
		b = binary.LittleEndian.AppendUint32(b, f.dcrc)
		flags := byte(0)
		if f.method == methodDeflate {
			flags |= 1
		}
		if f.compress {
			flags |= 2
		}
		b = append(b, flags, byte(len(f.head)))
		b = append(b, f.head...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

var errIndex = errors.New("zipper: not an archive index, or a damaged one")

// UnmarshalBinary decodes what MarshalBinary wrote; anything torn or foreign
// is an error.
func (x *Index) UnmarshalBinary(b []byte) error {
	if len(b) < len(indexMagic)+32+4 || string(b[:len(indexMagic)]) != indexMagic ||
		crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return errIndex
	}
	r := indexReader{b: b[len(indexMagic) : len(b)-4]}
	copy(x.salt[:], r.next(32))
	x.size = int64(r.uvarint())
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b))/45 {
		return errIndex
	}
	x.files = make([]indexed, n)
	x.bySum = make(map[[32]byte]int32, n)
	for i := range x.files {
		f := &x.files[i]
		copy(f.sum[:], r.next(32))
		f.off, f.csize, f.usize = int64(r.uvarint()), int64(r.uvarint()), int64(r.uvarint())
		f.crc, f.dcrc = r.uint32(), r.uint32()
		flags := r.next(1)
		hl := r.next(1)
		if r.bad || hl[0] > InspectShort {
			return errIndex
		}
		f.method, f.compress = methodStore, flags[0]&2 != 0
		if flags[0]&1 != 0 {
			f.method = methodDeflate
		}
		f.head = r.next(int(hl[0]))
		if r.bad || f.off < 0 || f.csize < 0 || f.usize < 0 || f.off > x.size-f.csize {
			return errIndex
		}
		if _, dup := x.bySum[f.sum]; !dup {
			x.bySum[f.sum] = int32(i)
		}
	}
	if len(r.b) != 0 {
		return errIndex
	}
	return nil
}

type indexReader struct {
	b   []byte
	bad bool
}

func (r *indexReader) next(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *indexReader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b)
	if r.bad || k <= 0 || v > 1<<62 {
		r.bad = true
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *indexReader) uint32() uint32 { return binary.LittleEndian.Uint32(r.next(4)) }

// Previous is an earlier archive and its Index (Options.Previous).
type Previous struct {
	f   *os.File
	idx *Index
}

// NewPrevious pairs the archive open as f with its index. It fails when the
// index is damaged or was not made for an archive of f's size; a Previous made
// at another level or by another encoder version is accepted and not used.
func NewPrevious(f *os.File, index []byte) (*Previous, error) {
	x := new(Index)
	if err := x.UnmarshalBinary(index); err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("zipper: previous archive: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() != x.size {
		return nil, fmt.Errorf("zipper: previous archive %s is not the one indexed", f.Name())
	}
	return &Previous{f: f, idx: x}, nil
}

// saltSum is the Index.salt of archives written at level.
func saltSum(level int) [32]byte { return sha256.Sum256([]byte(reuseSalt(level))) }

// lookup returns the old entry holding content sum, when its data can stand
// for an entry of size bytes whose compression is decided by compress.
func (p *Previous) lookup(sum []byte, size int64, compress bool) (*indexed, bool) {
	if p == nil || len(sum) != sha256.Size {
		return nil, false
	}
	i, ok := p.idx.bySum[[32]byte(sum)]
	if !ok {
		return nil, false
	}
	f := &p.idx.files[i]
	// Stored data is the content itself, right for any entry that is stored;
	// deflate data only where deflate would be tried again.
	if f.usize != size || f.compress != compress && !(f.method == methodStore && !compress) {
		return nil, false
	}
	return f, true
}

// prevWindow is how much of the old archive a worker reads at once: entries
// are taken in archive order, so one read serves the next many.
const prevWindow = 1 << 20

// readPrev fills dst with the old archive's bytes at off, through the
// worker's window.
func (w *worker) readPrev(dst []byte, off int64) error {
	p := w.z.prev
	// A large entry, and one behind the window, are read on their own: content
	// found by sum is often an earlier duplicate (the same LICENSE in many
	// packages), and moving the window back for it would read the same
	// megabyte again for every duplicate.
	if len(dst) > prevWindow/2 || off < w.winOff {
		_, err := p.f.ReadAt(dst, off)
		return err
	}
	end := off + int64(len(dst))
	if off < w.winOff || end > w.winOff+int64(len(w.win)) {
		if w.win == nil {
			w.win = make([]byte, prevWindow)
		}
		k, err := p.f.ReadAt(w.win[:min(prevWindow, p.idx.size-off)], off)
		w.win, w.winOff = w.win[:k], off
		if k < len(dst) {
			w.win = w.win[:0]
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	copy(dst, w.win[off-w.winOff:])
	return nil
}

// fromPrevious takes j's data from the old archive when it holds content sum.
// head is what was read of the file (read: the file was read, up to
// InspectHead bytes of it are in head), else nil and the index's head stands
// for it. Data that fails its CRC-32C, or a file Inspect needs more of than is
// at hand, returns false: the file is handled as if there were no Previous.
func (w *worker) fromPrevious(j *job, sum, head []byte, read bool) bool {
	it := j.it
	f, ok := w.z.prev.lookup(sum, it.size, j.compress)
	if !ok {
		return false
	}
	if !read {
		head = f.head
	}
	needHead := w.z.opt.Inspect != nil && !read
	short := needHead && w.z.opt.InspectLess != nil && w.z.opt.InspectLess(it.name)
	if needHead && short && int64(len(head)) < min(it.size, InspectShort) {
		return false
	}
	// Data over the entry's budget (a large file, or one stored by name, holds
	// none) is streamed by the writer instead of held.
	if f.csize > int64(w.z.lim.spillMem) || int64(classSize(int(f.csize))) > j.cost {
		if needHead && !short {
			return false // the head would have to be inflated from a stream: read the file
		}
		if !w.checkPrevSection(f) {
			return false
		}
		w.inspect(j, f.crc, head)
		w.z.drop(j, j.cost)
		j.method, j.crc, j.csize, j.prev = f.method, f.crc, f.csize, f
		w.took(j, sum, !read)
		return true
	}
	data := getBuf(int(f.csize))[:f.csize]
	if w.readPrev(data, f.off) != nil || crc32.Checksum(data, castagnoli) != f.dcrc {
		putBuf(data)
		return false
	}
	if needHead && !short && int64(len(head)) < min(it.size, InspectHead) {
		var ok bool
		if f.method == methodStore {
			head, ok = data[:min(len(data), InspectHead)], true
		} else {
			head, ok = w.inflateHead(data, min(it.size, InspectHead))
		}
		if !ok || int64(len(head)) == it.size && crc32.ChecksumIEEE(head) != f.crc {
			putBuf(data)
			return false
		}
	}
	w.inspect(j, f.crc, head)
	j.method, j.crc, j.data, j.pooled, j.csize = f.method, f.crc, data, data, f.csize
	w.took(j, sum, !read)
	return true
}

// took counts an entry taken from the old archive.
func (w *worker) took(j *job, sum []byte, count bool) {
	w.hashed(j, sum)
	if count {
		w.z.bytesRead.Add(j.it.size)
	}
	w.z.copied.Add(1)
}

// checkPrevSection checks the CRC-32C of a large entry's data in the old
// archive; the writer copies it afterwards, checking it again.
func (w *worker) checkPrevSection(f *indexed) bool {
	h := crc32.New(castagnoli)
	n, err := io.CopyBuffer(h, io.NewSectionReader(w.z.prev.f, f.off, f.csize), w.chunk)
	return err == nil && n == f.csize && h.Sum32() == f.dcrc
}

// copyPrev writes a large entry's data from the old archive.
func (z *zw) copyPrev(w io.Writer, j *job) error {
	h := crc32.New(castagnoli)
	n, err := io.Copy(io.MultiWriter(w, h), io.NewSectionReader(z.prev.f, j.prev.off, j.prev.csize))
	if err != nil {
		return fmt.Errorf("zipper: entry %q: copying from the previous archive: %w", j.it.name, err)
	}
	if n != j.prev.csize || h.Sum32() != j.prev.dcrc {
		return fmt.Errorf("zipper: entry %q: the previous archive changed while it was read", j.it.name)
	}
	return nil
}

// indexer builds the Index of the archive being written.
type indexer struct {
	x *Index
}

func newIndexer(level int, n int) *indexer {
	return &indexer{x: &Index{salt: saltSum(level), files: make([]indexed, 0, n)}}
}

// add records a written file entry whose content hash is known; dcrc is the
// CRC-32C of its data, off where the data starts.
func (ix *indexer) add(j *job, off int64, dcrc uint32) {
	if ix == nil || len(j.sum) != sha256.Size || j.it.kind != kindFile || j.it.size == 0 {
		return
	}
	ix.x.files = append(ix.x.files, indexed{
		sum: [32]byte(j.sum), off: off, csize: j.csize, usize: j.it.size, crc: j.crc, dcrc: dcrc,
		method: j.method, compress: j.compress, head: j.head,
	})
}

func (ix *indexer) finish(size int64) *Index {
	if ix == nil {
		return nil
	}
	ix.x.size = size
	return ix.x
}

// crcWriter passes writes on and keeps their CRC-32C.
type crcWriter struct {
	w   io.Writer
	sum uint32
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.sum = crc32.Update(c.sum, castagnoli, p[:n])
	return n, err
}
