// Package files is the builder for [[layer.NAME.files]]: it copies local files and
// folders into the layer, with an optional forced mode. It never needs a container.
package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/zipper"
)

// Builder copies [[files]] entries.
type Builder struct{}

func New() Builder { return Builder{} }

func (Builder) Name() string                 { return "files" }
func (Builder) Applies(l *config.Layer) bool { return len(l.Files) > 0 }
func (Builder) Engine(*config.Layer, builders.Target) builders.EngineNeeds {
	return builders.EngineNeeds{Use: builders.NoEngine}
}

func (Builder) Inputs(l *config.Layer, _ builders.Target) ([]builders.Input, error) {
	var in []builders.Input
	for i, f := range l.Files {
		// What is packaged is what the hash covers: a src that is a symlink is
		// followed, as Build follows it (hashing the link would miss edits).
		p := f.AbsSrc
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		in = append(in, builders.Input{Name: fmt.Sprintf("files[%d]:%s", i, f.Src), Path: p})
	}
	return in, nil
}

func (Builder) Steps(l *config.Layer, _ builders.Target) []string {
	var s []string
	for _, f := range l.Files {
		dest := f.Dest
		if dest == "" {
			dest = "."
		}
		line := fmt.Sprintf("copy %s -> %s", f.Src, dest)
		if f.Mode != "" {
			line += " (mode " + f.Mode + ")"
		}
		s = append(s, line)
	}
	return s
}

func (Builder) Build(ctx context.Context, j *builders.Job) error {
	w, err := newWriter(j.Stage, j.Layer.Name)
	if err != nil {
		return err
	}
	defer w.root.Close()
	if j.Overlay != nil {
		// Nothing staged yet (a files-only layer): every entry goes into the
		// overlay by reference, and the stage is never written.
		if empty, err := isEmptyDir(j.Stage); err != nil {
			return err
		} else if empty {
			w.ov, w.kinds, w.known, w.walked = j.Overlay, map[string]fs.FileMode{}, j.Known, j.Walked
		}
	}
	for i, f := range j.Layer.Files {
		var mode fs.FileMode
		if f.Mode != "" {
			m, err := strconv.ParseUint(f.Mode, 8, 32)
			if err != nil {
				return fmt.Errorf("layer.%s.files[%d].mode: %w", j.Layer.Name, i, err)
			}
			mode = fs.FileMode(m)
		}
		w.entry, w.src = i, f.Src
		if err := w.copy(ctx, f.AbsSrc, path.Clean("./"+filepath.ToSlash(f.Dest)), mode); err != nil {
			return fmt.Errorf("layer.%s.files[%d] (%s): %w", j.Layer.Name, i, f.Src, err)
		}
	}
	return nil
}

// Copy copies src into the folder dest (created if needed), as one [[files]] entry
// does: a folder's content goes into dest, a file goes to dest/<name>.
func Copy(ctx context.Context, src, dest string, mode fs.FileMode) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	w, err := newWriter(dest, "")
	if err != nil {
		return err
	}
	defer w.root.Close()
	return w.copy(ctx, src, ".", mode)
}

// writer puts files into the staged tree. Every write goes through an os.Root of
// the stage and refuses to pass through a symlink, so no crafted tree can make a
// write land outside the stage (or, through a staged link, anywhere else in it);
// and nothing staged is ever opened for writing: a path that exists is replaced,
// never truncated, because it may be a hard link to the user's own file.
type writer struct {
	root  *os.Root
	dir   string
	layer string
	// owner records which [[files]] entry wrote each path: two entries writing one
	// path is an error naming both, not a silent overwrite.
	owner map[string]owned
	// dirs are staged folders already checked to be real folders: a folder stays
	// one (nothing here replaces a folder), so each is checked once, not once per
	// file below it.
	dirs  map[string]bool
	entry int
	src   string
	// ov, when set, receives every entry instead of the stage, and kinds says
	// what each path written so far is (fs.ModeDir, fs.ModeSymlink or 0).
	ov     *builders.Overlay
	kinds  map[string]fs.FileMode
	known  func(string, fs.FileInfo) []byte       // Job.Known, or nil
	walked func(string) ([]builders.Walked, bool) // Job.Walked, or nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return len(names) == 0, err
}

