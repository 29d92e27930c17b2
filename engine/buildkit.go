package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/docker/cli/cli/config"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"

	"github.com/layerpack/layerpack/lambda"
)

// Options configure a BuildKit engine. All fields are optional.
type Options struct {
	// Addr is the daemon address (flag, config and environment already merged by
	// the caller). Empty: discover one (see Open).
	Addr string
	// ArchAddr overrides Addr for one architecture ([buildkit.arm64] addr).
	ArchAddr map[lambda.Arch]string
	// TLS secures tcp:// addresses ([buildkit] tls_*, --tlscacert ...); ArchTLS
	// replaces it for one architecture's address ([buildkit.arm64] tls_*).
	TLS     TLS
	ArchTLS map[lambda.Arch]TLS
	// CacheDir is where a private daemon keeps its state (CacheDir/buildkitd).
	CacheDir string
	// Progress is the display mode: auto (default), tty, plain, quiet or rawjson.
	Progress string
	// Out receives the progress display, usually stderr. Nil means no display.
	Out io.Writer
	// CacheFrom and CacheTo are buildctl-style cache specs passed to every solve:
	// "type=local,src=DIR", "type=local,dest=DIR[,mode=max]", "type=registry,ref=REF", ...
	CacheFrom, CacheTo []string
	// TrustHostCA mounts HostCABundle into every step at HostCAPath and points
	// the usual CA variables (SSL_CERT_FILE, PIP_CERT, NODE_EXTRA_CA_CERTS, ...) at it;
	// JVMs get it as a PKCS#12 trust store at HostCAStorePath (JAVA_TOOL_OPTIONS).
	TrustHostCA bool
	// HostCABundle defaults to $SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt.
	HostCABundle string
	// Getenv reads the environment (BUILDKIT_HOST, DOCKER_HOST, SSL_CERT_FILE and
	// the proxy variables); nil means os.Getenv.
	Getenv func(string) string
}

// BuildKit runs steps through a BuildKit daemon. It connects on first use, per
// architecture: a layer of plain files never needs a daemon.
type BuildKit struct {
	opts      Options
	sys       *sys
	mode      progressui.DisplayMode
	disp      *sharedDisplay // one progress display for all concurrent steps
	cacheFrom []client.CacheOptionsEntry
	cacheTo   []client.CacheOptionsEntry
	proxy     *llb.ProxyEnv
	caBundle  string // host CA bundle, when TrustHostCA
	sharedKey string

	mu          sync.Mutex
	closed      bool
	slots       map[string]*slot
	caDir       string // folder holding only the CA bundle and trust store, made on first use
	exportLocks map[string]*sync.Mutex
	images      map[string]resolvedImage
	auth        session.Attachable
}

// slot is the connection for one daemon address (or the discovered one).
type slot struct {
	mu   sync.Mutex // held while connecting
	conn *conn
	err  error // a discovery failure, kept so that every step reports it at once
}

var _ Engine = (*BuildKit)(nil)

