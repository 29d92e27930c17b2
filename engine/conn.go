package engine

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/layerpack/layerpack/lambda"
)

// target is one way to reach a daemon.
type target struct {
	Via    string // what the user knows it as: "--buildkit-addr", "BUILDKIT_HOST", ...
	Addr   string // BuildKit address (unix://, tcp://, ...); for Docker, the Docker socket as unix://
	Docker string // Docker socket path when this is Docker's built-in BuildKit
	TLS    TLS    // for tcp:// addresses
}

func (t target) String() string {
	if t.Docker != "" {
		return "docker " + t.Addr
	}
	if d := t.TLS.describe(); d != "" {
		return t.Addr + " (" + d + ")"
	}
	return describeAddr(t.Addr)
}

// slotKey tells connections apart: the same address with other TLS settings is
// another connection.
func (t target) slotKey() string {
	if t.TLS.IsZero() {
		return t.Addr
	}
	return t.Addr + "\x00" + t.TLS.CA + "\x00" + t.TLS.Cert + "\x00" + t.TLS.ServerName
}

// local reports whether the daemon runs on this machine, so that its native
// platform is runtime.GOARCH.
func (t target) local() bool {
	return t.Docker != "" || strings.HasPrefix(t.Addr, "unix://")
}

// conn is an open connection to a daemon.
type conn struct {
	t         target
	c         *client.Client
	platforms []ocispecs.Platform // of the daemon's first worker; the first is its native platform
	daemon    *daemon             // the private daemon this engine started, if any
	dialer    session.Dialer      // opens client sessions

	sessMu   sync.Mutex
	sess     *session.Session // long-lived session offering root filesystems (see rootfsSession)
	sessDirs *hostDirs
	sessStop context.CancelFunc
	sessDone chan struct{}
}

func (c *conn) close() error {
	var errs []error
	c.sessMu.Lock()
	if c.sess != nil {
		c.sessStop()
		errs = append(errs, c.sess.Close())
		<-c.sessDone
		c.sess = nil
	}
	c.sessMu.Unlock()
	if c.c != nil {
		errs = append(errs, c.c.Close())
	}
	if c.daemon != nil {
		errs = append(errs, c.daemon.stop())
	}
	return errors.Join(errs...)
}

// supports reports whether the daemon can run containers for arch (natively or
// through QEMU). An empty platform list is taken as "unknown" and accepted.
func (c *conn) supports(arch lambda.Arch) bool {
	if len(c.platforms) == 0 {
		return true
	}
	for _, p := range c.platforms {
		if p.OS == "linux" && p.Architecture == arch.OCI() {
			return true
		}
	}
	return false
}

// connectClient opens a BuildKit client for t and checks, with ListWorkers, that
// a daemon answers. gRPC dials lazily, so without that call nothing would be known.
func connectClient(ctx context.Context, t target) (*conn, error) {
	opts := t.TLS.clientOpts()
	addr := t.Addr
	if t.Docker != "" {
		opts = append(opts,
			client.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return dockerHijack(ctx, t.Docker, "/grpc", "h2c", nil)
			}),
			client.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
				return dockerHijack(ctx, t.Docker, "/session", proto, meta)
			}))
		addr = "" // the dialers above ignore it
	}
	c, err := client.New(ctx, addr, opts...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	ws, err := c.ListWorkers(pctx)
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, diagnose(ctx, t, err)
	}
	if len(ws) == 0 {
		c.Close()
		return nil, errors.New("the daemon has no workers")
	}
	dialer := c.Dialer()
	if t.Docker != "" {
		dialer = func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return dockerHijack(ctx, t.Docker, "/session", proto, meta)
		}
	}
	return &conn{t: t, c: c, platforms: ws[0].Platforms, dialer: dialer}, nil
}

// rootfsSession returns the id of a client session that lives as long as the
// connection and offers the folder dir as the local context name.
//
// A local source's cache key is its session's id. With a new session per solve,
// as BuildKit's client makes by default, every step would send the whole root
// filesystem's metadata again (about 2.5 s for 48,000 files) before BuildKit
// finds that nothing changed. Pinned to this session, the folder is synced once
// per engine and later steps find the source in the cache. A folder changed
// while the engine is open is therefore not seen until the next run.
func (c *conn) rootfsSession(sharedKey, name, dir string) (string, error) {
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	if c.sess == nil {
		s, err := session.NewSession(context.Background(), sharedKey)
		if err != nil {
			return "", err
		}
		c.sessDirs = &hostDirs{m: map[string]fsutil.FS{}}
		s.Allow(filesync.NewFSSyncProvider(c.sessDirs))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.Run(ctx, c.dialer)
		}()
		c.sess, c.sessStop, c.sessDone = s, cancel, done
	}
	if err := c.sessDirs.add(name, dir); err != nil {
		return "", err
	}
	return c.sess.ID(), nil
}

// hostDirs is a filesync.DirSource that folders can be added to.
type hostDirs struct {
	mu sync.Mutex
	m  map[string]fsutil.FS
}

func (h *hostDirs) LookupDir(name string) (fsutil.FS, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fs, ok := h.m[name]
	return fs, ok
}

func (h *hostDirs) add(name, dir string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[name]; ok {
		return nil
	}
	fs, err := localFS(dir)
	if err != nil {
		return err
	}
	h.m[name] = fs
	return nil
}

// localFS is a host folder as BuildKit's client offers it: owners reset to root.
func localFS(dir string) (fsutil.FS, error) {
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, err
	}
	return fsutil.NewFilterFS(fs, &fsutil.FilterOpt{Map: func(_ string, st *fstypes.Stat) fsutil.MapResult {
		st.Uid, st.Gid = 0, 0
		return fsutil.MapResultKeep
	}})
}