type owned struct {
	entry int
	src   string
}

func newWriter(stage, layer string) (*writer, error) {
	r, err := os.OpenRoot(stage)
	if err != nil {
		return nil, err
	}
	return &writer{root: r, dir: stage, layer: layer, owner: map[string]owned{}, dirs: map[string]bool{}}, nil
}

// copy copies src (a file or a folder) to the slash path dest inside the stage.
// A top-level src that is a symlink is followed: naming it was the user's choice,
// and a file keeps the link's name.
func (w *writer) copy(ctx context.Context, src, dest string, mode fs.FileMode) error {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(real)
	if err != nil {
		return err
	}
	if err := w.mkdirs(dest); err != nil {
		return err
	}
	if !st.IsDir() {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file, folder or symlink", src)
		}
		return w.file(real, path.Join(dest, filepath.Base(src)), st, mode, nil)
	}
	root := real
	// rel is p's slash path below root, clean.
	// sum is the file's SHA-256 when the key's walk hashed it, else nil.
	visit := func(p, rel string, info fs.FileInfo, sum []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		target := joinClean(dest, rel)
		switch {
		case info.IsDir():
			return w.mkdirs(target)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if ok, via := insideTree(root, p, link); !ok {
				return fmt.Errorf("%s is a symlink to %s, outside %s%s", rel, link, w.name(src), via)
			}
			return w.symlink(link, target)
		case info.Mode().IsRegular():
			return w.file(p, target, info, mode, sum)
		}
		return fmt.Errorf("%s is not a regular file, folder or symlink", rel)
	}
	if w.walked != nil {
		// The cache key's hash just walked this tree: copy what it hashed.
		if list, ok := w.walked(root); ok {
			w.grow(len(list))
			for i := range list {
				e := &list[i]
				var sum []byte
				if e.HasSum {
					sum = e.Sum[:]
				}
				if err := visit(e.Path, e.Rel, e.Info, sum); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		return visit(p, filepath.ToSlash(rel), info, nil)
	})
}

// joinClean is path.Join for a clean dest and a clean rel, without cleaning
// again: it runs for every file of a tree.
func joinClean(dest, rel string) string {
	switch {
	case rel == ".":
		return dest
	case dest == ".":
		return rel
	}
	return dest + "/" + rel
}

// grow makes room for n more paths in the maps a copy fills, when they are
// still empty: one allocation instead of a dozen rehashes of a large tree.
func (w *writer) grow(n int) {
	if len(w.owner) == 0 {
		w.owner = make(map[string]owned, n)
	}
	if len(w.dirs) == 0 {
		w.dirs = make(map[string]bool, n/4)
	}
	if w.ov != nil {
		if len(w.kinds) == 0 {
			w.kinds = make(map[string]fs.FileMode, n)
		}
		w.ov.Grow(n)
	}
}

// insideTree reports whether the link at p (inside root) resolves inside root,
// following every link of the chain as the kernel would, whether or not the final
// target exists: `l -> ../../..` walked through by `x -> d/l/../../victim` is caught
// even though victim does not exist yet. via says how it escaped when a chain, not
// the link's own text, leads out.
func insideTree(root, p, link string) (ok bool, via string) {
	if filepath.IsAbs(link) {
		return false, ""
	}
	dir, _ := filepath.Rel(root, filepath.Dir(p))
	parts := append(splitPath(dir), splitPath(link)...)
	var cur []string // resolved components below root
	hops := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case ".", "":
			continue
		case "..":
			if len(cur) == 0 {
				if hops == 0 {
					return false, ""
				}
				return false, " (through other links it leaves the folder)"
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := filepath.Join(append([]string{root}, append(cur, part)...)...)
		st, err := os.Lstat(next)
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			cur = append(cur, part) // a folder, a file, or nothing yet: lexical from here
			continue
		}
		if hops++; hops > maxHops {
			return false, fmt.Sprintf(" (more than %d links in a chain)", maxHops)
		}
		t, err := os.Readlink(next)
		if err != nil || filepath.IsAbs(t) {
			return false, " (through other links it leaves the folder)"
		}
		parts = append(splitPath(t), parts...)
	}
	return true, ""
}

