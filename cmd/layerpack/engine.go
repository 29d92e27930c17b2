package main

import (
	"io"

	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
)

// engineFlags are the flags of commands that may run build containers.
type engineFlags struct {
	BuildkitAddr string   `help:"BuildKit daemon address (default: [buildkit] addr, BUILDKIT_HOST, the default socket, Docker, or a private buildkitd)." placeholder:"ADDR"`
	CacheFrom    []string `help:"Import BuildKit cache, e.g. type=local,src=DIR; repeatable." placeholder:"SPEC"`
	CacheTo      []string `help:"Export BuildKit cache, e.g. type=local,dest=DIR; repeatable." placeholder:"SPEC"`
	TrustHostCA  *bool    `help:"Give build steps the host's CA bundle (default: [buildkit] trust_host_ca, else on)." negatable:""`
}

// trustHostCA is on unless the flag or the config turns it off: the bundle is only
// mounted read-only into steps (never copied into a layer), and without it every
// registry behind a TLS-intercepting proxy fails inside containers.
func (f *engineFlags) trustHostCA(cfg *config.File) bool {
	switch {
	case f.TrustHostCA != nil:
		return *f.TrustHostCA
	case cfg.BuildKit.TrustHostCA != nil:
		return *cfg.BuildKit.TrustHostCA
	}
	return true
}

// openEngine prepares the engine; it dials nothing until a step needs it.
// Progress goes to out.
func (f *engineFlags) openEngine(e *env, cfg *config.File, cacheDir, progress string, out io.Writer) (*engine.BuildKit, error) {
	addr := f.BuildkitAddr
	if addr == "" {
		addr = cfg.BuildKit.Addr
	}
	if cacheDir == "" {
		d, err := cache.DefaultDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	return engine.Open(e.ctx, engine.Options{
		Addr:        addr,
		ArchAddr:    cfg.BuildKit.ArchAddr,
		CacheDir:    cacheDir,
		Progress:    progress,
		Out:         out,
		CacheFrom:   f.CacheFrom,
		CacheTo:     f.CacheTo,
		TrustHostCA: f.trustHostCA(cfg),
		Getenv:      e.getenv,
	})
}

// describeStepEnv says which CA and proxy settings steps get, for plan.
func (f *engineFlags) describeStepEnv(e *env, cfg *config.File) []string {
	return engine.DescribeStepEnv(e.getenv, f.trustHostCA(cfg))
}
