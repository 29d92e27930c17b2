package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/layerpack/layerpack/internal/version"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/manifest"
)

// recordManifest writes the manifest so that it agrees with the zips beside it:
// items built (or taken from the cache) in this run get fresh entries; an item
// that failed keeps its old entry, which still describes the zip that failure left
// untouched; entries of other layers of the config stay while their zip still has
// the recorded bytes. Nothing is recorded when every item failed and no old
// manifest exists.
func recordManifest(o *Options, results []*Result) error {
	path := filepath.Join(o.OutDir, manifest.FileName)
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("manifest %s is a folder; remove it or choose another output folder", path)
	}
	zs := ZipSettings(o.Config, o.Epoch)
	old := map[string]manifest.Layer{}
	var prev *manifest.Manifest
	if m, err := manifest.Read(path); err == nil && m.Zip == zs {
		prev = m
		for _, l := range m.Layers {
			old[l.Name+"/"+l.Architecture] = l
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(o.Log, "layerpack: warning: %s is unreadable (%v); writing a new one\n", path, err)
	}
	fresh := map[string]manifest.Layer{}
	ran := map[string]bool{}
	for _, r := range results {
		k := r.Item.Layer.Name + "/" + string(r.Item.Target.Arch)
		ran[k] = true
		if r.Err == nil {
			fresh[k] = ManifestEntry(r)
		}
	}
	m := &manifest.Manifest{LayerpackVersion: version.Version, Zip: zs}
	// Config order, then architecture order: the same file whatever ran.
	for _, l := range o.Config.Layers {
		for _, a := range lambda.Arches {
			k := l.Name + "/" + string(a)
			if e, ok := fresh[k]; ok {
				// Versions published from the same bytes and metadata still hold
				// this zip: a rebuild that changed nothing keeps them on record.
				if o, ok := old[k]; ok && samePublishable(o, e) {
					e.Published = o.Published
				}
				m.Layers = append(m.Layers, e)
			} else if e, ok := old[k]; ok && stillThere(o.OutDir, e) {
				m.Layers = append(m.Layers, e)
			}
		}
	}
	keepImages(prev, m)
	if len(m.Layers) == 0 && len(fresh) == 0 {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	if err := m.Write(path); err != nil {
		return fmt.Errorf("writing manifest %s: %w", path, err)
	}
	return nil
}

// ManifestEntry is a result's manifest entry.
func ManifestEntry(r *Result) manifest.Layer {
	l := r.Item.Layer
	return manifest.Layer{
		Name: l.Name, Architecture: string(r.Item.Target.Arch), File: r.Item.File,
		CodeSha256: r.CodeSha256, Size: r.Size, UnzippedSize: r.UnzippedSize, Entries: r.Entries,
		CompatibleRuntimes:      l.CompatibleRuntimes,
		CompatibleArchitectures: []string{string(r.Item.Target.Arch)},
		Description:             l.Description, LicenseInfo: l.LicenseInfo,
		SBOM: sbomName(r.SBOM),
	}
}

func sbomName(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Base(p)
}

// stillThere reports whether the zip an old entry describes still has those bytes.
func stillThere(dir string, e manifest.Layer) bool {
	p := filepath.Join(dir, filepath.FromSlash(e.File))
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || st.Size() != e.Size {
		return false
	}
	sum, err := lambda.FileCodeSha256(p)
	return err == nil && sum == e.CodeSha256
}

// samePublishable reports whether two entries would publish the same layer version.
func samePublishable(a, b manifest.Layer) bool {
	return a.CodeSha256 == b.CodeSha256 && a.Description == b.Description && a.LicenseInfo == b.LicenseInfo &&
		slices.Equal(a.CompatibleRuntimes, b.CompatibleRuntimes) && slices.Equal(a.CompatibleArchitectures, b.CompatibleArchitectures)
}

// keepImages carries over the container images of the old manifest whose every
// architecture was made from a zip the new one still lists with the same bytes.
func keepImages(prev, m *manifest.Manifest) {
	if prev == nil {
		return
	}
	sums := map[string]string{}
	for _, l := range m.Layers {
		sums[l.Name+"/"+l.Architecture] = l.CodeSha256
	}
	for _, im := range prev.Images {
		ok := len(im.Manifests) > 0
		for _, a := range im.Manifests {
			ok = ok && sums[im.Name+"/"+a.Architecture] == a.CodeSha256
		}
		if ok {
			m.Images = append(m.Images, im)
		}
	}
	if len(m.Images) > 0 {
		m.ImageFormat = prev.ImageFormat
	}
}
