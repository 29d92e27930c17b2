package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/internal/bytesize"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/zipper"
)

type buildCmd struct {
	buildFlags
	Publish bool `help:"Then publish the layers to Lambda, as layerpack publish does."`
	publishFlags
}

func (c *buildCmd) Run(e *env) error {
	out := e.stdout
	if c.Publish && c.JSON {
		out = e.stderr // stdout is the JSON document
	}
	if !c.Publish && (len(c.Region) > 0 || c.Profile != "" || c.DryRun || c.JSON) {
		return usageError{errors.New("--region, --profile, --dry-run and --json apply to publishing: add --publish, or use layerpack publish")}
	}
	b, err := c.build(e, out)
	if err != nil || !c.Publish {
		return err
	}
	return c.publish(e, b)
}

// buildFlags are the flags of a build, shared by build and publish.
type buildFlags struct {
	selection
	engineFlags
	Out      string `help:"Output folder (default: [defaults] out_dir, relative to the config file)." placeholder:"DIR" type:"path"`
	Jobs     int    `short:"j" default:"2" help:"Layers built at once."`
	NoCache  bool   `help:"Rebuild even when nothing changed."`
	CacheDir string `help:"layerpack's cache folder (default: $XDG_CACHE_HOME/layerpack)." env:"LAYERPACK_CACHE_DIR" placeholder:"DIR"`
	Progress string `default:"auto" enum:"auto,tty,plain,quiet,rawjson" help:"Progress output: auto, tty, plain, quiet or rawjson."`
}

// built is what a successful build leaves for publishing.
type built struct {
	cfg     *config.File
	results []*pipeline.Result
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
	results, err := pipeline.Run(e.ctx, pipeline.Options{
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
			display(r.Path), r.CodeSha256, bytesize.Format(r.UnzippedSize), r.Entries, note)
	}
	if err != nil {
		// Every failure, an item's or the run's own (output folder, manifest).
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(e.stderr, "layerpack: %s\n", line)
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
