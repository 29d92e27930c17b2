package zipper

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"
)

// ErrChanged is wrapped by the error Write returns when a file yields more or
// fewer bytes than its Size, or different bytes on a second read.
var ErrChanged = errors.New("file changed while zipping")

// limits size the pipeline (see the package doc). Tests shrink them to reach
// every path with small inputs; none of them changes the output bytes.
type limits struct {
	small     int64  // files up to this size are read whole into memory
	budget    int64  // bytes of entry buffers between reading and writing
	spillMem  int    // in-memory part of a large entry's compressed output
	chunk     int    // read size for large entries, per worker
	lookahead int    // entries dispatched ahead of the one being written
	spillDir  string // "" is os.TempDir()
	reuseMin  int64  // smaller files are compressed again rather than looked up in Reuse
}

var defaultLimits = limits{
	small:     1 << 20,
	budget:    64 << 20,
	spillMem:  4 << 20,
	chunk:     256 << 10,
	lookahead: 1024,
	// A lookup and a store cost a file each; below this deflate is cheaper. In a
	// node_modules tree 84% of the files are under 4 KiB but only 6% of the bytes.
	reuseMin: 4 << 10,
}

// Write writes a zip archive of entries to w. See the package doc for the
// rules it follows. On error, what was written to w is not a valid archive.
func Write(ctx context.Context, w io.Writer, entries []Entry, opt Options) (Stats, error) {
	return write(ctx, w, entries, opt, defaultLimits)
}

// WriteFile writes the archive to a temporary file in path's folder, syncs it
// and renames it to path (mode 0644), so path is either absent, left as it
// was, or complete. The temporary file is removed on error or cancellation.
func WriteFile(ctx context.Context, path string, entries []Entry, opt Options) (Stats, error) {
	lim := defaultLimits
	lim.spillDir = filepath.Dir(path)
	return writeFile(ctx, path, entries, opt, lim)
}