// maxHops is the kernel's limit on links followed while resolving one path.
const maxHops = 40

func splitPath(p string) []string {
	if p == "." || p == "" {
		return nil
	}
	return strings.Split(filepath.ToSlash(p), "/")
}

// mkdirs makes the folder dest and its parents, refusing to go through a symlink
// or a file.
func (w *writer) mkdirs(dest string) error {
	if dest == "." || dest == "" || w.dirs[dest] {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(dest, "/") {
		cur = path.Join(cur, part)
		if w.dirs[cur] {
			continue
		}
		if w.ov != nil {
			switch k, ok := w.kinds[cur]; {
			case !ok:
				w.kinds[cur] = fs.ModeDir
				w.ov.Put(zipper.Entry{Name: cur + "/", Mode: fs.ModeDir | 0o755})
			case k&fs.ModeSymlink != 0:
				return fmt.Errorf("%s in the layer is a symlink%s; refusing to write through it", cur, w.by(cur))
			case k&fs.ModeDir == 0:
				return fmt.Errorf("%s in the layer is a file%s, not a folder", cur, w.by(cur))
			}
			w.dirs[cur] = true
			continue
		}
		st, err := w.root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := w.root.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case st.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s in the layer is a symlink%s; refusing to write through it", cur, w.by(cur))
		case !st.IsDir():
			return fmt.Errorf("%s in the layer is a file%s, not a folder", cur, w.by(cur))
		}
		w.dirs[cur] = true
	}
	return nil
}

// name is how messages call a source: as the config wrote it.
func (w *writer) name(abs string) string {
	if w.src != "" {
		return w.src
	}
	return abs
}

// by names the entry that wrote a staged path, for messages.
func (w *writer) by(rel string) string {
	if o, ok := w.owner[rel]; ok && w.layer != "" {
		return fmt.Sprintf(" (written by layer.%s.files[%d] (%s))", w.layer, o.entry, o.src)
	}
	return ""
}

// claim checks that rel may be written by the current entry and clears the way:
// a path an earlier [[files]] entry wrote is an error naming both entries; a file
// or link another builder staged is replaced (a [[files]] entry overlays builder
// output, by unlinking it: never by writing through it).
func (w *writer) claim(rel string) error {
	if err := w.mkdirs(path.Dir(rel)); err != nil {
		return err
	}
	if o, ok := w.owner[rel]; ok {
		if w.layer == "" {
			return fmt.Errorf("%s is written twice", rel)
		}
		return fmt.Errorf("%s is also written by layer.%s.files[%d] (%s); two entries may not write one path (change a dest, or exclude the file from one source)",
			rel, w.layer, o.entry, o.src)
	}
	if w.ov != nil {
		if k, ok := w.kinds[rel]; ok && k&fs.ModeDir != 0 {
			return fmt.Errorf("%s in the layer is a folder; a file cannot replace it", rel)
		}
		w.owner[rel] = owned{w.entry, w.src}
		return nil
	}
	st, err := w.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case st.IsDir():
		return fmt.Errorf("%s in the layer is a folder; a file cannot replace it", rel)
	default:
		if err := w.root.Remove(rel); err != nil {
			return err
		}
	}
	w.owner[rel] = owned{w.entry, w.src}
	return nil
}

func (w *writer) symlink(link, rel string) error {
	if err := w.claim(rel); err != nil {
		return err
	}
	if w.ov != nil {
		w.kinds[rel] = fs.ModeSymlink
		w.ov.Put(zipper.Entry{Name: rel, Mode: fs.ModeSymlink | 0o777, Link: link})
		return nil
	}
	return w.root.Symlink(link, rel)
}

