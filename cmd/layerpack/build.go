package main

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/crosscc"
	"github.com/layerpack/layerpack/internal/bytesize"
	"github.com/layerpack/layerpack/manifest"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/zipper"
)

type buildCmd struct {
	buildFlags
	Publish bool `help:"Then publish the layers to Lambda, as layerpack publish does."`
	publishFlags
}

func (c *buildCmd) Run(e *env) error {
	if !c.Publish && (len(c.Region) > 0 || c.Profile != "" || c.DryRun) {
		return usageError{errors.New("--region, --profile and --dry-run apply to publishing: add --publish, or use layerpack publish")}
	}
	var pub *publishFlags
	if c.Publish {
		pub = &c.publishFlags
	}
	return runBuild(e, &c.buildFlags, pub)
}

// runBuild is build and publish alike: the normal cached build, then publishing
// (when pub is not nil), then the --json document and the GitHub Actions outputs
// (buildout.go), which describe failures as well as results.
func runBuild(e *env, f *buildFlags, pub *publishFlags) error {
	b := &buildRun{cfgPath: f.Config, command: "build"}
	if pub != nil {
		b.command = "publish"
	}
	human := *e
	if f.JSON {
		human.stdout = e.stderr // stdout is the JSON document
	}
	err := f.build(&human, b)
	if err == nil && pub != nil {
		err = pub.publish(&human, b)
	}
	return b.finish(e, f.JSON, err)
}

// buildFlags are the flags of a build, shared by build, publish and image.
type buildFlags struct {
	selection
	engineFlags
	Out      string `help:"Output folder (default: [defaults] out_dir, relative to the config file)." placeholder:"DIR" type:"path"`
	Jobs     int    `short:"j" default:"2" help:"Layers built at once."`
	NoCache  bool   `help:"Rebuild even when nothing changed."`
	CacheDir string `help:"layerpack's cache folder (default: $XDG_CACHE_HOME/layerpack)." env:"LAYERPACK_CACHE_DIR" placeholder:"DIR"`
	ZigDir   string `help:"Folder keeping the zig of cross_compile (default: the cache folder); one can serve several caches." env:"LAYERPACK_ZIG_DIR" placeholder:"DIR" type:"path"`
	Progress string `default:"auto" enum:"auto,tty,plain,quiet,rawjson" help:"Progress output: auto, tty, plain, quiet or rawjson."`
	JSON     bool   `help:"Print one JSON document on stdout (schema: README, \"Machine-readable output\"); human lines go to stderr."`
}

// build runs the normal cached build, prints one line per zip to e.stdout, writes
// the SBOMs and records the run in b.
func (c *buildFlags) build(e *env, b *buildRun) error {
	cfg, items, err := c.load()
	if err != nil {
		return err
	}
	b.cfg = cfg
	epoch, err := zipper.Epoch(e.getenv)
	if err != nil {
		return usageError{err}
	}
	b.epoch = epoch
	dir := c.CacheDir
	if dir == "" {
		if dir, err = cache.DefaultDir(); err != nil {
			return err
		}
	}
	cch, err := cache.Open(dir)
	if err != nil {
		return err
	}
	out := cfg.OutDir()
	if c.Out != "" {
		out = c.Out
	}
	b.out = out
	mode := progressMode(c.Progress, e)
	events := newEvents(mode, e.stderr, len(items))
	eng, err := c.openEngine(e, cfg, dir, mode, events.engineOut())
	if err != nil {
		return usageError{err}
	}
	defer eng.Close()
	results, err := pipeline.Run(e.ctx, pipeline.Options{
		Config: cfg, Items: items, OutDir: out, Jobs: c.Jobs, NoCache: c.NoCache,
		Cache: cch, Engine: eng, Epoch: epoch, Events: events, Log: events.log(),
		Cross: &crosscc.Provider{CacheDir: cmp.Or(c.ZigDir, cch.Dir), Log: events.log()},
	})
	events.finish()
	b.results = results
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
		fmt.Fprintf(e.stdout, "%s  %s  %s unzipped  %d entries%s\n",
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
		return errFailed
	}
	b.manifest = filepath.Join(out, manifest.FileName)
	if mode != "quiet" {
		fmt.Fprintf(e.stderr, "manifest: %s\n", display(b.manifest))
	}
	return nil
}