func writeFile(ctx context.Context, path string, entries []Entry, opt Options, lim limits) (st Stats, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return Stats{}, fmt.Errorf("zipper: create: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if st, err = write(ctx, f, entries, opt, lim); err != nil {
		return Stats{}, err
	}
	if err = f.Chmod(0o644); err != nil {
		return Stats{}, fmt.Errorf("zipper: chmod: %w", err)
	}
	if err = f.Sync(); err != nil {
		return Stats{}, fmt.Errorf("zipper: sync: %w", err)
	}
	if err = f.Close(); err != nil {
		return Stats{}, fmt.Errorf("zipper: close: %w", err)
	}
	if err = context.Cause(ctx); err != nil {
		return Stats{}, fmt.Errorf("zipper: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return Stats{}, fmt.Errorf("zipper: rename: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable; best effort
		d.Sync()
		d.Close()
	}
	return st, nil
}

// job is one item on its way from a worker to the writer.
type job struct {
	index    int
	it       *item
	compress bool
	cost     int64 // budget still held
	done     chan struct{}

	// Set by the worker before done is closed.
	finished bool
	err      error
	method   uint16
	crc      uint32
	csize    int64
	data     []byte   // content to write, when held in memory
	pooled   []byte   // buffer behind data, to return to the pool
	spill    *spill   // compressed content of a large entry
	reread   bool     // stored large file: the writer copies it from Open again
	prev     *indexed // large entry whose data the writer copies from Options.Previous
	sum      []byte   // the content's SHA-256, when known (for the Index)
	head     []byte   // the content's first InspectShort bytes (for the Index)
}

type zw struct {
	opt    checked
	lim    limits
	items  []item
	budget *budget

	salt   string    // reuseSalt, when Options.Reuse is set
	prev   *Previous // Options.Previous, when made at this level by this encoder
	ix     *indexer  // when Options.Index is set
	sums   bool      // hash what is compressed: Reuse, prev or ix wants it
	lookup bool      // a large file is hashed before it is compressed: Reuse or prev may have it

	failedAt  atomic.Int64 // lowest index of a job that failed; later ones are skipped
	bytesRead atomic.Int64 // for Progress
	filesDone atomic.Int64 // for Progress
	copied    atomic.Int64 // entries whose data came from prev
}

var errSkipped = errors.New("zipper: skipped after an earlier error")

func write(ctx context.Context, out io.Writer, entries []Entry, opt Options, lim limits) (Stats, error) {
	o, err := opt.check()
	if err != nil {
		return Stats{}, err
	}
	items, err := plan(entries, o.Store)
	if err != nil {
		return Stats{}, err
	}
	if err := context.Cause(ctx); err != nil {
		return Stats{}, fmt.Errorf("zipper: %w", err)
	}
	z := &zw{opt: o, lim: lim, items: items, budget: newBudget(lim.budget)}
	z.failedAt.Store(math.MaxInt64)
	if o.Reuse != nil {
		z.salt = reuseSalt(o.Level)
	}
	if p := o.Previous; p != nil && p.idx.salt == saltSum(o.Level) {
		z.prev = p
	}
	if o.Index {
		z.ix = newIndexer(o.Level, len(items))
	}
	z.sums = o.Reuse != nil || z.prev != nil || z.ix != nil
	z.lookup = o.Reuse != nil || z.prev != nil

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	order := make(chan *job, lim.lookahead)
	work := make(chan *job, o.Workers)
	var wg sync.WaitGroup
	wg.Go(func() { z.dispatch(ctx, order, work) })
	for range o.Workers {
		wg.Go(func() { z.work(ctx, work) })
	}
	stopProgress := z.progress()

	var current *job // taken from order by the writer, not yet released
	st, err := z.writeAll(ctx, out, order, &current)

	cancel()
	wg.Wait()
	stopProgress(err == nil)
	if err != nil {
		// Free what the workers produced for entries never written.
		if current != nil && current.finished {
			z.release(current)
		}
		for j := range order {
			if j.finished {
				z.release(j)
			}
		}
		return Stats{}, err
	}
	return st, nil
}

// dispatch hands the items, in archive order, to the workers and to the
// writer. Budget is taken here, in order, so the entries holding it are always
// the next ones the writer needs: the writer can always make progress.
func (z *zw) dispatch(ctx context.Context, order, work chan<- *job) {
	defer close(work)
	defer close(order)
	for i := range z.items {
		if int64(i) > z.failedAt.Load() {
			return
		}
		j := z.newJob(i)
		if j.cost > 0 && z.budget.acquire(ctx, j.cost) != nil {
			return
		}
		if j.it.kind == kindDir {
			j.finished = true
			close(j.done)
		}
		select {
		case order <- j:
		case <-ctx.Done():
			return
		}
		if j.it.kind == kindDir {
			continue
		}
		select {
		case work <- j:
		case <-ctx.Done():
			return
		}
	}
}

func (z *zw) newJob(i int) *job {
	it := &z.items[i]
	j := &job{index: i, it: it, done: make(chan struct{})}
	j.compress = z.opt.Level > 0 && !it.store && it.size > 0
	switch {
	case it.kind == kindDir:
	case it.kind == kindLink:
		if j.compress {
			j.cost = int64(classSize(int(it.size)))
		}
	case it.size <= z.lim.small:
		if it.size > 0 {
			j.cost = int64(classSize(int(it.size)))
			if j.compress {
				j.cost *= 2
			}
		}
	case j.compress:
		j.cost = int64(classSize(z.lim.spillMem))
	}
	j.cost = min(j.cost, z.lim.budget)
	return j
}

func (z *zw) work(ctx context.Context, jobs <-chan *job) {
	w := &worker{z: z, chunk: make([]byte, z.lim.chunk)}
	for j := range jobs {
		switch {
		case ctx.Err() != nil:
			j.err = fmt.Errorf("zipper: %w", context.Cause(ctx))
		case int64(j.index) > z.failedAt.Load():
			j.err = errSkipped
		default:
			j.err = w.do(ctx, j)
		}
		if j.err != nil {
			for {
				f := z.failedAt.Load()
				if int64(j.index) >= f || z.failedAt.CompareAndSwap(f, int64(j.index)) {
					break
				}
			}
		}
		j.finished = true
		close(j.done)
	}
}

// release returns a job's buffers, temp file and budget.
func (z *zw) release(j *job) {
	if j.pooled != nil {
		putBuf(j.pooled)
		j.pooled, j.data = nil, nil
	}
	if j.spill != nil {
		j.spill.close()
		j.spill = nil
	}
	z.budget.release(j.cost)
	j.cost = 0
}

// drop gives back n bytes of j's budget early (no more than it holds).
func (z *zw) drop(j *job, n int64) {
	n = min(n, j.cost)
	j.cost -= n
	z.budget.release(n)
}

type worker struct {
	z     *zw
	fw    *flate.Writer
	chunk []byte
	sha   hash.Hash     // when set, large hashes what it reads into it
	head  []byte        // the first bytes of a large file, for Options.Inspect
	fr    io.ReadCloser // inflater of known, reset for each entry

	win    []byte // a window on Options.Previous (readPrev)
	winOff int64
}

// inspect tells Options.Inspect about a regular file, and keeps its first
// bytes for the Index.
func (w *worker) inspect(j *job, crc uint32, head []byte) {
	it := j.it
	if it.kind != kindFile {
		return
	}
	if w.z.ix != nil {
		j.head = bytes.Clone(head[:min(len(head), InspectShort)])
	}
	if fn := w.z.opt.Inspect; fn != nil {
		fn(it.name, it.size, crc, head[:min(len(head), InspectHead)])
	}
}

// keepHead collects the first InspectHead bytes a large file's read yields.
func (w *worker) keepHead(p []byte) {
	if (w.z.opt.Inspect != nil || w.z.ix != nil) && len(w.head) < InspectHead {
		w.head = append(w.head, p[:min(len(p), InspectHead-len(w.head))]...)
	}
}

func (w *worker) do(ctx context.Context, j *job) error {
	it := j.it
	switch {
	case it.kind == kindLink:
		w.inMemory(j, []byte(it.link), nil)
		w.z.bytesRead.Add(it.size)
		return nil
	case w.z.prev != nil && len(it.sum) == 32 && w.fromPrevious(j, it.sum, nil, false):
		return nil
	case j.compress && w.z.opt.Reuse != nil && len(it.sum) == 32 && w.known(j):
		return nil
	case it.size <= w.z.lim.small:
		return w.small(j)
	case j.compress && w.z.lookup:
		return w.largeReused(ctx, j)
	case w.z.sums:
		// Only the Index wants the hash: one read does both.
		w.sha = sha256.New()
		defer func() { w.sha = nil }()
		if err := w.large(ctx, j); err != nil {
			return err
		}
		w.hashed(j, w.sha.Sum(nil))
		return nil
	}
	return w.large(ctx, j)
}

// small reads a file whole into a pooled buffer and compresses it into
// another one.
func (w *worker) small(j *job) error {
	it := j.it
	var in []byte
	if it.size > 0 {
		in = getBuf(int(it.size))[:it.size]
	}
	if err := readExactly(it, in); err != nil {
		if in != nil {
			putBuf(in)
		}
		return err
	}
	w.z.bytesRead.Add(it.size)
	if j.compress && w.z.sums {
		sum := sha256.Sum256(in)
		w.hashed(j, sum[:])
		if w.z.prev != nil && w.fromPrevious(j, sum[:], in, true) {
			if in != nil {
				putBuf(in)
				w.z.drop(j, int64(cap(in)))
			}
			return nil
		}
		if sr, ok := w.z.opt.Reuse.(SmallReuse); ok {
			w.smallReused(j, in, sum[:], sr)
			return nil
		}
		if w.z.opt.Reuse != nil && it.size >= w.z.lim.reuseMin {
			w.smallReused(j, in, sum[:], nil)
			return nil
		}
	}
	w.inMemory(j, in, in)
	return nil
}

// readExactly fills buf from the entry and checks that nothing follows.
func readExactly(it *item, buf []byte) error {
	if it.open == nil {
		return nil
	}
	rc, err := it.open()
	if err != nil {
		return fmt.Errorf("zipper: entry %q: open: %w", it.name, err)
	}
	var n int
	if x, ok := rc.(ExactReader); ok {
		var more bool
		n, more, err = x.ReadExact(buf)
		switch {
		case err != nil:
		case more:
			err = fmt.Errorf("zipper: entry %q: %w: more than %d bytes", it.name, ErrChanged, it.size)
		case n < len(buf):
			err = io.ErrUnexpectedEOF
		}
	} else if n, err = io.ReadFull(rc, buf); err == nil {
		var one [1]byte
		var k int
		k, err = io.ReadFull(rc, one[:])
		n += k
		switch err {
		case io.EOF:
			err = nil
		case nil:
			err = fmt.Errorf("zipper: entry %q: %w: more than %d bytes", it.name, ErrChanged, it.size)
		}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = fmt.Errorf("zipper: entry %q: %w: read %d of %d bytes", it.name, ErrChanged, n, it.size)
	}
	if err != nil && !errors.Is(err, ErrChanged) {
		err = fmt.Errorf("zipper: entry %q: read: %w", it.name, err)
	}
	if cerr := rc.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("zipper: entry %q: close: %w", it.name, cerr)
	}
	return err
}

