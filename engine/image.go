package engine

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"

	"github.com/layerpack/layerpack/lambda"
)

// Kinds of build image.
const (
	KindDockerImage = "docker-image" // a registry image, pulled by the daemon
	KindOCILayout   = "oci-layout"   // an OCI image layout folder on the host
	KindRootfs      = "rootfs"       // a root filesystem folder on the host
)

// Image is a parsed build-image reference.
type Image struct {
	Kind string // KindDockerImage, KindOCILayout or KindRootfs
	// Ref is the registry reference for a docker-image (as written, without the
	// docker-image:// prefix) and the canonical reference (String) otherwise.
	Ref string
	// Dir is the absolute host folder of an oci-layout or rootfs image.
	Dir string
	// Tag selects the image in an oci-layout's index.json ("" means the only
	// image, or the one tagged latest).
	Tag string
}

// String is the canonical reference, with an absolute folder: what Step.Image wants.
func (im Image) String() string {
	switch im.Kind {
	case KindOCILayout:
		if im.Tag != "" {
			return "oci-layout://" + im.Dir + ":" + im.Tag
		}
		return "oci-layout://" + im.Dir
	case KindRootfs:
		return "rootfs://" + im.Dir
	}
	return "docker-image://" + im.Ref
}

// ParseImage parses a build-image reference: docker-image://REF or a bare REF (a
// registry image), oci-layout://DIR[:TAG] or rootfs://DIR. A relative DIR is
// resolved against baseDir, the folder of the config file that names it.
func ParseImage(ref, baseDir string) (Image, error) {
	bad := func(format string, a ...any) (Image, error) {
		return Image{}, fmt.Errorf("build image %q: %s", ref, fmt.Sprintf(format, a...))
	}
	if strings.TrimSpace(ref) != ref || ref == "" {
		return bad("empty or surrounded by spaces")
	}
	scheme, rest, ok := strings.Cut(ref, "://")
	if !ok {
		scheme, rest = KindDockerImage, ref
	}
	switch scheme {
	case KindDockerImage:
		if _, err := reference.ParseNormalizedNamed(rest); err != nil {
			return bad("not a registry image reference: %v", err)
		}
		return Image{Kind: KindDockerImage, Ref: rest}, nil
	case KindOCILayout, KindRootfs:
		dir, tag := rest, ""
		if scheme == KindOCILayout {
			// The tag follows the last colon after the last slash: DIR can hold colons
			// in earlier elements, a tag cannot hold a slash.
			if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
				dir, tag = rest[:i], rest[i+1:]
				if tag == "" {
					return bad("empty tag after ':'")
				}
			}
		}
		if dir == "" {
			return bad("no folder after %s://", scheme)
		}
		if !filepath.IsAbs(dir) {
			if baseDir == "" {
				return bad("relative folder %q and no base folder to resolve it against", dir)
			}
			dir = filepath.Join(baseDir, dir)
		}
		dir = filepath.Clean(dir)
		im := Image{Kind: scheme, Dir: dir, Tag: tag}
		im.Ref = im.String()
		return im, nil
	}
	return bad("unknown scheme %q (want docker-image://, oci-layout:// or rootfs://)", scheme+"://")
}

// ImageFor picks the build image of a layer for one architecture: the layer's own
// image wins; then the [images] entry for the layer's first runtime; then
// [images] default; then the SAM build image of the first runtime. "{arch}" in the
// chosen value becomes the Lambda architecture name (x86_64 or arm64). It returns ""
// when nothing applies (no image anywhere and no runtime).
func ImageFor(images map[string]string, layerImage string, runtimes []string, arch lambda.Arch) string {
	pick := func() string {
		if layerImage != "" {
			return layerImage
		}
		if len(runtimes) > 0 {
			if v := images[runtimes[0]]; v != "" {
				return v
			}
		}
		if v := images["default"]; v != "" {
			return v
		}
		if len(runtimes) > 0 {
			return lambda.SAMBuildImage(runtimes[0], arch)
		}
		return ""
	}
	return strings.ReplaceAll(pick(), "{arch}", string(arch))
}
