package main

import (
	"github.com/layerpack/layerpack/zipdiff"
)

type diffCmd struct {
	A string `arg:"" help:"First zip."`
	B string `arg:"" help:"Second zip."`
}

// Run exits 1 when the zips differ, like diff(1).
func (c *diffCmd) Run(e *env) error {
	ds, err := zipdiff.Diff(c.A, c.B)
	if err != nil {
		return err
	}
	zipdiff.Write(e.stdout, ds)
	if len(ds) > 0 {
		return errFailed
	}
	return nil
}
