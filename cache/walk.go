package cache

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// walkTree lists the tree at root (whose lstat data is info) in filepath.WalkDir's
// order: a folder before what it holds, each folder's entries sorted by name.
// It is WalkDir without its per-path costs: each folder is read with its lstat
// data in one pass (fstatat relative to the folder's descriptor, not a full path
// resolved again for every file), and folders are read in parallel. The key of
// every build walks its inputs, no-op builds included, so this is their cost.
func walkTree(root string, info fs.FileInfo) ([]Walked, error) {
	t := &treeWalk{sem: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
	// Paths below the root are joined as filepath.Join would: to the clean root.
	base := filepath.Clean(root)
	top := t.dir(base, ".")
	if t.err != nil {
		return nil, t.err
	}
	return top.appendTo([]Walked{{Path: root, Rel: ".", Info: info}}), nil
}

type treeWalk struct {
	sem   chan struct{} // slots for folders read on their own goroutine
	mu    sync.Mutex
	err   error  // the first error in walk order
	errAt string // the Rel of the folder it came from
}

// listing is one folder's entries, sorted, with the listings of its subfolders
// (subs[i] for entries[i] when that is a folder).
type listing struct {
	entries []Walked
	subs    []*listing
}

func (l *listing) appendTo(out []Walked) []Walked {
	if l == nil {
		return out
	}
	for i, e := range l.entries {
		out = append(out, e)
		if l.subs != nil {
			out = l.subs[i].appendTo(out)
		}
	}
	return out
}

func (t *treeWalk) fail(rel string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil || walkBefore(rel, t.errAt) {
		t.err, t.errAt = err, rel
	}
}

// walkBefore reports whether folder a comes before folder b in walk order
// (path components compared one by one, as sorted folder entries are).
func walkBefore(a, b string) bool {
	return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/")) < 0
}

func (t *treeWalk) dir(path, rel string) *listing {
	// O_NOFOLLOW: a folder swapped for a symlink since its lstat is not followed.
	// A raw open and os.NewFile: os.OpenFile would also try to add the folder to
	// the network poller, three wasted system calls a folder.
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.fail(rel, &fs.PathError{Op: "open", Path: path, Err: err})
		return nil
	}
	f := os.NewFile(uintptr(fd), path)
	infos, err := f.Readdir(-1)
	f.Close()
	if err != nil {
		t.fail(rel, &fs.PathError{Op: "readdirent", Path: path, Err: err})
		return nil
	}
	slices.SortFunc(infos, func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	l := &listing{entries: make([]Walked, len(infos))}
	var wg sync.WaitGroup
	for i, info := range infos {
		name := info.Name()
		r := name
		if rel != "." {
			r = rel + "/" + name
		}
		p := path + string(filepath.Separator) + name
		if strings.HasSuffix(path, string(filepath.Separator)) {
			p = path + name // the root is "/"
		}
		l.entries[i] = Walked{Path: p, Rel: r, Info: info}
		if !info.IsDir() {
			continue
		}
		if l.subs == nil {
			l.subs = make([]*listing, len(infos))
		}
		select {
		case t.sem <- struct{}{}:
			wg.Go(func() {
				l.subs[i] = t.dir(p, r)
				<-t.sem
			})
		default:
			l.subs[i] = t.dir(p, r)
		}
	}
	wg.Wait()
	return l
}
