// Package symlinks resolves the symbolic links of an archive's tree the way the
// kernel will once the archive is extracted: component by component, following
// links in the middle of a path and chains of links through other links of the
// same tree, with the kernel's limit of 40 links for one lookup. Comparing link
// text lexically is not enough: with "lib/d/l -> ../.." in the tree,
// "lib/x -> d/l/../etc" looks inside but reaches the folder above the root.
//
// The zipper and verify both use it, so a staged tree and a finished zip are held
// to one rule: every link is relative and, followed through the tree, never leaves
// the root.
package symlinks

import (
	"fmt"
	"path"
	"strings"
)

// MaxHops is how many links one lookup may follow, as Linux's MAXSYMLINKS; past
// it the kernel fails with ELOOP, so the link cannot work anyway.
const MaxHops = 40

// Kind is what a name in the tree is.
type Kind uint8

const (
	File Kind = iota
	Dir
	Link
)

// Tree is the names of an archive: folders, files and links with their text.
// Names are slash-separated and relative, without a trailing slash. Names not in
// the tree (the rest of /opt, other layers) are taken as plain folders.
type Tree struct {
	kinds   map[string]Kind
	targets map[string]string
}

// New returns an empty tree.
func New() *Tree {
	return &Tree{kinds: make(map[string]Kind), targets: make(map[string]string)}
}

// Add records name (a trailing slash is dropped) as kind; target is the text of a
// link.
func (t *Tree) Add(name string, kind Kind, target string) {
	name = strings.TrimSuffix(name, "/")
	if t.kinds[name] == Link && kind != Link {
		// A name listed twice (an error of its own) stays a link, so that no
		// duplicate can hide one from LinkedParent and Check.
		return
	}
	t.kinds[name] = kind
	if kind == Link {
		t.targets[name] = target
	}
}

// Problem says why a link does not stay inside the tree.
type Problem int

const (
	Absolute Problem = iota + 1 // the link's own text is an absolute path
	Escapes                     // followed, it reaches a place above the root
	Loop                        // it needs more than MaxHops links to resolve
)

// Hop is one link followed on the way.
type Hop struct {
	Name, Target string
}

// Error is a link that leaves the tree.
type Error struct {
	Name, Target string
	Problem      Problem
	// Via is the last other link the lookup followed before it left the tree
	// (for Escapes), if any.
	Via *Hop
	// Reached is where the lookup ended, as an absolute path with the tree's root
	// at Root (for Escapes): "/etc/passwd". Outside the tree the rest of the path
	// is applied lexically, since nothing is known about links there.
	Reached string
}

// Root is where the tree is taken to be extracted when Error.Reached is computed:
// a layer goes to /opt. Only the part of a path above the root depends on it.
const Root = "/opt"

// Error reads like `symlink target "../x" leaves the tree`.
func (e *Error) Error() string {
	switch e.Problem {
	case Absolute:
		return fmt.Sprintf("symlink target %q is absolute", e.Target)
	case Loop:
		return fmt.Sprintf("symlink target %q does not resolve: more than %d links in a row", e.Target, MaxHops)
	}
	return fmt.Sprintf("symlink target %q leaves the tree%s", e.Target, e.Through())
}

// Through is "" or ` through "lib/d/l" -> "../.."`.
func (e *Error) Through() string {
	if e.Via == nil {
		return ""
	}
	return fmt.Sprintf(" through %q -> %q", e.Via.Name, e.Via.Target)
}

// Check resolves the link name (which must be a Link of the tree) and returns an
// *Error when it is absolute, leaves the tree or loops, and nil otherwise. A link
// that ends nowhere inside the tree (dangling) is fine: another layer or the
// runtime may provide the target.
func (t *Tree) Check(name string) error {
	name = strings.TrimSuffix(name, "/")
	target := t.targets[name]
	if path.IsAbs(target) {
		return &Error{Name: name, Target: target, Problem: Absolute}
	}
	r := resolver{t: t, root: strings.Split(strings.TrimPrefix(Root, "/"), "/")}
	r.stack = append(r.stack, r.root...)
	if d := path.Dir(name); d != "." {
		r.stack = append(r.stack, strings.Split(d, "/")...)
	}
	r.walk(Hop{name, target})
	switch {
	case r.loop:
		return &Error{Name: name, Target: target, Problem: Loop}
	case r.escaped:
		e := &Error{Name: name, Target: target, Problem: Escapes, Reached: "/" + strings.Join(r.stack, "/")}
		if r.lastOther.Name != "" {
			e.Via = &r.lastOther
		}
		return e
	}
	return nil
}

// LinkedParent returns the nearest ancestor of name that is a link of the tree,
// or "". Unzip writes an entry below a link through the link, to wherever it
// points: never acceptable.
func (t *Tree) LinkedParent(name string) string {
	name = strings.TrimSuffix(name, "/")
	for i := 0; i < len(name); i++ {
		if name[i] == '/' && t.kinds[name[:i]] == Link {
			if _, ok := t.targets[name[:i]]; ok {
				return name[:i]
			}
		}
	}
	return ""
}

// resolver walks a path like the kernel's lookup, on an absolute stack of
// components where the tree's root is Root.
type resolver struct {
	t         *Tree
	root      []string
	stack     []string
	hops      int
	escaped   bool
	lastOther Hop // the last link other than the first one followed before leaving
	loop      bool
}

// inside reports whether the stack is at or below the root, and the name of that
// place in the tree.
func (r *resolver) inside() (string, bool) {
	if len(r.stack) < len(r.root) {
		return "", false
	}
	for i, c := range r.root {
		if r.stack[i] != c {
			return "", false
		}
	}
	return strings.Join(r.stack[len(r.root):], "/"), true
}

// walk follows the text of link h from the folder on the stack.
func (r *resolver) walk(h Hop) {
	r.hops++
	if r.hops > MaxHops {
		r.loop = true
		return
	}
	if path.IsAbs(h.Target) {
		// Another link of the tree that is absolute: it starts from /, outside.
		r.stack = r.stack[:0]
		r.escaped = true
	}
	for _, c := range strings.Split(h.Target, "/") {
		if r.loop {
			return
		}
		switch c {
		case "", ".":
			continue
		case "..":
			if len(r.stack) > 0 {
				r.stack = r.stack[:len(r.stack)-1]
			}
			if _, ok := r.inside(); !ok {
				r.escaped = true
			}
			continue
		}
		r.stack = append(r.stack, c)
		if r.escaped {
			continue // outside the tree nothing is known about links
		}
		if name, _ := r.inside(); r.t.kinds[name] == Link {
			r.stack = r.stack[:len(r.stack)-1]
			h := Hop{name, r.t.targets[name]}
			r.lastOther = h
			r.walk(h)
		}
	}
}
