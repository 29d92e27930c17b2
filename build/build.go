// Package build runs a plan: for each item, it computes the cache key, and on a miss
// lets the builders fill a staged tree, applies include/exclude, writes the zip to a
// temp file, verifies it (layout, limits, modes, ELF) and only then renames it into
// place. Nothing half-written ever has a zip's final name.
package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/version"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/manifest"
	"github.com/layerpack/layerpack/plan"
	"github.com/layerpack/layerpack/verify"
	"github.com/layerpack/layerpack/zipper"
)

// Options for Run.
type Options struct {
	Config  *config.File
	Items   []plan.Item
	OutDir  string // absolute
	Jobs    int    // items built at once; <= 0 means 2
	NoCache bool
	Cache   *cache.Cache
	Engine  engine.Engine // connects lazily; only used by items that need it
	Epoch   time.Time     // zip timestamp (SOURCE_DATE_EPOCH)
	Events  Events        // progress; nil is quiet
	Log     io.Writer     // builders' own output (host steps)
}

// Result is one zip built (or found in the cache).
type Result struct {
	Item         plan.Item
	Path         string
	CodeSha256   string
	Size         int64
	UnzippedSize int64
	Entries      int
	Cached       bool
	Saved        string // what include/exclude left out, for the summary
	Warnings     []verify.Finding
	Duration     time.Duration
	Err          error
}

// Events receives progress. Calls may come from several goroutines.
type Events interface {
	Start(it *plan.Item)
	Zip(it *plan.Item, p zipper.Progress)
	Done(r *Result)
}

// ZipSettings is what the zip bytes depend on besides the content.
func ZipSettings(cfg *config.File, epoch time.Time) manifest.Zip {
	return manifest.Zip{
		Encoder:         zipper.Encoder + "@" + zipper.EncoderVersion(),
		Level:           cfg.Defaults.Compression,
		SourceDateEpoch: epoch.Unix(),
	}
}

// Run builds every item. It returns the results in plan order and an error when any
// item failed; items that did not fail are still built, like make -k.
func Run(ctx context.Context, o Options) ([]*Result, error) {
	if o.Jobs <= 0 {
		o.Jobs = 2
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating output folder: %w", err)
	}
	hasher := o.Cache.NewHasher()
	results := make([]*Result, len(o.Items))
	sem := make(chan struct{}, o.Jobs)
	var wg sync.WaitGroup
	for i := range o.Items {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = &Result{Item: o.Items[i], Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			results[i] = buildOne(ctx, &o, hasher, &o.Items[i])
		}(i)
	}
	wg.Wait()
	if err := hasher.Save(); err != nil {
		fmt.Fprintf(o.Log, "layerpack: warning: saving the file hash memo: %v\n", err)
	}
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if len(errs) > 0 {
		return results, errors.Join(errs...)
	}
	m := &manifest.Manifest{LayerpackVersion: version.Version, Zip: ZipSettings(o.Config, o.Epoch)}
	for _, r := range results {
		l := r.Item.Layer
		m.Layers = append(m.Layers, manifest.Layer{
			Name: l.Name, Architecture: string(r.Item.Target.Arch), File: r.Item.File,
			CodeSha256: r.CodeSha256, Size: r.Size, UnzippedSize: r.UnzippedSize, Entries: r.Entries,
			CompatibleRuntimes:      l.CompatibleRuntimes,
			CompatibleArchitectures: []string{string(r.Item.Target.Arch)},
			Description:             l.Description, LicenseInfo: l.LicenseInfo,
		})
	}
	if err := m.Write(filepath.Join(o.OutDir, manifest.FileName)); err != nil {
		return results, fmt.Errorf("writing manifest: %w", err)
	}
	return results, nil
}

func buildOne(ctx context.Context, o *Options, h *cache.Hasher, it *plan.Item) (r *Result) {
	start := time.Now()
	r = &Result{Item: *it, Path: filepath.Join(o.OutDir, it.File)}
	if o.Events != nil {
		o.Events.Start(it)
		defer func() { o.Events.Done(r) }()
	}
	defer func() {
		r.Duration = time.Since(start)
		if r.Err != nil {
			r.Err = fmt.Errorf("layer %s (%s): %w", it.Layer.Name, it.Target.Arch, r.Err)
		}
	}()
	key, err := Key(ctx, o, h, it)
	if err != nil {
		r.Err = err
		return r
	}
	unlock, err := o.Cache.Lock(key)
	if err != nil {
		r.Err = err
		return r
	}
	defer unlock()
	if !o.NoCache {
		if e, zipPath, ok := o.Cache.Get(key); ok {
			if err := placeCached(e, zipPath, r.Path); err == nil {
				r.Cached, r.CodeSha256, r.Size, r.UnzippedSize, r.Entries = true, e.CodeSha256, e.Size, e.UnzippedSize, e.Entries
				return r
			}
		}
	}
	r.Err = produce(ctx, o, it, key, r)
	return r
}

// placeCached makes out the cached zip, unless it already is: the no-op build of an
// unchanged layer reads no zip at all.
func placeCached(e *cache.Entry, zipPath, out string) error {
	st, err := os.Stat(out)
	if err == nil {
		if cst, err := os.Stat(zipPath); err == nil && os.SameFile(st, cst) {
			return nil
		}
		if st.Size() == e.Size {
			if sum, err := lambda.FileCodeSha256(out); err == nil && sum == e.CodeSha256 {
				return nil
			}
		}
	}
	return cache.LinkOrCopy(zipPath, out)
}