// inMemory sets j to write in (whose pooled buffer is pooled, or nil),
// deflated when that makes it smaller.
func (w *worker) inMemory(j *job, in, pooled []byte) {
	j.crc = crc32.ChecksumIEEE(in)
	w.inspect(j, j.crc, in)
	j.method, j.data, j.pooled, j.csize = methodStore, in, pooled, int64(len(in))
	if !j.compress {
		return
	}
	out, ok := w.deflate(in)
	if !ok {
		w.z.drop(j, int64(classSize(len(in))))
		return
	}
	if pooled != nil {
		putBuf(pooled)
		w.z.drop(j, int64(cap(pooled)))
	}
	j.method, j.data, j.pooled, j.csize = methodDeflate, out, out, int64(len(out))
}

// deflate compresses in into a pooled buffer, or reports false (and keeps no
// buffer) when the result would not be smaller than in.
func (w *worker) deflate(in []byte) ([]byte, bool) {
	cw := &capWriter{b: getBuf(len(in))[:0], limit: len(in) - 1}
	fw := w.flate(cw)
	_, err := fw.Write(in)
	if err == nil {
		err = fw.Close()
	}
	if err != nil { // only errNoGain: capWriter is the only writer
		putBuf(cw.b)
		return nil, false
	}
	return cw.b, true
}

