package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/layerpack/layerpack/internal/version"
	"github.com/layerpack/layerpack/zipper"
)

type versionCmd struct{}

func (versionCmd) Run(e *env) error {
	bk := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/moby/buildkit" {
				bk = d.Version
			}
		}
	}
	fmt.Fprintf(e.stdout, "layerpack %s\nzip encoder: %s@%s\nbuildkit client: %s\ngo: %s\n",
		version.Version, zipper.Encoder, zipper.EncoderVersion(), bk, runtime.Version())
	return nil
}
