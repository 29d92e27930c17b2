package zipper

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/layerpack/layerpack/symlinks"
)

// Entry is one thing to put in an archive.
// ExactReader is a source that reads a file of known length and tells whether
// it ends there, in one read where it can instead of two (a regular file read
// with plain system calls: a read shorter than asked is its end). Entry.Open
// may return one; the zipper then uses ReadExact for files it holds whole.
type ExactReader interface {
	// ReadExact fills buf from the start of the file; n is how much it got
	// (less than len(buf): the file is shorter), more whether the file goes on
	// past len(buf). A buf with spare capacity lets it read one byte past.
	ReadExact(buf []byte) (n int, more bool, err error)
}

type Entry struct {
	// Name is the slash-separated path inside the archive, relative, without
	// "." or ".." elements. Folders end in "/" (a folder Mode adds it).
	Name string
	// Mode is the mode as found; Write normalises it (see the package doc).
	Mode fs.FileMode
	// Size is the length of a regular file. Write fails if Open yields a
	// different number of bytes.
	Size int64
	// Link is the target of a symlink (Mode&fs.ModeSymlink).
	Link string
	// Open returns the content of a regular file. It may be called more than
	// once (a large file that deflate does not shrink is read twice) and must
	// give the same bytes each time. Nil is allowed when Size is 0.
	// The ReadCloser may be an ExactReader.
	Open func() (io.ReadCloser, error)
	// Sum is the SHA-256 of a regular file's content, when the caller already
	// knows it (from a hash it keeps of its inputs). With Options.Reuse, a file
	// whose stored entry is found by it is copied without being read at all, so
	// a wrong Sum gives a wrong archive: leave it nil unless it is certain.
	// Optional.
	Sum []byte
}