func (w *worker) flate(dst io.Writer) *flate.Writer {
	if w.fw == nil {
		fw, err := flate.NewWriter(dst, w.z.opt.Level)
		if err != nil {
			panic(err) // Level was checked to be 1-9
		}
		w.fw = fw
		return fw
	}
	w.fw.Reset(dst)
	return w.fw
}

// large streams a file: its CRC, and its compressed form into a spill.
func (w *worker) large(ctx context.Context, j *job) (err error) {
	it := j.it
	rc, err := it.open()
	if err != nil {
		return fmt.Errorf("zipper: entry %q: open: %w", it.name, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("zipper: entry %q: close: %w", it.name, cerr)
		}
	}()
	var sp *spill
	defer func() {
		if err != nil && sp != nil {
			sp.close()
		}
	}()
	var fw *flate.Writer
	if j.compress {
		sp = &spill{buf: getBuf(w.z.lim.spillMem)[:0], limit: it.size - 1, dir: w.z.lim.spillDir}
		fw = w.flate(sp)
	}
	// giveUp drops the compressed copy: the file will be stored.
	giveUp := func() {
		sp.close()
		sp = nil
		w.z.drop(j, j.cost)
	}
	h := crc32.NewIEEE()
	w.head = w.head[:0]
	var n int64
	for {
		if err := context.Cause(ctx); err != nil {
			return fmt.Errorf("zipper: %w", err)
		}
		k, rerr := rc.Read(w.chunk)
		if k > 0 {
			n += int64(k)
			if n > it.size {
				return fmt.Errorf("zipper: entry %q: %w: more than %d bytes", it.name, ErrChanged, it.size)
			}
			h.Write(w.chunk[:k])
			w.keepHead(w.chunk[:k])
			if w.sha != nil {
				w.sha.Write(w.chunk[:k])
			}
			if sp != nil {
				if _, err := fw.Write(w.chunk[:k]); errors.Is(err, errNoGain) {
					giveUp()
				} else if err != nil {
					return fmt.Errorf("zipper: entry %q: spill: %w", it.name, err)
				}
			}
			w.z.bytesRead.Add(int64(k))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("zipper: entry %q: read: %w", it.name, rerr)
		}
	}
	if n != it.size {
		return fmt.Errorf("zipper: entry %q: %w: read %d of %d bytes", it.name, ErrChanged, n, it.size)
	}
	j.crc = h.Sum32()
	w.inspect(j, j.crc, w.head)
	if sp != nil {
		err := fw.Close()
		if err == nil {
			err = sp.finish()
		}
		switch {
		case errors.Is(err, errNoGain):
			giveUp()
		case err != nil:
			return fmt.Errorf("zipper: entry %q: spill: %w", it.name, err)
		default:
			j.method, j.spill, j.csize = methodDeflate, sp, sp.n
			return nil
		}
	}
	j.method, j.reread, j.csize = methodStore, true, it.size
	return nil
}

