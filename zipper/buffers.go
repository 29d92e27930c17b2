package zipper

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"
)

// Buffers come from pools by power-of-two size class, so a long run reuses
// the same few megabytes instead of feeding the garbage collector.

const minClassBits = 12 // 4 KiB

var pools [64]sync.Pool

func classBits(n int) int {
	if n <= 1<<minClassBits {
		return minClassBits
	}
	return bits.Len(uint(n - 1))
}

// classSize is the capacity getBuf(n) returns.
func classSize(n int) int { return 1 << classBits(n) }

// getBuf returns a buffer of length 0 and capacity classSize(n).
func getBuf(n int) []byte {
	c := classBits(n)
	if p, ok := pools[c].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 1<<c)
}

func putBuf(b []byte) {
	c := bits.Len(uint(cap(b))) - 1
	if cap(b) != 1<<c || c < minClassBits {
		return // not from getBuf
	}
	b = b[:0]
	pools[c].Put(&b)
}

// budget counts the bytes of entry buffers in flight. Only the dispatcher
// acquires; anyone releases.
type budget struct {
	mu    sync.Mutex
	avail int64
	wake  chan struct{}
}

func newBudget(n int64) *budget {
	return &budget{avail: n, wake: make(chan struct{}, 1)}
}

func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.avail >= n {
			b.avail -= n
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.avail += n
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// spill holds the compressed form of a large entry: in memory while it fits
// in buf, then in an unlinked temporary file, with buf as its write buffer.
type spill struct {
	buf   []byte // pooled
	f     *os.File
	name  string // set while the file could not be unlinked (it is removed on close)
	n     int64  // bytes written
	limit int64  // writing more than this is errNoGain
	dir   string
	off   int64 // where the data starts in f (a stored blob's header precedes it)
	kept  bool  // f belongs to a Reuse store: closed, never removed
}

func (s *spill) Write(p []byte) (int, error) {
	if s.n+int64(len(p)) > s.limit {
		return 0, errNoGain
	}
	written := len(p)
	for len(p) > 0 {
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return 0, err
			}
		}
		k := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		s.n += int64(k)
	}
	return written, nil
}

func (s *spill) flush() error {
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "zipper-spill-*")
		if err != nil {
			return err
		}
		s.f = f
		if os.Remove(f.Name()) != nil {
			s.name = f.Name() // some systems cannot unlink an open file
		}
	}
	_, err := s.f.Write(s.buf)
	s.buf = s.buf[:0]
	return err
}

// finish moves what buf holds to the file, if there is one.
func (s *spill) finish() error {
	if s.f == nil || len(s.buf) == 0 {
		return nil
	}
	return s.flush()
}

func (s *spill) writeTo(ctx context.Context, w io.Writer) error {
	if s.f == nil {
		if _, err := w.Write(s.buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return nil
	}
	if _, err := s.f.Seek(s.off, io.SeekStart); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	src := &ctxReader{ctx: ctx, r: s.f}
	n, err := io.Copy(w, io.LimitReader(src, s.n))
	switch {
	case src.err != nil:
		return fmt.Errorf("spill: %w", src.err)
	case err != nil:
		return fmt.Errorf("write: %w", err)
	case n != s.n:
		return fmt.Errorf("spill: read %d of %d bytes", n, s.n)
	}
	return nil
}

func (s *spill) close() {
	if s.f != nil {
		s.f.Close()
		if s.name != "" && !s.kept {
			os.Remove(s.name)
		}
		s.f = nil
	}
	if s.buf != nil {
		putBuf(s.buf)
		s.buf = nil
	}
}
