package atomicfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackEvery is how much a Writeback lets pile up before it starts the
// kernel writing it out.
const writebackEvery = 4 << 20

// Writeback writes to f and starts the kernel writing each few MiB to disk as
// it goes (sync_file_range, without waiting), so the Sync that makes f durable
// before its rename waits for the last part only, not for all of it.
type Writeback struct {
	f          *os.File
	n, started int64
}

// NewWriteback returns a Writeback of f, which must be empty.
func NewWriteback(f *os.File) *Writeback { return &Writeback{f: f} }

func (w *Writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	if w.n-w.started >= writebackEvery {
		// Best effort: a file system without it just syncs it all at the end.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.started, w.n-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.n
	}
	return n, err
}
