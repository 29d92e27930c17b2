package engine

import (
	"testing"

	"github.com/layerpack/layerpack/lambda"
)

func TestParseImage(t *testing.T) {
	tests := []struct {
		ref, base string
		want      Image
		err       string
	}{
		{ref: "public.ecr.aws/sam/build-python3.12:latest-arm64",
			want: Image{Kind: KindDockerImage, Ref: "public.ecr.aws/sam/build-python3.12:latest-arm64"}},
		{ref: "docker-image://debian:bookworm", want: Image{Kind: KindDockerImage, Ref: "debian:bookworm"}},
		{ref: "debian@sha256:" + sixtyFourHex, want: Image{Kind: KindDockerImage, Ref: "debian@sha256:" + sixtyFourHex}},
		{ref: "oci-layout:///srv/images/base", want: Image{Kind: KindOCILayout, Ref: "oci-layout:///srv/images/base", Dir: "/srv/images/base"}},
		{ref: "oci-layout:///srv/images/base:v1", want: Image{Kind: KindOCILayout, Ref: "oci-layout:///srv/images/base:v1", Dir: "/srv/images/base", Tag: "v1"}},
		{ref: "oci-layout://images/base:v1", base: "/work/proj",
			want: Image{Kind: KindOCILayout, Ref: "oci-layout:///work/proj/images/base:v1", Dir: "/work/proj/images/base", Tag: "v1"}},
		{ref: "oci-layout:///a:b/base", want: Image{Kind: KindOCILayout, Ref: "oci-layout:///a:b/base", Dir: "/a:b/base"}},
		{ref: "rootfs:///var/cache/rootfs-arm64/", want: Image{Kind: KindRootfs, Ref: "rootfs:///var/cache/rootfs-arm64", Dir: "/var/cache/rootfs-arm64"}},
		{ref: "rootfs://../rootfs", base: "/work/proj/conf",
			want: Image{Kind: KindRootfs, Ref: "rootfs:///work/proj/rootfs", Dir: "/work/proj/rootfs"}},

		{ref: "", err: `build image "": empty or surrounded by spaces`},
		{ref: "Debian:Bookworm", err: `build image "Debian:Bookworm": not a registry image reference: invalid reference format: repository name (library/Debian) must be lowercase`},
		{ref: "rootfs://rel/dir", err: `build image "rootfs://rel/dir": relative folder "rel/dir" and no base folder to resolve it against`},
		{ref: "rootfs://", err: `build image "rootfs://": no folder after rootfs://`},
		{ref: "oci-layout:///srv/x:", err: `build image "oci-layout:///srv/x:": empty tag after ':'`},
		{ref: "git://github.com/x/y", err: `build image "git://github.com/x/y": unknown scheme "git://" (want docker-image://, oci-layout:// or rootfs://)`},
	}
	for _, tt := range tests {
		got, err := ParseImage(tt.ref, tt.base)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseImage(%q) error = %v, want %s", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseImage(%q): %v", tt.ref, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseImage(%q) = %+v, want %+v", tt.ref, got, tt.want)
		}
		// The canonical form parses to the same image.
		again, err := ParseImage(got.String(), "")
		if err != nil || again != got {
			t.Errorf("ParseImage(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
}

const sixtyFourHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestImageFor(t *testing.T) {
	images := map[string]string{
		"python3.12": "rootfs:///images/py312-{arch}",
		"default":    "docker-image://example.com/build:{arch}",
	}
	tests := []struct {
		name     string
		images   map[string]string
		layer    string
		runtimes []string
		arch     lambda.Arch
		want     string
	}{
		{"layer wins", images, "rootfs:///mine-{arch}", []string{"python3.12"}, lambda.ARM64, "rootfs:///mine-arm64"},
		{"first runtime", images, "", []string{"python3.12", "nodejs20.x"}, lambda.X86_64, "rootfs:///images/py312-x86_64"},
		{"only the first runtime counts", images, "", []string{"nodejs20.x", "python3.12"}, lambda.ARM64, "docker-image://example.com/build:arm64"},
		{"default", images, "", []string{"ruby3.3"}, lambda.ARM64, "docker-image://example.com/build:arm64"},
		{"SAM image", nil, "", []string{"python3.13"}, lambda.ARM64, "public.ecr.aws/sam/build-python3.13:latest-arm64"},
		{"SAM image x86_64", map[string]string{"nodejs22.x": ""}, "", []string{"nodejs22.x"}, lambda.X86_64, "public.ecr.aws/sam/build-nodejs22.x:latest-x86_64"},
		{"nothing", nil, "", nil, lambda.X86_64, ""},
		{"default without runtimes", images, "", nil, lambda.X86_64, "docker-image://example.com/build:x86_64"},
	}
	for _, tt := range tests {
		if got := ImageFor(tt.images, tt.layer, tt.runtimes, tt.arch); got != tt.want {
			t.Errorf("%s: ImageFor = %q, want %q", tt.name, got, tt.want)
		}
	}
}
