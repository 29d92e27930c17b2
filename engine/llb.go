package engine

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/layerpack/layerpack/lambda"
)

// request is a compiled step: its LLB and what the client session must offer.
type request struct {
	def     *llb.Definition
	locals  map[string]string // local context name -> host folder
	oci     map[string]string // OCI store id -> layout folder
	secrets []secretsprovider.Source
}

type compileOpts struct {
	resolver llb.ImageMetaResolver // resolves docker-image configs (through the daemon)
	caDir    string                // folder holding only the host CA bundle and its trust store, or ""
	proxy    *llb.ProxyEnv
	// rootfsSession, when set, returns the id of a long-lived session offering a
	// root filesystem folder (see conn.rootfsSession).
	rootfsSession func(name, dir string) (string, error)
}

// Names of local contexts. Every step using the same host folder uses the same
// name, so BuildKit's file sync reuses what it already has and sends only changes.
func rootfsLocal(dir string) string { return "rootfs-" + shortHash(dir) }
func mountLocal(src string) string  { return "mount-" + shortHash(src) }

const hostCALocal = "host-ca"

// CacheID is the BuildKit cache mount id of a cache key for an architecture.
func CacheID(key string, arch lambda.Arch) string { return "layerpack-" + key + "-" + string(arch) }

// compile turns a step into LLB:
//
//	base image (platform of Step.Arch)
//	  -> exec `/bin/sh -e -c SCRIPT` in Step.Dir with the step's environment,
//	     read-only Mounts, per-architecture cache mounts, secrets,
//	     the host CA folder, and an empty mount at Step.Output
//	  -> the Output mount alone is the result (exported to Step.Dest).
func compile(ctx context.Context, s *Step, img Image, o compileOpts) (*request, error) {
	p := ocispecs.Platform{OS: "linux", Architecture: s.Arch.OCI()}
	req := &request{locals: map[string]string{}, oci: map[string]string{}}

	var base llb.State
	hasConfig := true
	switch img.Kind {
	case KindDockerImage:
		base = llb.Image(img.Ref,
			llb.Platform(p),
			llb.WithMetaResolver(o.resolver), // applies the image's ENV (PATH...) and WORKDIR
			llb.ResolveDigest(true),          // pins the digest the config came from
			llb.WithCustomName(fmt.Sprintf("[%s] image %s", s.Arch, img.Ref)))
	case KindOCILayout:
		desc, err := ociLayoutDesc(img.Dir, img.Tag)
		if err != nil {
			return nil, err
		}
		cfg, err := ociImageConfig(img.Dir, desc, p.Architecture)
		if err != nil {
			return nil, err
		}
		id := "layerpack-oci-" + shortHash(img.Dir)
		req.oci[id] = img.Dir
		// The daemon wants a full reference (it parses it as a URL path); only its
		// digest matters, the store id says where the content is.
		base = llb.OCILayout("docker.io/library/"+id+"@"+desc.Digest.String(),
			llb.OCIStore("", id), // "": the solve's own session holds the store
			llb.Platform(p),
			llb.WithCustomName(fmt.Sprintf("[%s] image %s", s.Arch, img.Ref)))
		if base, err = base.WithImageConfig(cfg); err != nil {
			return nil, fmt.Errorf("%s: image config: %w", img.Ref, err)
		}
	case KindRootfs:
		if fi, err := os.Stat(img.Dir); err != nil {
			return nil, fmt.Errorf("%s: %w", img.Ref, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("%s: not a folder", img.Ref)
		}
		name := rootfsLocal(img.Dir)
		req.locals[name] = img.Dir // also offered by the solve's session: BuildKit's fallback
		// proc, sys and dev are covered by the container's own mounts; skipping
		// their content also keeps a host /proc mounted into the folder out.
		lo := []llb.LocalOption{
			llb.SharedKeyHint(name),
			llb.ExcludePatterns([]string{"proc/*", "sys/*", "dev/*"}),
			llb.WithCustomName("[internal] sync rootfs " + img.Dir),
		}
		if o.rootfsSession != nil {
			id, err := o.rootfsSession(name, img.Dir)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", img.Ref, err)
			}
			lo = append(lo, llb.SessionID(id))
		}
		src := llb.Local(name, lo...)
		// A local source's cache key is tied to the client session, so an exec on
		// it directly would never be cached across runs. A copy is keyed by the
		// content it copies, which makes the whole step content-addressed.
		base = llb.Scratch().File(
			llb.Copy(src, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true}),
			llb.WithCustomName("[internal] rootfs "+img.Dir))
		hasConfig = false
	default:
		return nil, fmt.Errorf("%s: unknown image kind %q", img.Ref, img.Kind)
	}

	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	st := base.Platform(p).Dir(dir)
	trust := o.caDir != ""
	var javaOpts string
	if trust && hasConfig {
		// Resolving the config here does not resolve it twice: the image
		// state keeps the result for Marshal.
		v, _, err := base.GetEnv(ctx, "JAVA_TOOL_OPTIONS", llb.Platform(p))
		if err != nil {
			return nil, fmt.Errorf("%s: image config: %w", img.Ref, err)
		}
		javaOpts = v
	}
	for _, e := range stepEnv(s, hasConfig, trust, javaOpts) {
		st = st.AddEnv(e.Key, e.Value)
	}

	ro := []llb.RunOption{
		llb.Args([]string{"/bin/sh", "-e", "-c", s.Script}),
		llb.WithCustomName(fmt.Sprintf("[%s] %s", s.Arch, s.Name)),
		llb.AddMount(s.Output, llb.Scratch()),
	}
	if o.proxy != nil {
		ro = append(ro, llb.WithProxy(*o.proxy))
	}
	if s.NoCache {
		ro = append(ro, llb.IgnoreCache)
	}
	for _, m := range s.Mounts {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.Target, err)
		}
		name := mountLocal(m.Source)
		if fi.IsDir() {
			req.locals[name] = m.Source
			ro = append(ro, llb.AddMount(m.Target,
				llb.Local(name, llb.SharedKeyHint(name), llb.WithCustomName("[internal] sync "+m.Source)),
				llb.Readonly))
			continue
		}
		// A file: sync only it from its folder and mount it by its name.
		base := filepath.Base(m.Source)
		req.locals[name] = filepath.Dir(m.Source)
		ro = append(ro, llb.AddMount(m.Target,
			llb.Local(name, llb.SharedKeyHint(name), llb.FollowPaths([]string{base}), llb.WithCustomName("[internal] sync "+m.Source)),
			llb.SourcePath(base), llb.Readonly))
	}
	if o.caDir != "" {
		req.locals[hostCALocal] = o.caDir
		ro = append(ro, llb.AddMount(hostCADir,
			llb.Local(hostCALocal, llb.SharedKeyHint(hostCALocal), llb.WithCustomName("[internal] sync host CA bundle and trust store")),
			llb.Readonly))
	}
	for _, c := range s.Caches {
		sharing := llb.CacheMountShared
		if c.Locked {
			sharing = llb.CacheMountLocked
		}
		ro = append(ro, llb.AddMount(c.Target, llb.Scratch(), llb.AsPersistentCacheDir(CacheID(c.Key, s.Arch), sharing)))
	}
	for _, sec := range s.Secrets {
		opts := []llb.SecretOption{llb.SecretID(sec.ID)}
		if sec.Env != "" {
			opts = append(opts, llb.SecretAsEnvName(sec.Env))
		}
		if sec.Target != "" {
			ro = append(ro, llb.AddSecret(sec.Target, opts...))
		} else {
			ro = append(ro, llb.AddSecretWithDest(sec.ID, nil, opts...))
		}
		req.secrets = append(req.secrets, secretsprovider.Source{ID: sec.ID, FilePath: sec.Source})
	}

	out := st.Run(ro...).GetMount(s.Output)
	def, err := out.Marshal(ctx, llb.Platform(p))
	if err != nil {
		return nil, err
	}
	req.def = def
	return req, nil
}

