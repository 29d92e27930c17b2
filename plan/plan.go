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
	// Engine is the most any builder of the item needs containers (never, maybe,
	// always).
	Engine builders.EngineUse
	// EngineWhy is the builders' EngineNeeds.Why, for messages.
	EngineWhy string
	// Images are every build image the builders may run steps in, chosen here
	// once (see ChooseImage): plan shows them, the cache key hashes them, builders
	// run in them. Empty for a layer that never needs a container.
	Images builders.Images
	// Image and StepArch are Images[0]: the image of the first builder that needs
	// one and the architecture its steps run as (the target's, or this machine's
	// for a step whose output does not depend on the CPU, such as Maven's).
	Image    string
	StepArch lambda.Arch
	// File is the zip's name in the output folder: <layer>-<arch>.zip.
	File string
}

// NeedsEngine reports whether some builder of the item surely runs container steps.
func (it *Item) NeedsEngine() bool { return it.Engine == builders.UsesEngine }

// ChooseImage is the one place a build image is decided: the layer's image, else
// [images] for the runtime, else [images] default, else the SAM build image of the
// runtime, with {arch} replaced; folders resolved against the config file (and
// through symlinks: BuildKit keeps a synced folder by its path, so every project
// linking one image folder shares one copy).
func ChooseImage(cfg *config.File, l *config.Layer, runtime string, arch lambda.Arch) (string, error) {
	var rts []string
	if runtime != "" {
		rts = []string{runtime}
	}
	ref := engine.ImageFor(cfg.Images, l.Image, rts, arch)
	img, err := engine.ParseImage(ref, cfg.Dir)
	if err != nil {
		return "", fmt.Errorf("layer %s (%s): %w", l.Name, arch, err)
	}
	if img.Dir != "" {
		if real, err := filepath.EvalSymlinks(img.Dir); err == nil {
			img.Dir = real
		}
	}
	return img.String(), nil
}

// chooseImages fills it.Engine and it.Images from what the builders say they need.
func chooseImages(cfg *config.File, it *Item) error {
	seen := map[builders.ImageNeed]bool{}
	for _, b := range it.Builders {
		n := b.Engine(it.Layer, it.Target)
		if n.Use == builders.NoEngine {
			continue
		}
		it.Engine = max(it.Engine, n.Use)
		if n.Use == builders.UsesEngine && n.Why != "" && it.EngineWhy == "" {
			it.EngineWhy = n.Why
		}
		needs := n.Images
		if len(needs) == 0 {
			rt := ""
			if len(it.Layer.CompatibleRuntimes) > 0 {
				rt = it.Layer.CompatibleRuntimes[0]
			}
			needs = []builders.ImageNeed{{Runtime: rt, Arch: it.Target.Arch}}
		}
		for _, need := range needs {
			if seen[need] {
				continue
			}
			seen[need] = true
			ref, err := ChooseImage(cfg, it.Layer, need.Runtime, need.Arch)
			if err != nil {
				return err
			}
			it.Images = append(it.Images, builders.Image{ImageNeed: need, Ref: ref})
		}
	}
	if len(it.Images) > 0 {
		it.Image, it.StepArch = it.Images[0].Ref, it.Images[0].Arch
	} else {
		it.StepArch = it.Target.Arch
	}
	return nil
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
			if err := chooseImages(cfg, &it); err != nil {
				return nil, err
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
