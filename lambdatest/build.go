package lambdatest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/crosscc"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/plan"
)

// BuildOptions are the settings of Build that differ between tests.
type BuildOptions struct {
	// Timeout bounds the whole build; 0 is none.
	Timeout time.Duration
	// OutDir receives the zips and the manifest; "" is a new temp folder.
	OutDir string
	// Image, when set, gives every item its build image (Env.Image: the test
	// images whatever the config says).
	Image func(lambda.Arch) string
	// Log also gets the builders' output as it comes (os.Stderr, to watch a long
	// build); Build returns all of it either way.
	Log io.Writer
}

// Build runs the real pipeline (plan, builder b, zip, the automatic layer checks)
// on the layerpack.toml in dir for arches (nil: the config's), with a fresh
// layerpack cache and NoCache, so BuildKit reruns every step too: each call really
// builds. eng nil is for host-only builds: a container step fails the build.
//
// It returns the results by architecture, also when the build fails (a rejected
// zip's result still says where the zip would have been), the builders' log and
// pipeline.Run's error. A config or plan that does not load fails the test, as does
// a config with more than one layer per architecture.
func Build(t testing.TB, dir string, b builders.Builder, arches []lambda.Arch, eng engine.Engine, o BuildOptions) (map[lambda.Arch]*pipeline.Result, string, error) {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := plan.Make(cfg, nil, arches, []builders.Builder{b})
	if err != nil {
		t.Fatal(err)
	}
	if o.Image != nil {
		// Every image the plan chose becomes the test image of its step architecture.
		for i := range items {
			it := &items[i]
			for j := range it.Images {
				it.Images[j].Ref = o.Image(it.Images[j].Arch)
			}
			if len(it.Images) > 0 {
				it.Image = it.Images[0].Ref
			} else {
				it.Image = o.Image(it.Target.Arch)
			}
		}
	}
	cch, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if eng == nil {
		eng = &engine.Fake{Hook: func(_ context.Context, s *engine.Step) error {
			return fmt.Errorf("unexpected container step %q in a host-only build", s.Name)
		}}
	}
	if o.OutDir == "" {
		o.OutDir = t.TempDir()
	}
	ctx := context.Background()
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	log := &SyncWriter{W: o.Log}
	results, err := pipeline.Run(ctx, pipeline.Options{
		Config: cfg, Items: items, OutDir: o.OutDir, Cache: cch, Engine: eng,
		Epoch: time.Unix(315532800, 0), NoCache: true, Log: log,
		Cross: &crosscc.Provider{CacheDir: ZigDir(t), Log: log},
	})
	out := map[lambda.Arch]*pipeline.Result{}
	for _, r := range results {
		a := r.Item.Target.Arch
		if out[a] != nil {
			t.Fatalf("%s: layers %s and %s are both for %s; Build keeps one result per architecture", cfg.Path, out[a].Item.Layer.Name, r.Item.Layer.Name, a)
		}
		out[a] = r
	}
	return out, log.String(), err
}

// ZigDir is the folder of the zig that compile steps use: the test
// environment's (LAYERPACK_TEST_ZIG_DIR, kept between runs), else one per test.
func ZigDir(t testing.TB) string {
	if d := os.Getenv("LAYERPACK_TEST_ZIG_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}

// SyncWriter collects what several goroutines write (builds of both architectures
// log at once) and passes it on to W when W is set.
type SyncWriter struct {
	W io.Writer

	mu sync.Mutex
	b  strings.Builder
}

func (w *SyncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if w.W != nil {
		return w.W.Write(p)
	}
	return len(p), nil
}

// String is everything written so far.
func (w *SyncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// WriteProject writes files (slash-separated paths to contents) into a new temp
// folder and returns the folder.
func WriteProject(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
