package builders

import (
	"slices"
	"strings"
	"sync"

	"github.com/layerpack/layerpack/zipper"
)

// Overlay holds what a builder puts in the layer by reference instead of into the
// stage: folders, symlinks and regular files read from their source when the zip
// is written. The files builder uses it, so a 200 MB tree is read once, by the
// zipper, with no copy, link or folder made for it in the stage. The pipeline
// zips the stage and the overlay together; a name in both is an error.
type Overlay struct {
	mu sync.Mutex
	// list is the entries in the order first put; at is each one's index in
	// it, by name without the folder's trailing "/". Builders put in walk
	// order, nearly name order, so Entries sorts little.
	list []zipper.Entry
	at   map[string]int
}

// NewOverlay returns an empty overlay.
func NewOverlay() *Overlay { return &Overlay{at: map[string]int{}} }

// Put adds or replaces the entry e (its Name as zipper.Entry wants it).
func (o *Overlay) Put(e zipper.Entry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	name := strings.TrimSuffix(e.Name, "/")
	if i, ok := o.at[name]; ok {
		o.list[i] = e
		return
	}
	o.at[name] = len(o.list)
	o.list = append(o.list, e)
}

// Grow makes room for n more entries, when the overlay is still empty.
func (o *Overlay) Grow(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.list) == 0 {
		o.at = make(map[string]int, n)
		o.list = make([]zipper.Entry, 0, n)
	}
}

// Get returns the entry at the slash path name ("a/b", no trailing "/").
func (o *Overlay) Get(name string) (zipper.Entry, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i, ok := o.at[name]
	if !ok {
		return zipper.Entry{}, false
	}
	return o.list[i], true
}

// Len is the number of entries.
func (o *Overlay) Len() int {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.list)
}

// Entries returns the entries sorted by name.
func (o *Overlay) Entries() []zipper.Entry {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Clone(o.list)
	slices.SortFunc(out, func(a, b zipper.Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}
