// Package zipfile reads zip files through large windows. archive/zip reads the
// central directory in 4 KiB pieces and each entry's local header with a read of
// its own: on a layer of 20,000 entries, tens of thousands of system calls for a
// few megabytes. A Window serves those reads from one buffer, refilled in reads
// that grow while the access is sequential.
package zipfile

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

const (
	// minWindow is the first read after a jump: a local header and its name,
	// without reading much of an entry whose data is skipped.
	minWindow = 4 << 10
	// MaxWindow bounds the buffer; longer reads go to the file directly.
	MaxWindow = 1 << 20
)

// Window is an io.ReaderAt over the first size bytes of r that keeps the last
// bytes read in a buffer of at most MaxWindow bytes. A read the buffer does not
// hold refills it from the read's offset, twice as much as the last time when
// it continues where the buffer ended, minWindow bytes when it jumps. It is safe
// for concurrent use; r must not change while it is used.
type Window struct {
	mu   sync.Mutex
	r    io.ReaderAt
	size int64
	buf  []byte // the bytes at off
	off  int64
	next int // how much the next sequential refill reads
}

// NewWindow returns a Window over the size bytes of r.
func NewWindow(r io.ReaderAt, size int64) *Window {
	return &Window{r: r, size: size, next: minWindow}
}

var errOffset = errors.New("zipfile: negative offset")

// ReadAt reads len(p) bytes at off, with io.EOF when fewer are there.
func (w *Window) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errOffset
	}
	if len(p) == 0 {
		return 0, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for n < len(p) {
		if off >= w.size {
			return n, io.EOF
		}
		if off >= w.off && off < w.off+int64(len(w.buf)) {
			c := copy(p[n:], w.buf[off-w.off:])
			n += c
			off += int64(c)
			continue
		}
		if len(p)-n >= MaxWindow {
			m, err := w.r.ReadAt(p[n:min(int64(len(p)), int64(n)+w.size-off)], off)
			n += m
			if err == nil && n < len(p) {
				err = io.EOF
			}
			return n, err
		}
		if err := w.fill(off, len(p)-n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// fill makes the buffer hold the bytes from off, at least want of them unless
// the file ends first.
func (w *Window) fill(off int64, want int) error {
	end := w.off + int64(len(w.buf))
	if len(w.buf) > 0 && off >= end && off-end <= int64(len(w.buf)) {
		w.next = min(2*w.next, MaxWindow)
	} else {
		w.next = minWindow
	}
	n := int64(max(w.next, want))
	n = min(n, w.size-off)
	if w.buf == nil {
		w.buf = make([]byte, 0, min(w.size, MaxWindow))
	}
	w.buf = w.buf[:n]
	m, err := w.r.ReadAt(w.buf, off)
	w.buf, w.off = w.buf[:m], off
	if m > 0 {
		return nil // what was read is served; a later read meets the error again
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// File is a zip file opened for reading through a Window.
type File struct {
	Reader *zip.Reader
	Size   int64 // the file's size in bytes
	win    *Window
	f      *os.File
}

// Open opens the zip file at path and reads its central directory.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	zf, err := OpenFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return zf, nil
}

// OpenFile reads the central directory of the zip open as f. The File owns f:
// its Close closes f.
func OpenFile(f *os.File) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	win := NewWindow(f, st.Size())
	zr, err := zip.NewReader(win, st.Size())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", f.Name(), err)
	}
	return &File{Reader: zr, Size: st.Size(), win: win, f: f}, nil
}

// ReadAt reads the file through its window.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.win.ReadAt(p, off) }

// Close closes the file; Reader must not be used after.
func (f *File) Close() error { return f.f.Close() }