// Open validates the options. It does not connect: the first Run or ImageDigest
// of an architecture finds the daemon, in this order:
//
//  1. an address given for that architecture (ArchAddr), else Options.Addr, else
//     BUILDKIT_HOST: only that address is tried;
//  2. the default socket unix:///run/buildkit/buildkitd.sock;
//  3. Docker's built-in BuildKit, when a Docker engine answers on $DOCKER_HOST
//     (unix://) or /var/run/docker.sock;
//  4. a private buildkitd for this run, when buildkitd is on PATH and we are root:
//     state in CacheDir/buildkitd, stopped by Close.
//
// When none works, the error (a *NoDaemonError) lists every attempt and how to
// get a daemon. Open itself never blocks; ctx is for future use.
func Open(ctx context.Context, opts Options) (*BuildKit, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Progress == "" {
		opts.Progress = string(progressui.AutoMode)
	}
	mode := progressui.DisplayMode(opts.Progress)
	switch mode {
	case progressui.AutoMode, progressui.TtyMode, progressui.PlainMode, progressui.QuietMode, progressui.RawJSONMode:
	default:
		return nil, fmt.Errorf("progress mode %q: want auto, tty, plain, quiet or rawjson", opts.Progress)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
		mode = progressui.QuietMode
	}
	if mode == progressui.TtyMode {
		if _, err := progressui.NewDisplay(opts.Out, mode); err != nil {
			return nil, fmt.Errorf("progress mode tty: %w", err)
		}
	}
	for arch := range opts.ArchAddr {
		if _, err := lambda.ParseArch(string(arch)); err != nil {
			return nil, fmt.Errorf("buildkit address for %q: %w", arch, err)
		}
	}
	if err := checkEndpoints(&opts); err != nil {
		return nil, err
	}
	b := &BuildKit{
		opts:        opts,
		sys:         realSys(opts.Getenv),
		mode:        mode,
		proxy:       proxyEnv(opts.Getenv),
		slots:       map[string]*slot{},
		exportLocks: map[string]*sync.Mutex{},
		images:      map[string]resolvedImage{},
	}
	b.disp = &sharedDisplay{out: opts.Out, mode: mode}
	var err error
	if b.cacheFrom, err = ParseCacheOptions("--cache-from", opts.CacheFrom); err != nil {
		return nil, err
	}
	if b.cacheTo, err = ParseCacheOptions("--cache-to", opts.CacheTo); err != nil {
		return nil, err
	}
	if opts.TrustHostCA {
		b.caBundle = opts.HostCABundle
		if b.caBundle == "" {
			b.caBundle = HostCABundle(opts.Getenv)
		}
		if fi, err := os.Stat(b.caBundle); err != nil {
			return nil, fmt.Errorf("trust_host_ca: host CA bundle: %w", err)
		} else if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("trust_host_ca: host CA bundle %s is not a file", b.caBundle)
		}
	}
	host, _ := os.Hostname()
	b.sharedKey = "layerpack-" + shortHash(host)
	return b, nil
}

// slotFor returns the connection slot of arch and the explicit target, if any.
func (b *BuildKit) slotFor(arch lambda.Arch) (*slot, error) {
	key := "auto"
	if t, ok := explicitTarget(&b.opts, b.sys.getenv, arch); ok {
		key = t.slotKey()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("buildkit engine is closed")
	}
	sl := b.slots[key]
	if sl == nil {
		sl = &slot{}
		b.slots[key] = sl
	}
	return sl, nil
}

// connect returns the daemon connection for arch, finding the daemon on first use.
func (b *BuildKit) connect(ctx context.Context, arch lambda.Arch) (*conn, error) {
	if _, err := lambda.ParseArch(string(arch)); err != nil {
		return nil, err
	}
	sl, err := b.slotFor(arch)
	if err != nil {
		return nil, err
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.conn == nil && sl.err == nil {
		c, err := discover(ctx, b.sys, &b.opts, arch)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err() // not a verdict on the daemon: try again next time
			}
			sl.err = err
		} else {
			b.mu.Lock()
			closed := b.closed
			b.mu.Unlock()
			if closed {
				c.close()
				return nil, errors.New("buildkit engine is closed")
			}
			sl.conn = c
		}
	}
	if sl.err != nil {
		return nil, sl.err
	}
	c := sl.conn
	if !c.supports(arch) {
		return nil, fmt.Errorf("BuildKit at %s cannot run %s containers (its platforms: %s); "+
			"register QEMU with binfmt_misc and restart the daemon (scripts/testenv.sh setup does both), "+
			"or give [buildkit.%s] addr a daemon that can",
			c.t, arch.Platform(), formatPlatforms(c.platforms), arch)
	}
	return c, nil
}

func formatPlatforms(ps []ocispecs.Platform) string {
	var s []string
	for _, p := range ps {
		v := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			v += "/" + p.Variant
		}
		s = append(s, v)
	}
	return strings.Join(s, ", ")
}

