package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/crosscc"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/atomicfile"
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
	Log     io.Writer     // builders' own output (host steps) and warnings
	NoSBOM  bool          // do not write <layer>-<arch>.cdx.json beside each zip
	// Cross fetches the zig of cross_compile's fast path; nil: one in Cache.Dir.
	Cross *crosscc.Provider
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
	Saved        string // what the filter stage left out, for the summary
	Copied       int    // files whose compressed bytes came from the layer's last zip
	SBOM         string // the CycloneDX file written beside the zip, "" when none
	Warnings     []verify.Finding
	Duration     time.Duration
	// Stages is how long each stage that ran took, in order: where a build's
	// time went, for --progress rawjson.
	Stages []StageTime
	Err    error
}

// StageTime is one stage's name and wall time.
type StageTime struct {
	Name     string
	Duration time.Duration
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
// item failed; items that did not fail are still built, like make -k, and the
// manifest records them.
func Run(ctx context.Context, o Options) ([]*Result, error) {
	if o.Jobs <= 0 {
		o.Jobs = 2
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := prepareOut(o.OutDir); err != nil {
		return nil, err
	}
	sweep(&o)
	if o.Cross == nil {
		o.Cross = &crosscc.Provider{CacheDir: o.Cache.Dir, Log: o.Log}
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
			results[i] = runItem(ctx, &o, hasher, &o.Items[i])
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
	if err := recordManifest(&o, results); err != nil {
		errs = append(errs, err)
	}
	return results, errors.Join(errs...)
}

// prepareOut makes the output folder, with a message that names it when it cannot
// be one (a file, or under a file).
func prepareOut(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not a directory") {
			return fmt.Errorf("output folder %s: %s is a file, not a folder (choose another --out or out_dir)", dir, pe.Path)
		}
		return fmt.Errorf("creating output folder %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("output folder %s is a file, not a folder (choose another --out or out_dir)", dir)
	}
	return nil
}

// sweep removes what runs killed with SIGKILL left: temp zips in the output folder
// and scratch folders in the cache. Files of runs still alive are left alone.
func sweep(o *Options) {
	legacy := func(n string) bool { return strings.HasPrefix(n, ".") && strings.Contains(n, ".zip.tmp-") }
	if msg := atomicfile.Describe(o.OutDir, atomicfile.Sweep(o.OutDir, legacy)); msg != "" {
		fmt.Fprintf(o.Log, "layerpack: %s\n", msg)
	}
	if msg := atomicfile.Describe(o.Cache.Dir, o.Cache.Sweep()); msg != "" {
		fmt.Fprintf(o.Log, "layerpack: %s\n", msg)
	}
}