// checkStep reports what is missing or malformed in a step, naming it.
func checkStep(s *Step) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("step %q: %s", s.Name, fmt.Sprintf(format, a...))
	}
	if s.Name == "" {
		return bad("no name")
	}
	if _, err := lambda.ParseArch(string(s.Arch)); err != nil {
		return bad("%v", err)
	}
	if s.Image == "" {
		return bad("no image")
	}
	if s.Script == "" {
		return bad("no script")
	}
	if s.Dir != "" && !path.IsAbs(s.Dir) {
		return bad("Dir %q is not an absolute container path", s.Dir)
	}
	if !path.IsAbs(s.Output) || path.Clean(s.Output) == "/" {
		return bad("Output %q must be an absolute container folder other than /", s.Output)
	}
	if s.Dest == "" {
		return bad("no Dest folder")
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Source) || !path.IsAbs(m.Target) {
			return bad("mount %q -> %q: both paths must be absolute", m.Source, m.Target)
		}
	}
	for _, c := range s.Caches {
		if c.Key == "" || !path.IsAbs(c.Target) {
			return bad("cache %q -> %q: needs a key and an absolute target", c.Key, c.Target)
		}
	}
	seen := map[string]bool{}
	for _, sec := range s.Secrets {
		if sec.ID == "" || sec.Source == "" {
			return bad("secret %q: needs an id and a source file", sec.ID)
		}
		if sec.Target == "" && sec.Env == "" {
			return bad("secret %q: needs a target path or an environment variable", sec.ID)
		}
		if sec.Target != "" && !path.IsAbs(sec.Target) {
			return bad("secret %q: target %q is not absolute", sec.ID, sec.Target)
		}
		if seen[sec.ID] {
			return bad("secret %q given twice", sec.ID)
		}
		seen[sec.ID] = true
	}
	return nil
}
