package main

import (
	"github.com/layerpack/layerpack/internal/atomicfile"
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
	zt := manifest.TargetOf(c.Zip)
	name, arch := zt.Name, string(zt.Arch)
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
	return atomicfile.WriteFile(c.Output, b, 0o644)
}
