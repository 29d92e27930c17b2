package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/layerpack/layerpack/build"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/zipper"
)

type buildCmd struct {
	buildFlags
}

func (c *buildCmd) Run(e *env) error {
	_, err := c.build(e, e.stdout)
	return err
}

// buildFlags are the flags of a build, shared by build and image.
type buildFlags struct {
	selection
	engineFlags
	Out      string `help:"Output folder (default: [defaults] out_dir, relative to the config file)." placeholder:"DIR" type:"path"`
	Jobs     int    `short:"j" default:"2" help:"Layers built at once."`
	NoCache  bool   `help:"Rebuild even when nothing changed."`
	CacheDir string `help:"layerpack's cache folder (default: $XDG_CACHE_HOME/layerpack)." env:"LAYERPACK_CACHE_DIR" placeholder:"DIR"`
	Progress string `default:"auto" enum:"auto,tty,plain,quiet,rawjson" help:"Progress output: auto, tty, plain, quiet or rawjson."`
}

// built is what a successful build leaves for the commands that go on from its zips.
type built struct {
	cfg     *config.File
	results []*build.Result
	out     string // the output folder, with the manifest
}

// build runs the normal cached build and prints one line per zip to stdout.
func (c *buildFlags) build(e *env, stdout io.Writer) (*built, error) {
	cfg, items, err := c.load()
	if err != nil {
		return nil, err
	}
	epoch, err := zipper.Epoch(e.getenv)
	if err != nil {
		return nil, usageError{err}
	}
	dir := c.CacheDir
	if dir == "" {
		if dir, err = cache.DefaultDir(); err != nil {
			return nil, err
		}
	}
	cch, err := cache.Open(dir)
	if err != nil {
		return nil, err
	}
	out := cfg.OutDir()
	if c.Out != "" {
		out = c.Out
	}
	mode := progressMode(c.Progress, e)
	events := newEvents(mode, e.stderr, len(items))
	eng, err := c.openEngine(e, cfg, dir, mode, events.engineOut())
	if err != nil {
		return nil, usageError{err}
	}
	defer eng.Close()
	results, err := build.Run(e.ctx, build.Options{
		Config: cfg, Items: items, OutDir: out, Jobs: c.Jobs, NoCache: c.NoCache,
		Cache: cch, Engine: eng, Epoch: epoch, Events: events, Log: events.log(),
	})
	events.finish()
	for _, r := range results {
		if r == nil || r.Err != nil {
			continue
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(e.stderr, "warning: %s (%s): %s\n", r.Item.Layer.Name, r.Item.Target.Arch, w.Message)
		}
		note := ""
		if r.Cached {
			note = "  (cached)"
		}
		fmt.Fprintf(stdout, "%s  %s  %s unzipped  %d entries%s\n",
			display(r.Path), r.CodeSha256, humanBytes(r.UnzippedSize), r.Entries, note)
	}
	if err != nil {
		for _, r := range results {
			if r != nil && r.Err != nil {
				fmt.Fprintf(e.stderr, "layerpack: %v\n", r.Err)
			}
		}
		if errors.Is(err, e.ctx.Err()) && e.ctx.Err() != nil {
			fmt.Fprintln(e.stderr, "layerpack: interrupted; no partial zip was left behind")
		}
		return nil, errFailed
	}
	if mode != "quiet" {
		fmt.Fprintf(e.stderr, "manifest: %s\n", display(filepath.Join(out, "layerpack-manifest.json")))
	}
	return &built{cfg: cfg, results: results, out: out}, nil
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