// Describe says where steps for arch run, without connecting: the daemon's
// address and whether arch is its native platform or emulated by QEMU. Before the
// first connection the address is the one that would be tried first (a socket
// file that exists), and a local daemon's native platform is this machine's.
func (b *BuildKit) Describe(arch lambda.Arch) string {
	where, native := b.predict(arch)
	plat := arch.Platform()
	switch {
	case native == "":
		return fmt.Sprintf("%s (%s)", where, plat)
	case native == arch.OCI():
		return fmt.Sprintf("%s (%s, native)", where, plat)
	}
	return fmt.Sprintf("%s (%s, emulated by QEMU)", where, plat)
}

// predict returns the address for arch and the daemon's native architecture
// ("" when unknown).
func (b *BuildKit) predict(arch lambda.Arch) (where, native string) {
	key := "auto"
	t, explicit := explicitTarget(&b.opts, b.sys.getenv, arch)
	if explicit {
		key = t.slotKey()
	}
	b.mu.Lock()
	sl := b.slots[key]
	b.mu.Unlock()
	if sl != nil && sl.mu.TryLock() {
		c := sl.conn
		sl.mu.Unlock()
		if c != nil {
			if len(c.platforms) > 0 {
				return c.t.String(), c.platforms[0].Architecture
			}
			if c.t.local() {
				return c.t.String(), nativeArch()
			}
			return c.t.String(), ""
		}
	}
	if explicit {
		if t.local() {
			return t.String(), nativeArch()
		}
		return t.String(), ""
	}
	if _, err := os.Stat(DefaultSocket); err == nil {
		return "unix://" + DefaultSocket, nativeArch()
	}
	if sock, _ := dockerSocket(b.sys.getenv); sock != "" {
		if _, err := os.Stat(sock); err == nil {
			return "docker unix://" + sock, nativeArch()
		}
	}
	if b.opts.CacheDir != "" {
		if _, err := b.sys.lookPath("buildkitd"); err == nil {
			return "private buildkitd at unix://" + privateSocket(filepath.Join(b.opts.CacheDir, "buildkitd")), nativeArch()
		}
	}
	return "no BuildKit daemon found yet", nativeArch()
}

// Close closes the connections and stops a private daemon.
func (b *BuildKit) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	slots := b.slots
	caDir := b.caDir
	b.mu.Unlock()
	var errs []error
	for _, sl := range slots {
		sl.mu.Lock()
		if sl.conn != nil {
			errs = append(errs, sl.conn.close())
			sl.conn = nil
		}
		sl.mu.Unlock()
	}
	if caDir != "" {
		errs = append(errs, os.RemoveAll(caDir))
	}
	return errors.Join(errs...)
}

// attachables are the session services every solve offers: registry credentials
// from the Docker config (~/.docker/config.json), as buildctl and buildx do.
func (b *BuildKit) attachables() []session.Attachable {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.auth == nil {
		cfg := config.LoadDefaultConfigFile(io.Discard)
		b.auth = authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: authprovider.LoadAuthConfig(cfg),
		})
	}
	return []session.Attachable{b.auth}
}

