package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/layerpack/layerpack/ghactions"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/manifest"
	"github.com/layerpack/layerpack/ociimage"
	"github.com/layerpack/layerpack/verify"
	"github.com/layerpack/layerpack/zipper"
)

// imageCmd builds the layers as usual (same flags, same cache), then makes the
// container image version of each: <out>/<layer>.oci, and with --push a registry
// copy. --from-zip skips the build and makes the image of a zip made elsewhere.
type imageCmd struct {
	buildFlags
	Push     string   `help:"Push each image to REF (REPO[:TAG]; no tag: latest); {layer} becomes the layer name (required with several layers)." placeholder:"REF"`
	Insecure bool     `help:"Allow plain HTTP to a registry that is not on a loopback address."`
	FromZip  string   `help:"Make the image of this zip instead of building (verified first); one --arch." placeholder:"FILE" type:"existingfile"`
	Name     string   `help:"With --from-zip: the layer name (default: from the manifest beside the zip, else the file name)." placeholder:"NAME"`
	Runtime  []string `help:"With --from-zip: a compatible runtime, for the checks and the label; repeatable (default: from the manifest beside the zip)." placeholder:"R"`
}

var imageLayerName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,140}$`)

func (c *imageCmd) Run(e *env) error {
	if c.Push != "" {
		// A bad reference is a usage error before anything is built.
		if _, err := ociimage.ParseRef(strings.ReplaceAll(c.Push, "{layer}", "x"), c.Insecure); err != nil {
			return usageError{fmt.Errorf("--push: %w", err)}
		}
	}
	// Like build and publish: human lines to stderr with --json, one document on
	// stdout (the build's layers, when there was a build, and the images).
	b := &buildRun{cfgPath: c.Config, command: "image"}
	human := *e
	if c.JSON {
		human.stdout = e.stderr
	}
	var images []manifest.Image
	var err error
	if c.FromZip != "" {
		images, err = c.fromZip(&human)
	} else {
		images, err = c.fromBuild(&human, b)
	}
	b.images = images
	if err == nil {
		err = ghactions.Outputs(e.getenv, imageOutputs(images))
	}
	return b.finish(e, c.JSON, err)
}

// imageOutputs are the GitHub Actions outputs of the images made.
func imageOutputs(images []manifest.Image) map[string]string {
	kv := map[string]string{}
	for _, im := range images {
		kv[im.Name+"-image-digest"] = im.IndexDigest
		for _, m := range im.Manifests {
			kv[im.Name+"-image-"+m.Architecture+"-digest"] = m.Digest
		}
		if im.Pushed != "" {
			kv[im.Name+"-image-ref"] = im.Pushed
		}
	}
	return kv
}

func (c *imageCmd) fromBuild(e *env, b *buildRun) ([]manifest.Image, error) {
	if c.Name != "" || len(c.Runtime) > 0 {
		return nil, usageError{fmt.Errorf("--name and --runtime go with --from-zip; a config's layers have their own")}
	}
	if c.Push != "" && !strings.Contains(c.Push, "{layer}") {
		// Checked before building: one reference cannot hold several layers.
		_, items, err := c.load()
		if err != nil {
			return nil, err
		}
		var names []string
		seen := map[string]bool{}
		for _, it := range items {
			if !seen[it.Layer.Name] {
				seen[it.Layer.Name] = true
				names = append(names, it.Layer.Name)
			}
		}
		if len(names) > 1 {
			return nil, usageError{fmt.Errorf("--push %s: several layers (%s) need {layer} in the reference", c.Push, strings.Join(names, ", "))}
		}
	}
	epoch, err := zipper.Epoch(e.getenv)
	if err != nil {
		return nil, usageError{err}
	}
	if err := c.build(e, b); err != nil {
		return nil, err
	}
	// One image per layer, over the architectures built, in plan order.
	var order []string
	srcs := map[string][]ociimage.Source{}
	metas := map[string]ociimage.Meta{}
	for _, r := range b.results {
		l := r.Item.Layer
		if _, ok := srcs[l.Name]; !ok {
			order = append(order, l.Name)
			metas[l.Name] = ociimage.Meta{Name: l.Name, Description: l.Description, License: l.LicenseInfo, Runtimes: l.CompatibleRuntimes}
		}
		srcs[l.Name] = append(srcs[l.Name], ociimage.Source{Arch: r.Item.Target.Arch, Zip: r.Path})
	}
	var images []manifest.Image
	for _, name := range order {
		im, err := c.makeImage(e, filepath.Join(b.out, name+".oci"), b.out, srcs[name], metas[name], epoch)
		if err != nil {
			return nil, err
		}
		images = append(images, *im)
	}
	mp := filepath.Join(b.out, manifest.FileName)
	m, err := manifest.Read(mp)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", mp, err)
	}
	f := ociimage.CurrentFormat()
	m.ImageFormat = &manifest.ImageFormat{Encoder: f.Encoder, Level: f.Level, Tar: f.Tar}
	m.Images = images
	if err := m.Write(mp); err != nil {
		return nil, fmt.Errorf("writing %s: %w", mp, err)
	}
	return images, nil
}

func (c *imageCmd) fromZip(e *env) ([]manifest.Image, error) {
	if len(c.Layers) > 0 {
		return nil, usageError{fmt.Errorf("--from-zip makes the image of one zip: no LAYER arguments")}
	}
	if len(c.Arch) > 1 {
		return nil, usageError{fmt.Errorf("--from-zip %s: one --arch (the zip's)", c.FromZip)}
	}
	epoch, err := zipper.Epoch(e.getenv)
	if err != nil {
		return nil, usageError{err}
	}
	z := c.FromZip
	entry := manifest.TargetOf(z).Entry
	var arch lambda.Arch
	if len(c.Arch) == 1 {
		arch = lambda.Arch(c.Arch[0])
	} else if entry != nil {
		arch = lambda.Arch(entry.Architecture)
	}
	if arch == "" {
		return nil, usageError{fmt.Errorf("--from-zip %s: --arch x86_64 or --arch arm64 is needed (no manifest beside the zip says)", z)}
	}
	meta := ociimage.Meta{Name: c.Name, Runtimes: c.Runtime}
	if entry != nil {
		if meta.Name == "" {
			meta.Name = entry.Name
		}
		if meta.Runtimes == nil {
			meta.Runtimes = entry.CompatibleRuntimes
		}
		meta.Description, meta.License = entry.Description, entry.LicenseInfo
	}
	if meta.Name == "" {
		meta.Name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(z), ".zip"), "-"+string(arch))
	}
	if !imageLayerName.MatchString(meta.Name) {
		return nil, usageError{fmt.Errorf("--from-zip %s: layer name %q: want 1-140 of A-Za-z0-9_- (set --name)", z, meta.Name)}
	}
	var rts []lambda.Runtime
	for _, id := range meta.Runtimes {
		r, ok := lambda.LookupRuntime(id)
		if !ok {
			return nil, usageError{fmt.Errorf("--runtime: unknown runtime %q (known: %s)", id, strings.Join(lambda.RuntimeIDs(), ", "))}
		}
		rts = append(rts, r)
	}
	// verify's checks first: a zip Lambda would refuse, or one with unsafe names,
	// makes no image. The tar writer checks names and links again on its own.
	rep, err := verify.Zip(z, verify.Options{Arch: arch, Runtimes: rts})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", z, err)
	}
	if rep.Err() != nil {
		fmt.Fprintf(e.stderr, "%s: FAILED\n", z)
		rep.Write(e.stderr)
		fmt.Fprintf(e.stderr, "layerpack: %s: no image made: the zip fails the checks\n", z)
		return nil, errFailed
	}
	out := c.Out
	if out == "" {
		out = "dist"
	}
	if out, err = filepath.Abs(out); err != nil {
		return nil, err
	}
	im, err := c.makeImage(e, filepath.Join(out, meta.Name+".oci"), out, []ociimage.Source{{Arch: arch, Zip: z}}, meta, epoch)
	if err != nil {
		return nil, err
	}
	return []manifest.Image{*im}, nil
}

// makeImage writes one layer's image and pushes it when asked. Layout paths are
// recorded relative to out (the manifest's folder).
func (c *imageCmd) makeImage(e *env, dir, out string, srcs []ociimage.Source, meta ociimage.Meta, epoch time.Time) (*manifest.Image, error) {
	r, err := ociimage.WriteLayout(dir, srcs, meta, epoch)
	if err != nil {
		return nil, fmt.Errorf("layer %s: image: %w", meta.Name, err)
	}
	im := &manifest.Image{Name: meta.Name, IndexDigest: r.IndexDigest.String(), Layout: filepath.Base(dir)}
	if rel, err := filepath.Rel(out, dir); err == nil {
		im.Layout = filepath.ToSlash(rel)
	}
	var archs []string
	for _, m := range r.Manifests {
		im.Manifests = append(im.Manifests, manifest.ImageManifest{
			Architecture: string(m.Arch), Digest: m.Digest.String(), LayerDigest: m.LayerDigest.String(),
			DiffID: m.DiffID.String(), CodeSha256: m.CodeSha256,
		})
		archs = append(archs, string(m.Arch))
	}
	w := e.stdout
	if c.JSON {
		w = e.stderr
	}
	fmt.Fprintf(w, "%s  %s  %s\n", display(dir), r.IndexDigest, strings.Join(archs, " "))
	if c.Push == "" {
		return im, nil
	}
	ref := strings.ReplaceAll(c.Push, "{layer}", meta.Name)
	pr, err := ociimage.Push(e.ctx, dir, r.IndexDigest, ref, ociimage.PushOptions{Insecure: c.Insecure})
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", meta.Name, err)
	}
	im.Pushed, im.Tag = pr.Ref, pr.Tag
	fmt.Fprintf(w, "pushed %s  (%s; %d blobs uploaded, %d blobs or manifests already there)\n", pr.Ref, pr.Tag, pr.Uploaded, pr.Present)
	return im, nil
}