// Key is the cache key of an item: a hash of everything that can change its bytes.
func Key(ctx context.Context, o *Options, h *cache.Hasher, it *plan.Item) (string, error) {
	section, err := json.Marshal(it.Layer)
	if err != nil {
		return "", err
	}
	zs := ZipSettings(o.Config, o.Epoch)
	lines := []string{
		"layerpack " + version.Version,
		fmt.Sprintf("zip %s level=%d epoch=%d", zs.Encoder, zs.Level, zs.SourceDateEpoch),
		"arch " + string(it.Target.Arch),
		"layer " + string(section),
	}
	for _, b := range it.Builders {
		ins, err := b.Inputs(it.Layer, it.Target)
		if err != nil {
			return "", fmt.Errorf("%s builder: %w", b.Name(), err)
		}
		for _, in := range ins {
			v := in.Value
			if in.Path != "" {
				if v, err = h.Path(in.Path); err != nil {
					return "", fmt.Errorf("hashing input %s: %w", in.Name, err)
				}
			}
			lines = append(lines, "input "+b.Name()+" "+in.Name+" "+v)
		}
	}
	// The image last: resolving it may need the daemon, and a missing input file
	// should be reported without one.
	// The digest only when steps surely run in the image: a builder that compiles
	// only when it must (auto) must not need a daemon for a layer of wheels.
	if it.Image != "" {
		lines = append(lines, "image "+it.Image)
		if it.NeedsEngine() {
			arch := it.StepArch
			if arch == "" { // an Item made by hand
				arch = it.Target.Arch
			}
			digest, err := o.Engine.ImageDigest(ctx, it.Image, arch)
			if err != nil {
				return "", fmt.Errorf("resolving build image %s: %w", it.Image, err)
			}
			lines = append(lines, "image-digest "+digest)
		}
	}
	return cache.Key(lines), nil
}

// produce builds the zip for a cache miss.
func produce(ctx context.Context, o *Options, it *plan.Item, key string, r *Result) error {
	work, err := o.Cache.TempDir("build-" + it.Layer.Name + "-" + string(it.Target.Arch) + "-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	stage := filepath.Join(work, "stage")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return err
	}
	for _, b := range it.Builders {
		j := &builders.Job{
			Layer: it.Layer, Target: it.Target, Config: o.Config, Stage: stage,
			Work: filepath.Join(work, b.Name()), Engine: o.Engine, Image: it.Image, StepArch: it.StepArch,
			SourceDateEpoch: o.Epoch.Unix(), NoCache: o.NoCache, Log: o.Log, CacheDir: o.Cache.Dir,
		}
		if err := os.Mkdir(j.Work, 0o755); err != nil {
			return err
		}
		if err := b.Build(ctx, j); err != nil {
			return fmt.Errorf("%s builder: %w", b.Name(), err)
		}
	}
	entries, err := zipper.Scan(stage)
	if err != nil {
		return err
	}
	entries, dropped, err := Filter(entries, it.Layer.Include, it.Layer.Exclude)
	if err != nil {
		return err
	}
	if dropped > 0 {
		r.Saved = strconv.Itoa(dropped) + " files left out by include/exclude"
	}
	tmp, err := os.CreateTemp(o.OutDir, "."+it.File+".tmp-*")
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	opt := zipper.Options{Level: o.Config.Defaults.Compression, Time: o.Epoch, Store: alreadyCompressed}
	if o.Events != nil {
		opt.Progress = func(p zipper.Progress) { o.Events.Zip(it, p) }
	}
	st, err := zipper.Write(ctx, tmp, entries, opt)
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	rep, err := verify.Zip(tmp.Name(), verify.Options{Arch: it.Target.Arch, Runtimes: it.Target.Runtimes, ZipSize: st.ZippedSize})
	if err != nil {
		return fmt.Errorf("verifying zip: %w", err)
	}
	for _, f := range rep.Findings {
		if f.Severity != verify.Error {
			r.Warnings = append(r.Warnings, f)
		}
	}
	if err := rep.Err(); err != nil {
		return err
	}
	sum, err := lambda.FileCodeSha256(tmp.Name())
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), r.Path); err != nil {
		return err
	}
	keep = true
	r.CodeSha256, r.Size, r.UnzippedSize, r.Entries = sum, st.ZippedSize, st.UnzippedSize, st.Entries
	e := &cache.Entry{Key: key, CodeSha256: sum, Size: st.ZippedSize, UnzippedSize: st.UnzippedSize,
		Entries: st.Entries, Encoder: zipper.Encoder + "@" + zipper.EncoderVersion()}
	if err := o.Cache.Put(e, r.Path); err != nil {
		// The zip is good; a cache that cannot be written only costs a rebuild.
		fmt.Fprintf(o.Log, "layerpack: warning: %v\n", err)
	}
	return nil
}

// alreadyCompressed names files deflate cannot shrink; storing them saves the time.
func alreadyCompressed(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jar", ".zip", ".whl", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".png", ".jpg", ".jpeg", ".webp", ".woff2":
		return true
	}
	return false
}

// Workers is how many goroutines compress; exposed for plan output.
func Workers() int { return runtime.NumCPU() }
