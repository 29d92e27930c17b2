// Package plan turns a config into the list of zips to build: one Item per layer and
// architecture, with the builders that fill it and the build image they use.
package plan

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
)

// Item is one zip to build.
type Item struct {
	Layer    *config.Layer
	Target   builders.Target
	Builders []builders.Builder
	// Image is the build image for container steps; empty for a layer of files.
	Image string
	// StepArch is the architecture container steps run as: Target.Arch, unless
	// the builder that needs the engine runs its steps natively
	// (builders.StepArcher); Image is the one configured for StepArch.
	StepArch lambda.Arch
	// File is the zip's name in the output folder: <layer>-<arch>.zip.
	File string
}

// NeedsEngine reports whether any builder of the item runs container steps.
func (it *Item) NeedsEngine() bool {
	for _, b := range it.Builders {
		if b.NeedsEngine(it.Layer, it.Target) {
			return true
		}
	}
	return false
}

// Make plans the named layers (all when names is empty) for the given architectures
// (each layer's own when arches is empty). all is every builder, in the order they
// run: language builders first, then files, so local files can overlay built output.
func Make(cfg *config.File, names []string, arches []lambda.Arch, all []builders.Builder) ([]Item, error) {
	layers := cfg.Layers
	if len(names) > 0 {
		layers = nil
		seen := map[string]bool{}
		for _, n := range names {
			l := cfg.Layer(n)
			if l == nil {
				return nil, fmt.Errorf("unknown layer %q in %s (layers: %s)", n, cfg.Path, strings.Join(layerNames(cfg), ", "))
			}
			if !seen[n] {
				layers = append(layers, l)
				seen[n] = true
			}
		}
		sort.Slice(layers, func(i, j int) bool { return layers[i].Name < layers[j].Name })
	}
	var items []Item
	for _, l := range layers {
		var bs []builders.Builder
		for _, b := range all {
			if b.Applies(l) {
				bs = append(bs, b)
			}
		}
		own := cfg.ArchList(l)
		built := 0
		for _, a := range lambda.Arches { // canonical order, whatever the config's order
			if !hasArch(own, a) || (len(arches) > 0 && !hasArch(arches, a)) {
				continue
			}
			it := Item{
				Layer:    l,
				Target:   builders.Target{Arch: a, Runtimes: l.Runtimes},
				Builders: bs,
				File:     l.Name + "-" + string(a) + ".zip",
			}
			it.StepArch = stepArch(&it)
			if it.NeedsEngine() || usesImage(bs) {
				ref := engine.ImageFor(cfg.Images, l.Image, l.CompatibleRuntimes, it.StepArch)
				img, err := engine.ParseImage(ref, cfg.Dir)
				if err != nil {
					return nil, fmt.Errorf("layer %s (%s): %w", l.Name, it.StepArch, err)
				}
				// BuildKit keeps a synced folder by its path: resolving symlinks lets
				// every project that links the same image share one copy.
				if img.Dir != "" {
					if real, err := filepath.EvalSymlinks(img.Dir); err == nil {
						img.Dir = real
					}
				}
				it.Image = img.String()
			}
			items = append(items, it)
			built++
		}
		if built == 0 && len(names) > 0 {
			return nil, fmt.Errorf("layer %q is built for %s only, not for %s", l.Name, joinArches(own), joinArches(arches))
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("nothing to build for %s in %s", joinArches(arches), cfg.Path)
	}
	return items, nil
}

// stepArch is the architecture the item's container steps run as.
func stepArch(it *Item) lambda.Arch {
	for _, b := range it.Builders {
		if sa, ok := b.(builders.StepArcher); ok && b.NeedsEngine(it.Layer, it.Target) {
			return sa.StepArch(it.Layer, it.Target)
		}
	}
	return it.Target.Arch
}

// usesImage reports whether a builder may run container steps for some inputs (a
// language builder in auto mode compiles in the image only when it must): the image
// is then part of the plan, and of the cache key, even before any step needs it.
func usesImage(bs []builders.Builder) bool {
	for _, b := range bs {
		if b.Name() != "files" {
			return true
		}
	}
	return false
}

func hasArch(as []lambda.Arch, a lambda.Arch) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func joinArches(as []lambda.Arch) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, " and ")
}

func layerNames(cfg *config.File) []string {
	var n []string
	for _, l := range cfg.Layers {
		n = append(n, l.Name)
	}
	return n
}
