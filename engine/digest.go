package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// OCI and Docker media types of indexes and manifests.
const (
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	annotationContainerd    = "io.containerd.image.name"
)

// ociLayoutDesc finds the descriptor in DIR/index.json for tag: the entry whose
// org.opencontainers.image.ref.name (or containerd image name) is tag; with no tag,
// the only entry, else the one tagged "latest".
func ociLayoutDesc(dir, tag string) (ocispecs.Descriptor, error) {
	dt, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return ocispecs.Descriptor{}, fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(dt, &idx); err != nil {
		return ocispecs.Descriptor{}, fmt.Errorf("oci-layout %s: index.json: %w", dir, err)
	}
	if tag == "" && len(idx.Manifests) == 1 {
		return idx.Manifests[0], nil
	}
	want := tag
	if want == "" {
		want = "latest"
	}
	var tags []string
	for _, m := range idx.Manifests {
		for _, k := range []string{ocispecs.AnnotationRefName, annotationContainerd} {
			v := m.Annotations[k]
			if v == "" {
				continue
			}
			tags = append(tags, v)
			if v == want || (k == annotationContainerd && strings.HasSuffix(v, ":"+want)) {
				return m, nil
			}
		}
	}
	if len(tags) == 0 {
		return ocispecs.Descriptor{}, fmt.Errorf("oci-layout %s: index.json has %d images and no tags; name one with oci-layout://DIR:TAG", dir, len(idx.Manifests))
	}
	return ocispecs.Descriptor{}, fmt.Errorf("oci-layout %s: no image tagged %q in index.json (tags: %s)", dir, want, strings.Join(tags, ", "))
}

// ociBlob reads and verifies a blob of the layout.
func ociBlob(dir string, d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	dt, err := os.ReadFile(filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded()))
	if err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	if d.Algorithm().FromBytes(dt) != d {
		return nil, fmt.Errorf("oci-layout %s: blob %s does not match its digest", dir, d)
	}
	return dt, nil
}

// ociImageConfig reads the image config for the platform architecture arch
// ("amd64", "arm64") under desc, following an index to the matching manifest.
func ociImageConfig(dir string, desc ocispecs.Descriptor, arch string) ([]byte, error) {
	for range 4 { // index -> manifest; nested indexes are rare
		dt, err := ociBlob(dir, desc.Digest)
		if err != nil {
			return nil, err
		}
		switch desc.MediaType {
		case ocispecs.MediaTypeImageIndex, mediaTypeDockerList:
			var idx ocispecs.Index
			if err := json.Unmarshal(dt, &idx); err != nil {
				return nil, fmt.Errorf("oci-layout %s: index %s: %w", dir, desc.Digest, err)
			}
			found := false
			var have []string
			for _, m := range idx.Manifests {
				if m.Platform == nil {
					continue
				}
				have = append(have, m.Platform.OS+"/"+m.Platform.Architecture)
				if m.Platform.OS == "linux" && m.Platform.Architecture == arch {
					desc, found = m, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("oci-layout %s: no linux/%s image in index %s (has %s)", dir, arch, desc.Digest, strings.Join(have, ", "))
			}
		case ocispecs.MediaTypeImageManifest, mediaTypeDockerManifest:
			var m ocispecs.Manifest
			if err := json.Unmarshal(dt, &m); err != nil {
				return nil, fmt.Errorf("oci-layout %s: manifest %s: %w", dir, desc.Digest, err)
			}
			cfg, err := ociBlob(dir, m.Config.Digest)
			if err != nil {
				return nil, err
			}
			var img ocispecs.Image
			if err := json.Unmarshal(cfg, &img); err != nil {
				return nil, fmt.Errorf("oci-layout %s: config %s: %w", dir, m.Config.Digest, err)
			}
			if img.Architecture != "" && img.Architecture != arch {
				return nil, fmt.Errorf("oci-layout %s: image %s is linux/%s, not linux/%s", dir, desc.Digest, img.Architecture, arch)
			}
			return cfg, nil
		default:
			return nil, fmt.Errorf("oci-layout %s: unsupported media type %q for %s", dir, desc.MediaType, desc.Digest)
		}
	}
	return nil, fmt.Errorf("oci-layout %s: indexes nested too deep", dir)
}

// rootfsFingerprintFiles are the files whose content identifies a root filesystem
// well enough for a cache key: what is installed and which release it is.
// Folders are hashed file by file (rpm databases are folders).
var rootfsFingerprintFiles = []string{
	"etc/os-release",
	"var/lib/dpkg/status",
	"var/lib/rpm",
	"usr/lib/sysimage/rpm",
	"lib/apk/db/installed",
}

// rootfsFingerprint is a cheap but honest identity of a root filesystem folder:
// sha256 over the package databases and release file (see rootfsFingerprintFiles).
// It changes whenever a package is installed, removed or upgraded, or the release
// changes; it does not see files changed by hand outside a package manager. A
// folder with none of those files is fingerprinted by a walk over every entry's
// path, mode, size and modification time instead.
func rootfsFingerprint(dir string) (string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("rootfs %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("rootfs %s: not a folder", dir)
	}
	h := sha256.New()
	found := 0
	for _, rel := range rootfsFingerprintFiles {
		p, err := resolveInRoot(dir, rel)
		if err != nil {
			continue
		}
		err = filepath.WalkDir(p, func(q string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return err
			}
			f, err := os.Open(q)
			if err != nil {
				return err
			}
			defer f.Close()
			r, _ := filepath.Rel(p, q)
			fmt.Fprintf(h, "%s/%s\x00", rel, filepath.ToSlash(r))
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
			h.Write([]byte{0})
			found++
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("rootfs %s: %w", dir, err)
		}
	}
	if found == 0 {
		h.Reset()
		h.Write([]byte("walk\x00"))
		err := filepath.WalkDir(dir, func(q string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := de.Info()
			if err != nil {
				return err
			}
			r, _ := filepath.Rel(dir, q)
			fmt.Fprintf(h, "%s\x00%o\x00%d\x00%d\x00", filepath.ToSlash(r), info.Mode(), info.Size(), info.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("rootfs %s: %w", dir, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// resolveInRoot resolves rel inside root, following symbolic links as the root
// filesystem would (absolute targets are relative to root), never leaving root.
func resolveInRoot(root, rel string) (string, error) {
	cur := ""
	parts := strings.Split(path.Clean(rel), "/")
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		next := path.Join(cur, part)
		if strings.HasPrefix(next, "..") {
			next = ""
		}
		p := filepath.Join(root, filepath.FromSlash(next))
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many symbolic links", rel)
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !path.IsAbs(link) {
			link = path.Join("/", cur, link)
		}
		link = strings.TrimPrefix(path.Clean(link), "/")
		var lp []string
		if link != "" {
			lp = strings.Split(link, "/")
		}
		parts = append(lp, parts...)
		cur = ""
	}
	return filepath.Join(root, filepath.FromSlash(cur)), nil
}
