package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/internal/version"
	"github.com/layerpack/layerpack/plan"
)

// Key is the cache key of an item: a hash of everything that can change its bytes.
func Key(ctx context.Context, o *Options, h *cache.Hasher, it *plan.Item) (string, error) {
	section, err := json.Marshal(it.Layer)
	if err != nil {
		return "", err
	}
	zs := ZipSettings(o.Config, o.Epoch)
	lines := []string{
		"layerpack " + version.Version,
		fmt.Sprintf("zip %s level=%d epoch=%d", zs.Encoder, zs.Level, zs.SourceDateEpoch),
		"arch " + string(it.Target.Arch),
		"layer " + string(section),
	}
	for _, b := range it.Builders {
		ins, err := b.Inputs(it.Layer, it.Target)
		if err != nil {
			return "", fmt.Errorf("%s builder: %w", b.Name(), err)
		}
		for _, in := range ins {
			v := in.Value
			if in.Path != "" {
				if v, err = h.Path(in.Path); err != nil {
					return "", fmt.Errorf("hashing input %s: %w", in.Name, err)
				}
			}
			lines = append(lines, "input "+b.Name()+" "+in.Name+" "+v)
		}
	}
	// The images last: resolving a digest may need the daemon, and a missing input
	// file should be reported without one. Every image a step may run in is keyed
	// by reference; by digest too when steps surely run (a builder that compiles
	// only when it must, auto, must not need a daemon for a layer of wheels).
	for _, im := range it.Images {
		if len(it.Images) == 1 {
			lines = append(lines, "image "+im.Ref) // one image: the key text of earlier versions
		} else {
			lines = append(lines, "image "+im.Runtime+" "+string(im.Arch)+" "+im.Ref)
		}
		if it.NeedsEngine() {
			digest, err := o.Engine.ImageDigest(ctx, im.Ref, im.Arch)
			if err != nil {
				if it.EngineWhy != "" {
					return "", fmt.Errorf("resolving build image %s (%s): %w", im.Ref, it.EngineWhy, err)
				}
				return "", fmt.Errorf("resolving build image %s: %w", im.Ref, err)
			}
			lines = append(lines, "image-digest "+digest)
		}
	}
	return cache.Key(lines), nil
}

// alreadyCompressed names files deflate cannot shrink; storing them saves the time.
func alreadyCompressed(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jar", ".zip", ".whl", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".png", ".jpg", ".jpeg", ".webp", ".woff2":
		return true
	}
	return false
}