// Run runs one step and exports its Output folder into Dest.
func (b *BuildKit) Run(ctx context.Context, s *Step) error {
	if err := checkStep(s); err != nil {
		return err
	}
	img, err := ParseImage(s.Image, "")
	if err != nil {
		return fmt.Errorf("step %q: %w", s.Name, err)
	}
	caDir, err := b.hostCAFolder()
	if err != nil {
		return fmt.Errorf("step %q: %w", s.Name, err)
	}
	c, err := b.connect(ctx, s.Arch)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("step %q (%s): %w", s.Name, s.Arch, err)
	}
	req, err := compile(ctx, s, img, compileOpts{
		resolver: &metaResolver{ctx: ctx, b: b, c: c},
		caDir:    caDir,
		proxy:    b.proxy,
		rootfsSession: func(name, dir string) (string, error) {
			return c.rootfsSession(b.sharedKey, name, dir)
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("step %q (%s): %w", s.Name, s.Arch, err)
	}
	return b.solve(ctx, c, s, req)
}

func (b *BuildKit) solve(ctx context.Context, c *conn, s *Step, req *request) error {
	locals := map[string]fsutil.FS{}
	for name, dir := range req.locals {
		fs, err := localFS(dir)
		if err != nil {
			return fmt.Errorf("step %q: %w", s.Name, err)
		}
		locals[name] = fs
	}
	stores := map[string]content.Store{}
	for id, dir := range req.oci {
		cs, err := contentlocal.NewStore(dir)
		if err != nil {
			return fmt.Errorf("step %q: oci-layout %s: %w", s.Name, dir, err)
		}
		stores[id] = cs
	}
	attach := b.attachables()
	if len(req.secrets) > 0 {
		store, err := secretsprovider.NewStore(req.secrets)
		if err != nil {
			return fmt.Errorf("step %q: secret: %w", s.Name, err)
		}
		attach = append(attach, secretsprovider.NewSecretProvider(store))
	}
	if err := os.MkdirAll(s.Dest, 0o755); err != nil {
		return fmt.Errorf("step %q: %w", s.Name, err)
	}
	im, ex := cacheFor(b.cacheFrom, b.cacheTo, stepCacheTag(s.Name, s.Arch))
	unlock := b.lockExports(localCacheDests(ex))
	defer unlock()

	opt := client.SolveOpt{
		Exports:      []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: s.Dest}},
		LocalMounts:  locals,
		OCIStores:    stores,
		CacheImports: im,
		CacheExports: ex,
		Session:      attach,
		SharedKey:    b.sharedKey,
	}
	tail := newLogTail(tailLines)
	statusCh := make(chan *client.SolveStatus)
	displayDone := make(chan error, 1)
	go func() { displayDone <- b.display(statusCh, tail) }()
	_, err := c.c.Solve(ctx, req.def, opt, statusCh) // closes statusCh
	derr := <-displayDone
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return newStepError(s, err, tail)
	}
	if derr != nil {
		return fmt.Errorf("step %q: progress display: %w", s.Name, derr)
	}
	// The local exporter can leave the export root at 0700.
	if err := os.Chmod(s.Dest, 0o755); err != nil {
		return fmt.Errorf("step %q: %w", s.Name, err)
	}
	return nil
}

// display shows the solve's progress and keeps the last lines of every vertex's
// output for the error of a failing step. It reads ch until Solve closes it, also
// when the run is cancelled, so Solve never blocks on it.
func (b *BuildKit) display(ch chan *client.SolveStatus, tail *logTail) error {
	fwd, detach, err := b.disp.attach()
	if err != nil {
		for ss := range ch {
			tail.add(ss)
		}
		return err
	}
	for ss := range ch {
		tail.add(ss)
		fwd <- ss
	}
	return detach()
}

// lockExports serialises solves that export cache to the same local folder:
// BuildKit's client updates the folder's index.json under a lock it only tries
// once, so two solves finishing together would fail.
func (b *BuildKit) lockExports(dirs []string) func() {
	sort.Strings(dirs)
	var locks []*sync.Mutex
	b.mu.Lock()
	for i, d := range dirs {
		if i > 0 && dirs[i-1] == d {
			continue
		}
		l := b.exportLocks[d]
		if l == nil {
			l = &sync.Mutex{}
			b.exportLocks[d] = l
		}
		locks = append(locks, l)
	}
	b.mu.Unlock()
	for _, l := range locks {
		l.Lock()
	}
	return func() {
		for i := len(locks) - 1; i >= 0; i-- {
			locks[i].Unlock()
		}
	}
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// NativeArch is the CPU of the daemon that runs arch's steps: its first
// platform, or this machine's for a local daemon that lists none.
func (b *BuildKit) NativeArch(ctx context.Context, arch lambda.Arch) (lambda.Arch, error) {
	c, err := b.connect(ctx, arch)
	if err != nil {
		return "", err
	}
	native := ""
	if len(c.platforms) > 0 {
		native = c.platforms[0].Architecture
	} else if c.t.local() {
		native = nativeArch()
	}
	switch native {
	case "amd64":
		return lambda.X86_64, nil
	case "arm64":
		return lambda.ARM64, nil
	}
	return "", fmt.Errorf("BuildKit at %s: unknown native platform %q", c.t, native)
}