// file stages the regular file src at rel. Into an overlay it goes by reference,
// with the forced mode if any. Into the stage, without a forced mode it is a hard
// link (no bytes copied; safe because the staged tree is only read from here on
// and no path is ever opened for writing); a forced mode needs a real copy, so the
// user's file keeps its own.
func (w *writer) file(src, rel string, info fs.FileInfo, force fs.FileMode, sum []byte) error {
	if err := w.claim(rel); err != nil {
		return err
	}
	have := info.Mode()
	if w.ov != nil {
		perm := have.Perm()
		if force != 0 {
			perm = force
		}
		w.kinds[rel] = 0
		e := zipper.Entry{Name: rel, Mode: perm, Size: info.Size(), Open: openSame(src, info)}
		if e.Sum = sum; sum == nil && w.known != nil {
			e.Sum = w.known(src, info)
		}
		w.ov.Put(e)
		return nil
	}
	if force == 0 {
		if err := os.Link(src, filepath.Join(w.dir, filepath.FromSlash(rel))); err == nil {
			return nil
		}
	}
	perm := have.Perm()
	if force != 0 {
		perm = force
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := w.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(perm); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// openSame opens src for the zipper, refusing a file that is no longer the one
// walked (replaced, written or swapped for a symlink since): what is zipped is
// what was checked and hashed.
func openSame(src string, walked fs.FileInfo) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		// O_NONBLOCK: a fifo swapped in since the walk must not block the open
		// (it fails the check below); regular files ignore the flag.
		fd, err := ignoringEINTR(func() (int, error) {
			return syscall.Open(src, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		})
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: src, Err: err}
		}
		var st syscall.Stat_t
		if _, err = ignoringEINTR(func() (int, error) { return 0, syscall.Fstat(fd, &st) }); err != nil {
			err = &fs.PathError{Op: "stat", Path: src, Err: err}
		} else if !sameFile(&st, walked) {
			err = fmt.Errorf("%s was replaced during the build", src)
		}
		if err != nil {
			syscall.Close(fd)
			return nil, err
		}
		return &rawFile{fd: fd, name: src}, nil
	}
}

// sameFile reports whether st is the file walked: the same inode, size and
// modification time.
func sameFile(st *syscall.Stat_t, walked fs.FileInfo) bool {
	w, ok := walked.Sys().(*syscall.Stat_t)
	return ok && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Dev == w.Dev && st.Ino == w.Ino &&
		st.Size == walked.Size() && time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Equal(walked.ModTime())
}

// rawFile reads a regular file through its descriptor with plain system calls.
// An *os.File would also stat it to decide whether the poller can take it:
// two more calls for each of a 100,000-file layer's files.
type rawFile struct {
	fd   int
	name string
}

func (f *rawFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := ignoringEINTR(func() (int, error) { return syscall.Read(f.fd, p) })
	switch {
	case err != nil:
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// ReadExact is zipper.ExactReader: with room for one byte more, a single read
// that returns exactly len(buf) bytes has met the end of the file (a regular
// file's read is short only there); anything else reads on as io.ReadFull would.
func (f *rawFile) ReadExact(buf []byte) (int, bool, error) {
	ext := buf
	if cap(buf) > len(buf) {
		ext = buf[:len(buf)+1]
	}
	n := 0
	for n < len(ext) {
		ask := len(ext) - n
		k, err := f.Read(ext[n:])
		if err == io.EOF {
			return n, false, nil
		}
		if err != nil {
			return min(n, len(buf)), false, err
		}
		if n += k; k < ask && n == len(buf) && len(ext) > len(buf) {
			return n, false, nil // shorter than asked, right at len(buf): the end
		}
	}
	if n > len(buf) {
		return len(buf), true, nil
	}
	// No room for a byte more: ask for one.
	var one [1]byte
	k, err := f.Read(one[:])
	if err == io.EOF {
		return n, false, nil
	}
	return n, k > 0, err
}

func (f *rawFile) Close() error {
	if err := syscall.Close(f.fd); err != nil {
		return &fs.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != syscall.EINTR {
			return n, err
		}
	}
}