// writeAll is the writer: it takes jobs in archive order, waits for each,
// writes it, and finishes with the central directory.
func (z *zw) writeAll(ctx context.Context, out io.Writer, order <-chan *job, current **job) (Stats, error) {
	bw := bufio.NewWriterSize(out, 1<<20)
	cw := &countWriter{w: bw}
	recs := make([]record, 0, len(z.items))
	var st Stats
	var hdr []byte
	dw := &crcWriter{w: cw} // the data's CRC-32C, for the Index
	for j := range order {
		*current = j
		select {
		case <-j.done:
		case <-ctx.Done():
			return Stats{}, fmt.Errorf("zipper: %w", context.Cause(ctx))
		}
		if j.err != nil {
			return Stats{}, j.err
		}
		it := j.it
		r := record{
			name:   it.name,
			method: j.method,
			crc:    j.crc,
			usize:  uint64(it.size),
			csize:  uint64(j.csize),
			offset: uint64(cw.n),
			attrs:  it.attrs,
		}
		if !isASCII(it.name) {
			r.flags |= flagUTF8
		}
		hdr = appendLocal(hdr[:0], &r, z.opt.dos)
		if _, err := cw.Write(hdr); err != nil {
			return Stats{}, fmt.Errorf("zipper: entry %q: write: %w", it.name, err)
		}
		dataOff := cw.n
		dw.sum = 0
		if err := z.writeData(ctx, dw, j); err != nil {
			return Stats{}, err
		}
		z.ix.add(j, dataOff, dw.sum)
		recs = append(recs, r)
		switch it.kind {
		case kindDir:
			st.Dirs++
		case kindLink:
			st.Symlinks++
		default:
			st.Files++
		}
		if it.kind != kindDir {
			if r.method == methodStore {
				st.Stored++
			}
			st.UnzippedSize += it.size
			z.filesDone.Add(1)
		}
		z.release(j)
		*current = nil
	}
	if err := context.Cause(ctx); err != nil {
		return Stats{}, fmt.Errorf("zipper: %w", err)
	}
	if len(recs) != len(z.items) { // the dispatcher stopped early
		return Stats{}, errors.New("zipper: internal error: entries missing")
	}

	cdOffset := cw.n
	for i := range recs {
		hdr = appendCentral(hdr[:0], &recs[i], z.opt.dos)
		if _, err := cw.Write(hdr); err != nil {
			return Stats{}, fmt.Errorf("zipper: write central directory: %w", err)
		}
	}
	hdr = appendEnd(hdr[:0], uint64(len(recs)), uint64(cdOffset), uint64(cw.n-cdOffset))
	if _, err := cw.Write(hdr); err != nil {
		return Stats{}, fmt.Errorf("zipper: write end of central directory: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return Stats{}, fmt.Errorf("zipper: write: %w", err)
	}
	st.Entries = len(recs)
	st.ZippedSize = cw.n
	st.Copied = int(z.copied.Load())
	st.Index = z.ix.finish(cw.n)
	return st, nil
}

func (z *zw) writeData(ctx context.Context, w io.Writer, j *job) error {
	it := j.it
	switch {
	case j.prev != nil:
		return z.copyPrev(w, j)
	case j.spill != nil:
		if err := j.spill.writeTo(ctx, w); err != nil {
			return fmt.Errorf("zipper: entry %q: %w", it.name, err)
		}
	case j.reread:
		return copyStored(ctx, w, it, j.crc)
	case len(j.data) > 0:
		if _, err := w.Write(j.data); err != nil {
			return fmt.Errorf("zipper: entry %q: write: %w", it.name, err)
		}
	}
	return nil
}

// copyStored copies a large stored file from a second Open, checking that
// it is still the file whose CRC went into the header.
func copyStored(ctx context.Context, w io.Writer, it *item, crc uint32) (err error) {
	rc, err := it.open()
	if err != nil {
		return fmt.Errorf("zipper: entry %q: open: %w", it.name, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("zipper: entry %q: close: %w", it.name, cerr)
		}
	}()
	h := crc32.NewIEEE()
	src := &ctxReader{ctx: ctx, r: rc}
	n, err := io.Copy(w, io.TeeReader(io.LimitReader(src, it.size+1), h))
	if err != nil {
		if src.err != nil {
			return fmt.Errorf("zipper: entry %q: read: %w", it.name, err)
		}
		return fmt.Errorf("zipper: entry %q: write: %w", it.name, err)
	}
	if n != it.size || h.Sum32() != crc {
		return fmt.Errorf("zipper: entry %q: %w: second read differs from the first", it.name, ErrChanged)
	}
	return nil
}

// progress starts the Progress goroutine, if any, and returns its stop
// function, which waits for it to end (after a final call if told to).
func (z *zw) progress() func(final bool) {
	fn := z.opt.Progress
	if fn == nil {
		return func(bool) {}
	}
	var p Progress
	for i := range z.items {
		if z.items[i].kind != kindDir {
			p.TotalFiles++
			p.TotalBytes += z.items[i].size
		}
	}
	snap := func() Progress {
		p.Files = int(z.filesDone.Load())
		p.Bytes = z.bytesRead.Load()
		return p
	}
	stop := make(chan bool)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn(snap())
			case final := <-stop:
				if final {
					fn(snap())
				}
				return
			}
		}
	}()
	return func(final bool) {
		stop <- final
		<-done
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxReader stops a long copy when ctx is done; err records a read failure
// (as opposed to a write failure) for the error message.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// errNoGain stops a compression whose output has reached the size of its
// input: the entry is stored instead.
var errNoGain = errors.New("zipper: deflate does not shrink this entry")

// capWriter collects compressed output up to limit bytes.
type capWriter struct {
	b     []byte
	limit int
}

func (c *capWriter) Write(p []byte) (int, error) {
	if len(c.b)+len(p) > c.limit {
		return 0, errNoGain
	}
	c.b = append(c.b, p...)
	return len(p), nil
}