// Scan walks the folder root and returns an entry for everything below it
// (not root itself), sorted by name: folders, regular files and symlinks,
// which are not followed. Other file types are returned too, and rejected by
// Write. If root is itself a symlink, the folder it points to is walked.
// Folders are read concurrently; the result does not depend on it.
func Scan(root string) ([]Entry, error) {
	dir, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("zipper: scan: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("zipper: scan: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("zipper: scan: %s: not a folder", root)
	}
	s := &scanner{root: dir, sem: make(chan struct{}, scanParallel)}
	s.wg.Add(1)
	s.folder("")
	s.wg.Wait()
	if len(s.errs) > 0 {
		// Report the same error whatever the timing: the first by path.
		slices.SortFunc(s.errs, func(a, b scanError) int { return strings.Compare(a.path, b.path) })
		return nil, fmt.Errorf("zipper: scan: %w", s.errs[0].err)
	}
	slices.SortFunc(s.entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return s.entries, nil
}

// scanParallel bounds the folders read at once: lstat is mostly CPU time in
// the kernel, so a few more than the CPUs keeps them busy.
const scanParallel = 8

type scanner struct {
	root    string
	sem     chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	entries []Entry
	errs    []scanError
}

type scanError struct {
	path string
	err  error
}

// folder reads the folder rel (slash-separated, "" for the root), records
// its children and starts a goroutine for each subfolder.
func (s *scanner) folder(rel string) {
	defer s.wg.Done()
	s.sem <- struct{}{}
	entries, subdirs, err := s.read(rel)
	<-s.sem
	s.mu.Lock()
	s.entries = append(s.entries, entries...)
	if err != nil {
		s.errs = append(s.errs, scanError{rel, err})
	}
	s.mu.Unlock()
	for _, d := range subdirs {
		s.wg.Add(1)
		go s.folder(d)
	}
}

func (s *scanner) read(rel string) (entries []Entry, subdirs []string, err error) {
	f, err := os.Open(filepath.Join(s.root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, nil, err
	}
	list, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	for _, d := range list {
		name := d.Name()
		if rel != "" {
			name = rel + "/" + name
		}
		p := filepath.Join(s.root, filepath.FromSlash(name))
		info, err := d.Info()
		if err != nil {
			return nil, nil, err
		}
		e := Entry{Name: name, Mode: info.Mode()}
		switch {
		case info.IsDir():
			e.Name += "/"
			subdirs = append(subdirs, name)
		case info.Mode()&fs.ModeSymlink != 0:
			if e.Link, err = os.Readlink(p); err != nil {
				return nil, nil, err
			}
		case info.Mode().IsRegular():
			e.Size = info.Size()
			e.Open = func() (io.ReadCloser, error) { return os.Open(p) }
		}
		entries = append(entries, e)
	}
	return entries, subdirs, nil
}

type kind uint8

const (
	kindFile kind = iota
	kindDir
	kindLink
)

func kindName(k kind) string {
	switch k {
	case kindDir:
		return "folder"
	case kindLink:
		return "symlink"
	}
	return "file"
}

// item is an Entry after checking and normalising, in archive order.
type item struct {
	name  string // as written; folders end in "/"
	kind  kind
	attrs uint32 // external attributes: Unix mode << 16, plus the MS-DOS folder bit
	size  int64
	link  string
	open  func() (io.ReadCloser, error)
	store bool   // Options.Store said so
	sum   []byte // Entry.Sum
}

// plan checks entries, normalises them, adds the parent folders nobody listed
// and sorts everything by the byte order of the names.
func plan(entries []Entry, store func(string) bool) ([]item, error) {
	items := make([]item, 0, len(entries))
	for _, e := range entries {
		it, err := newItem(e, store)
		if err != nil {
			return nil, fmt.Errorf("zipper: entry %q: %w", shorten(e.Name), err)
		}
		items = append(items, it)
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(items); i++ {
		if items[i].name == items[i-1].name {
			return nil, fmt.Errorf("zipper: entry %q: duplicate", items[i].name)
		}
	}

	// Every parent folder is an entry, so empty folders and modes survive and
	// the archive does not depend on which folders the caller listed.
	kinds := make(map[string]kind, len(items))
	for _, it := range items {
		kinds[it.name] = it.kind
	}
	for _, it := range items {
		if it.kind != kindDir {
			continue
		}
		if k, ok := kinds[strings.TrimSuffix(it.name, "/")]; ok {
			return nil, fmt.Errorf("zipper: entry %q: also listed as a %s", it.name, kindName(k))
		}
	}
	n := len(items)
	for i := range n {
		name := items[i].name
		for j := 0; j < len(name)-1; j++ {
			if name[j] != '/' {
				continue
			}
			parent := name[:j+1]
			if k, ok := kinds[name[:j]]; ok {
				return nil, fmt.Errorf("zipper: entry %q: %q is a %s, not a folder", name, name[:j], kindName(k))
			}
			if _, ok := kinds[parent]; !ok {
				kinds[parent] = kindDir
				items = append(items, dirItem(parent))
			}
		}
	}
	if len(items) > n {
		slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })
	}

	// Links are resolved through each other, as the kernel will once the
	// archive is extracted: a link whose text looks inside can still leave.
	tree := symlinks.New()
	for _, it := range items {
		tree.Add(it.name, treeKinds[it.kind], it.link)
	}
	for i := range items {
		if items[i].kind == kindLink {
			if err := checkLink(tree, items[i].name, items[i].link); err != nil {
				return nil, fmt.Errorf("zipper: entry %q: %w", items[i].name, err)
			}
		}
	}
	return items, nil
}

func dirItem(name string) item {
	return item{name: name, kind: kindDir, attrs: (unixDir|0o755)<<16 | dosDir}
}

func newItem(e Entry, store func(string) bool) (item, error) {
	name := e.Name
	mode := e.Mode
	switch {
	case mode&fs.ModeSymlink != 0:
		if strings.HasSuffix(name, "/") {
			return item{}, errors.New("a symlink name cannot end in /")
		}
		if err := checkName(name); err != nil {
			return item{}, err
		}
		return item{name: name, kind: kindLink, attrs: (unixSymlink | 0o777) << 16, size: int64(len(e.Link)), link: e.Link}, nil
	case mode.IsDir() || strings.HasSuffix(name, "/"):
		if t := mode.Type() &^ fs.ModeDir; t != 0 {
			return item{}, fmt.Errorf("name ends in / but mode is %v", mode)
		}
		name = strings.TrimSuffix(name, "/")
		if err := checkName(name); err != nil {
			return item{}, err
		}
		return dirItem(name + "/"), nil
	case mode.IsRegular():
		if err := checkName(name); err != nil {
			return item{}, err
		}
		if e.Size < 0 {
			return item{}, fmt.Errorf("negative size %d", e.Size)
		}
		if e.Open == nil && e.Size > 0 {
			return item{}, errors.New("no Open function")
		}
		perm := uint32(0o644)
		if mode&0o111 != 0 {
			perm = 0o755
		}
		return item{
			name:  name,
			kind:  kindFile,
			attrs: (unixRegular | perm) << 16,
			size:  e.Size,
			open:  e.Open,
			sum:   e.Sum,
			store: store != nil && store(name),
		}, nil
	}
	return item{}, fmt.Errorf("unsupported file type %v", mode.Type())
}

// shorten keeps an error about a name of any length readable.
func shorten(name string) string {
	if len(name) <= 300 {
		return name
	}
	return name[:200] + "..." + name[len(name)-50:]
}

// checkName accepts a clean relative slash path (without the trailing slash
// of a folder) that every unzip reads the same way.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) >= max16:
		return fmt.Errorf("name is %d bytes long; a zip allows %d", len(name), max16-1)
	case !utf8.ValidString(name):
		return errors.New("name is not valid UTF-8")
	case strings.ContainsRune(name, 0):
		return errors.New("name contains a NUL byte")
	case strings.ContainsRune(name, '\\'):
		return errors.New(`name contains a backslash, which some unzip tools read as a separator`)
	case name[0] == '/':
		return errors.New("name is absolute")
	}
	for elem := range strings.SplitSeq(name, "/") {
		switch elem {
		case "":
			return errors.New("name has an empty element")
		case ".", "..":
			return fmt.Errorf("name has a %q element", elem)
		}
	}
	return nil
}

var treeKinds = map[kind]symlinks.Kind{kindFile: symlinks.File, kindDir: symlinks.Dir, kindLink: symlinks.Link}

// checkLink accepts a symlink whose target is relative and, resolved from the
// link's folder through the other links of the archive, stays inside it.
func checkLink(tree *symlinks.Tree, name, target string) error {
	switch {
	case target == "":
		return errors.New("symlink has an empty target")
	case strings.ContainsRune(target, 0):
		return errors.New("symlink target contains a NUL byte")
	}
	return tree.Check(name)
}
