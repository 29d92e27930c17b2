package pipeline

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/layerpack/layerpack/secrets"
	"github.com/layerpack/layerpack/zipper"
)

// Filter applies include and exclude globs (doublestar, over slash paths inside the
// layer) to files and symlinks. Folders stay when something under them stays or when
// they are empty and included: the zipper adds the parents of what remains.
func Filter(entries []zipper.Entry, include, exclude []string) ([]zipper.Entry, int, error) {
	if len(include) == 0 && len(exclude) == 0 {
		return entries, 0, nil
	}
	match := func(pats []string, name string) (bool, error) {
		for _, p := range pats {
			ok, err := doublestar.Match(p, name)
			if err != nil {
				return false, fmt.Errorf("glob %q: %w", p, err)
			}
			if ok {
				return true, nil
			}
		}
		return false, nil
	}
	keep := func(name string) (bool, error) {
		name = strings.TrimSuffix(name, "/")
		if len(include) > 0 {
			in, err := match(include, name)
			if err != nil || !in {
				return false, err
			}
		}
		out, err := match(exclude, name)
		return !out, err
	}
	// A folder is empty when no other entry lies under it.
	hasChild := map[string]bool{}
	for _, e := range entries {
		trimmed := strings.TrimSuffix(e.Name, "/")
		if i := strings.LastIndex(trimmed, "/"); i >= 0 {
			hasChild[trimmed[:i+1]] = true
		}
	}
	var out []zipper.Entry
	dropped := 0
	for _, e := range entries {
		isDir := strings.HasSuffix(e.Name, "/")
		if isDir && hasChild[e.Name] {
			continue // kept, if at all, as the parent of something kept
		}
		ok, err := keep(e.Name)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			if !isDir {
				dropped++
			}
			continue
		}
		out = append(out, e)
	}
	return out, dropped, nil
}

// dropVCS removes version-control data (.git/, .hg/, .svn/): never wanted in a
// layer (a whole .git/ was once found zipped into a shared layer), unless
// allow_secrets names it.
func dropVCS(entries []zipper.Entry, allow []string) ([]zipper.Entry, int) {
	out := entries[:0:0]
	n := 0
	for _, e := range entries {
		if secrets.IsVCS(e.Name) && !secrets.Allowed(e.Name, allow) {
			if !strings.HasSuffix(e.Name, "/") {
				n++
			}
			continue
		}
		out = append(out, e)
	}
	return out, n
}
