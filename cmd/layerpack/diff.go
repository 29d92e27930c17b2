package main

import (
	"github.com/layerpack/layerpack/zipdiff"
)

type diffCmd struct {
	A string `arg:"" help:"First zip."`
	B string `arg:"" help:"Second zip."`
}

// Run exits like diff(1): 0 when the zips are identical, 1 when they differ, 2
// when one cannot be read.
func (c *diffCmd) Run(e *env) error {
	ds, err := zipdiff.Diff(e.ctx, c.A, c.B)
	if err != nil {
		if e.ctx.Err() != nil {
			return err // interrupted: exit 1, like any other command
		}
		return usageError{err}
	}
	zipdiff.Write(e.stdout, ds)
	if len(ds) > 0 {
		return errFailed
	}
	return nil
}
