package engine

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/ociindex"

	"github.com/layerpack/layerpack/lambda"
)

// ParseCacheOptions parses buildctl-style cache import or export specs
// ("type=local,src=DIR", "type=local,dest=DIR,mode=max", "type=registry,ref=REF",
// "type=s3,...") into BuildKit's form. what names the option in errors
// ("--cache-from" or "--cache-to"). Local folders are made absolute; other types
// are forwarded as given and checked by the daemon.
func ParseCacheOptions(what string, specs []string) ([]client.CacheOptionsEntry, error) {
	var out []client.CacheOptionsEntry
	for _, spec := range specs {
		fields, err := csv.NewReader(strings.NewReader(spec)).Read()
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", what, spec, err)
		}
		e := client.CacheOptionsEntry{Attrs: map[string]string{}}
		for _, f := range fields {
			k, v, ok := strings.Cut(f, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%s %q: %q is not key=value", what, spec, f)
			}
			if k == "type" {
				e.Type = v
				continue
			}
			e.Attrs[k] = v
		}
		if e.Type == "" {
			return nil, fmt.Errorf("%s %q: no type= (local, registry, s3, gha, azblob, inline)", what, spec)
		}
		if e.Type == "local" {
			key := "src"
			if what == "--cache-to" {
				key = "dest"
			}
			dir := e.Attrs[key]
			if dir == "" {
				return nil, fmt.Errorf("%s %q: type=local needs %s=DIR", what, spec, key)
			}
			if e.Attrs[key], err = filepath.Abs(dir); err != nil {
				return nil, fmt.Errorf("%s %q: %v", what, spec, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// stepCacheTag names a step's cache in a local cache folder. BuildKit's client
// points one tag (default "latest") of the folder's index.json at the cache of the
// last solve that exported there, so with one tag for every step only the last
// step of a run would be found by the next run. Each step therefore gets its own
// tag, derived from its name and architecture, unless the spec gives one.
func stepCacheTag(name string, arch lambda.Arch) string {
	sum := sha256.Sum256([]byte(name + "\x00" + string(arch)))
	return "layerpack-" + hex.EncodeToString(sum[:8])
}

// cacheFor prepares the cache imports and exports of one solve. It copies the
// entries (BuildKit's client writes a resolved digest into an import's Attrs),
// gives local entries the step's tag, and drops local imports whose folder has no
// cache for that tag yet, so a first run does not fail.
func cacheFor(imports, exports []client.CacheOptionsEntry, tag string) (im, ex []client.CacheOptionsEntry) {
	for _, e := range imports {
		e.Attrs = maps.Clone(e.Attrs)
		if e.Type == "local" {
			if e.Attrs["tag"] == "" && e.Attrs["digest"] == "" {
				e.Attrs["tag"] = tag
			}
			if e.Attrs["digest"] == "" {
				desc, err := ociindex.NewStoreIndex(e.Attrs["src"]).Get(e.Attrs["tag"])
				if err != nil || desc == nil {
					continue
				}
				e.Attrs["digest"] = desc.Digest.String()
			}
		}
		im = append(im, e)
	}
	for _, e := range exports {
		e.Attrs = maps.Clone(e.Attrs)
		if e.Type == "local" && e.Attrs["tag"] == "" {
			e.Attrs["tag"] = tag
		}
		ex = append(ex, e)
	}
	return im, ex
}

// localCacheDests lists the folders of local cache exports.
func localCacheDests(exports []client.CacheOptionsEntry) []string {
	var out []string
	for _, e := range exports {
		if e.Type == "local" {
			out = append(out, e.Attrs["dest"])
		}
	}
	return out
}
