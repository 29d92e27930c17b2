package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/layerpack/layerpack/initconfig"
)

type initCmd struct {
	Dir    string `arg:"" optional:"" default:"." help:"The project folder (default: the current one)."`
	Config string `short:"c" help:"File to write (default: DIR/layerpack.toml); never overwritten." placeholder:"FILE"`
}

// Run writes a starting config from what the folder holds; an existing file is a
// usage error (exit 2), never replaced.
func (c *initCmd) Run(e *env) error {
	path := c.Config
	if path == "" {
		path = filepath.Join(c.Dir, "layerpack.toml")
	}
	ls, err := initconfig.Detect(c.Dir)
	if err != nil {
		return usageError{err}
	}
	if err := initconfig.Write(path, initconfig.Render(ls)); err != nil {
		if errors.Is(err, initconfig.ErrExists) {
			return usageError{err}
		}
		return err
	}
	for _, l := range ls {
		from := "the default"
		if l.From != "" {
			from = l.From
		}
		fmt.Fprintf(e.stdout, "layer %s: %s, %s (from %s)\n", l.Name, l.Kind, l.Runtime, from)
		for _, n := range l.Notes {
			fmt.Fprintf(e.stderr, "note: layer %s: %s\n", l.Name, n)
		}
	}
	fmt.Fprintf(e.stdout, "wrote %s; check it, then run: layerpack build -c %s\n", path, path)
	return nil
}
