// Image resolution: the digest and config an image reference stands for, asked of
// the daemon once per engine.

package engine

import (
	"context"
	"fmt"
	"runtime"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/layerpack/layerpack/lambda"
)

type resolvedImage struct {
	ref    string
	digest digest.Digest
	config []byte
}

// ImageDigest identifies the image a reference resolves to for arch:
//   - docker-image: the digest the daemon resolves the reference to (it connects);
//   - oci-layout: the digest index.json gives for the tag;
//   - rootfs: a fingerprint of the folder's package databases and release file
//     (see rootfsFingerprint), "sha256:..." like the others.
func (b *BuildKit) ImageDigest(ctx context.Context, image string, arch lambda.Arch) (string, error) {
	img, err := ParseImage(image, "")
	if err != nil {
		return "", err
	}
	switch img.Kind {
	case KindRootfs:
		return rootfsFingerprint(img.Dir)
	case KindOCILayout:
		desc, err := ociLayoutDesc(img.Dir, img.Tag)
		if err != nil {
			return "", err
		}
		return desc.Digest.String(), nil
	}
	c, err := b.connect(ctx, arch)
	if err != nil {
		return "", err
	}
	p := ocispecs.Platform{OS: "linux", Architecture: arch.OCI()}
	r, err := b.resolveImage(ctx, c, normalizeRef(img.Ref), p)
	if err != nil {
		return "", err
	}
	return r.digest.String(), nil
}

func normalizeRef(ref string) string {
	if r, err := reference.ParseNormalizedNamed(ref); err == nil {
		return reference.TagNameOnly(r).String()
	}
	return ref
}

// resolveImage asks the daemon for an image's digest and config (through a
// gateway build, so the daemon's registry settings and credentials apply). The
// answer is kept for the engine's life, so every step of a run uses the same image.
func (b *BuildKit) resolveImage(ctx context.Context, c *conn, ref string, p ocispecs.Platform) (resolvedImage, error) {
	key := c.t.Addr + "\x00" + ref + "\x00" + p.OS + "/" + p.Architecture
	b.mu.Lock()
	r, ok := b.images[key]
	b.mu.Unlock()
	if ok {
		return r, nil
	}
	_, err := c.c.Build(ctx, client.SolveOpt{Session: b.attachables(), SharedKey: b.sharedKey}, "layerpack",
		func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
			ref2, dgst, cfg, err := gw.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
				LogName:  "resolve " + ref + " for " + p.OS + "/" + p.Architecture,
				ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &p},
			})
			if err != nil {
				return nil, err
			}
			r = resolvedImage{ref: ref2, digest: dgst, config: cfg}
			return gateway.NewResult(), nil
		}, nil)
	if err != nil {
		if ctx.Err() != nil {
			return resolvedImage{}, ctx.Err()
		}
		return resolvedImage{}, fmt.Errorf("resolve image %s for %s/%s: %w", ref, p.OS, p.Architecture, err)
	}
	b.mu.Lock()
	b.images[key] = r
	b.mu.Unlock()
	return r, nil
}

// metaResolver lets llb.Image resolve through resolveImage with the step's context.
type metaResolver struct {
	ctx context.Context
	b   *BuildKit
	c   *conn
}

func (m *metaResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	p := ocispecs.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		p = *opt.ImageOpt.Platform
	}
	r, err := m.b.resolveImage(m.ctx, m.c, ref, p)
	return r.ref, r.digest, r.config, err
}
