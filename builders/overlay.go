package builders

import (
	"sort"
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
	mu      sync.Mutex
	entries map[string]zipper.Entry // by name without the folder's trailing "/"
}

// NewOverlay returns an empty overlay.
func NewOverlay() *Overlay { return &Overlay{entries: map[string]zipper.Entry{}} }

// Put adds or replaces the entry e (its Name as zipper.Entry wants it).
func (o *Overlay) Put(e zipper.Entry) {
	o.mu.Lock()
	o.entries[strings.TrimSuffix(e.Name, "/")] = e
	o.mu.Unlock()
}

// Grow makes room for n more entries, when the overlay is still empty.
func (o *Overlay) Grow(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.entries) == 0 {
		o.entries = make(map[string]zipper.Entry, n)
	}
}

// Get returns the entry at the slash path name ("a/b", no trailing "/").
func (o *Overlay) Get(name string) (zipper.Entry, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.entries[name]
	return e, ok
}

// Len is the number of entries.
func (o *Overlay) Len() int {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}

// Entries returns the entries sorted by name.
func (o *Overlay) Entries() []zipper.Entry {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]zipper.Entry, 0, len(o.entries))
	for _, e := range o.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
