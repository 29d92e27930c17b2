package main

import (
	"io"

	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
)

// engineFlags are the flags of commands that may run build containers.
type engineFlags struct {
	BuildkitAddr string   `help:"BuildKit daemon address (default: [buildkit] addr, BUILDKIT_HOST, the default socket, Docker, or a private buildkitd)." placeholder:"ADDR"`
	CacheFrom    []string `help:"Import BuildKit cache, e.g. type=local,src=DIR or type=registry,ref=REF; repeatable (default: [buildkit] cache_from)." placeholder:"SPEC" sep:"none"`
	CacheTo      []string `help:"Export BuildKit cache, e.g. type=local,dest=DIR or type=registry,ref=REF,mode=max; repeatable (default: [buildkit] cache_to)." placeholder:"SPEC" sep:"none"`
	TrustHostCA  *bool    `help:"Give build steps the host's CA bundle (default: [buildkit] trust_host_ca, else on)." negatable:""`

	// TLS for tcp:// daemons, named as buildctl names them; they replace [buildkit] tls_*.
	TLSCACert     string `name:"tlscacert" help:"CA certificate the tcp:// daemon's certificate must chain to (default: [buildkit] tls_ca)." placeholder:"FILE" type:"path"`
	TLSCert       string `name:"tlscert" help:"Client certificate for mutual TLS (default: [buildkit] tls_cert)." placeholder:"FILE" type:"path"`
	TLSKey        string `name:"tlskey" help:"Client key for mutual TLS (default: [buildkit] tls_key)." placeholder:"FILE" type:"path"`
	TLSServerName string `name:"tlsservername" help:"Name to check the daemon's certificate against (default: the address's host)." placeholder:"NAME"`
	TLSDir        string `name:"tlsdir" help:"Folder with ca.pem, cert.pem and key.pem (the other --tls* flags override its files)." placeholder:"DIR" type:"path"`
}

// tls returns the TLS settings for tcp:// addresses: the flags when any is
// given (relative paths from the working folder), else [buildkit] tls_*.
func (f *engineFlags) tls(cfg *config.File) engine.TLS {
	if f.TLSCACert == "" && f.TLSCert == "" && f.TLSKey == "" && f.TLSServerName == "" && f.TLSDir == "" {
		return engine.TLS(cfg.BuildKit.TLS)
	}
	var t engine.TLS
	if f.TLSDir != "" {
		t = engine.TLSFromDir(f.TLSDir)
	}
	for _, v := range []struct{ flag, dst *string }{{&f.TLSCACert, &t.CA}, {&f.TLSCert, &t.Cert}, {&f.TLSKey, &t.Key}, {&f.TLSServerName, &t.ServerName}} {
		if *v.flag != "" {
			*v.dst = *v.flag
		}
	}
	return t
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
	cacheFrom, cacheTo := f.CacheFrom, f.CacheTo
	if cacheFrom == nil {
		cacheFrom = cfg.BuildKit.CacheFrom
	}
	if cacheTo == nil {
		cacheTo = cfg.BuildKit.CacheTo
	}
	archTLS := map[lambda.Arch]engine.TLS{}
	for a, t := range cfg.BuildKit.ArchTLS {
		archTLS[a] = engine.TLS(t)
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
		TLS:         f.tls(cfg),
		ArchTLS:     archTLS,
		CacheDir:    cacheDir,
		Progress:    progress,
		Out:         out,
		CacheFrom:   cacheFrom,
		CacheTo:     cacheTo,
		TrustHostCA: f.trustHostCA(cfg),
		Getenv:      e.getenv,
	})
}

// describeStepEnv says which CA and proxy settings steps get, for plan.
func (f *engineFlags) describeStepEnv(e *env, cfg *config.File) []string {
	return engine.DescribeStepEnv(e.getenv, f.trustHostCA(cfg))
}
