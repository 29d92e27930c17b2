package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/layerpack/layerpack/build"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/manifest"
	"github.com/layerpack/layerpack/sbom"
	"github.com/layerpack/layerpack/zipper"
)

type sbomCmd struct {
	Zip    string `arg:"" help:"Layer zip."`
	Output string `short:"o" help:"Write the document to FILE (default: stdout)." placeholder:"FILE"`
	Name   string `help:"The layer's name (default: the zip's name without -ARCH.zip)."`
	Arch   string `help:"The layer's architecture (default: from the zip's name)." enum:",x86_64,arm64" default:""`
}

// Run prints the CycloneDX document of any zip, the one a build writes beside it.
func (c *sbomCmd) Run(e *env) error {
	t, err := zipper.Epoch(e.getenv)
	if err != nil {
		return usageError{err}
	}
	name, arch := splitZipName(c.Zip)
	if c.Name != "" {
		name = c.Name
	}
	if c.Arch != "" {
		arch = c.Arch
	}
	bom, err := sbom.FromZip(c.Zip, sbom.Options{Name: name, Architecture: arch, Time: t})
	if err != nil {
		return err
	}
	b, err := sbom.Marshal(bom)
	if err != nil {
		return err
	}
	if c.Output == "" {
		_, err = e.stdout.Write(b)
		return err
	}
	return cache.WriteFileAtomic(c.Output, b, 0o644)
}

// splitZipName reads "greet-arm64.zip" as layer greet, architecture arm64.
func splitZipName(p string) (name, arch string) {
	name = strings.TrimSuffix(filepath.Base(p), ".zip")
	for _, a := range []string{"x86_64", "arm64"} {
		if n, ok := strings.CutSuffix(name, "-"+a); ok && n != "" {
			return n, a
		}
	}
	return name, ""
}

// sbomFile is the SBOM's name beside a zip: greet-arm64.zip -> greet-arm64.cdx.json.
func sbomFile(zipFile string) string { return strings.TrimSuffix(zipFile, ".zip") + ".cdx.json" }

// writeSBOMs is called once build.Run returns: it writes the SBOM of each zip built
// (or taken from the cache), and when the manifest was written, points its entries
// at them. runErr is build.Run's error; the result is the build's error.
func (b *buildRun) writeSBOMs(runErr error) error {
	b.sboms = map[*build.Result]string{}
	var failed error
	for _, r := range b.results {
		if r == nil || r.Err != nil {
			continue
		}
		out := filepath.Join(b.out, sbomFile(r.Item.File))
		o := sbom.Options{Name: r.Item.Layer.Name, Architecture: string(r.Item.Target.Arch), Time: b.epoch}
		if err := sbom.WriteFile(out, r.Path, r.CodeSha256, o); err != nil {
			r.Err = fmt.Errorf("layer %s (%s): writing the SBOM %s: %w", r.Item.Layer.Name, r.Item.Target.Arch, display(out), err)
			failed = errFailed
			continue
		}
		b.sboms[r] = out
	}
	if runErr != nil {
		return runErr
	}
	if failed != nil {
		return failed
	}
	mpath := filepath.Join(b.out, manifest.FileName)
	m, err := manifest.Read(mpath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", mpath, err)
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		for r, p := range b.sboms {
			if r.Item.Layer.Name == l.Name && string(r.Item.Target.Arch) == l.Architecture {
				l.SBOM = filepath.Base(p)
			}
		}
	}
	if err := m.Write(mpath); err != nil {
		return fmt.Errorf("writing %s: %w", mpath, err)
	}
	return nil
}
