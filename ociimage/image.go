// Package ociimage turns layer zips into the "container image version" of a Lambda
// layer: an OCI image whose single layer holds the zip's tree under /opt, for
// functions packaged as container images (`COPY --from=<image> /opt /opt`). One
// image per architecture, joined by an image index, written as an OCI image layout
// and optionally pushed to a registry.
//
// The bytes are reproducible: the tar is sorted with one mtime (SOURCE_DATE_EPOCH)
// and uid/gid 0, the gzip encoder and level are pinned (Format), and the JSON
// documents carry no time but SOURCE_DATE_EPOCH, so the same zips give the same
// index digest on any machine.
package ociimage

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/zipper"
)

// The gzip encoder is pinned like the zip's deflate encoder: its output (and so
// the compressed layer digest) changes between versions and levels. klauspost's
// gzip is the same module as the zipper's deflate, so one version pin covers both.
const (
	GzipEncoder = "github.com/klauspost/compress/gzip"
	GzipLevel   = 6
	TarFormat   = "archive/tar PAX, sorted, uid/gid 0, mtime SOURCE_DATE_EPOCH"
)

// Label keys. The org.opencontainers ones are the standard annotations; the
// others are layerpack's.
const (
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
	LabelLicenses    = "org.opencontainers.image.licenses"
	LabelRuntimes    = "io.github.layerpack.compatible-runtimes" // space-separated
	LabelCodeSha256  = "io.github.layerpack.code-sha256"         // of the zip the image was made from
	LabelArch        = "io.github.layerpack.architecture"        // x86_64 or arm64
)

// RefName is the tag the layout's index.json gives the image index
// (oci-layout://DIR:latest, or DIR@<index digest>).
const RefName = "latest"

// Format is what the image bytes depend on besides the zips, for the manifest.
type Format struct {
	Encoder string `json:"encoder"` // module path@version of the gzip encoder
	Level   int    `json:"level"`
	Tar     string `json:"tar"`
}

// CurrentFormat is the format of this binary's images.
func CurrentFormat() Format {
	return Format{Encoder: GzipEncoder + "@" + zipper.EncoderVersion(), Level: GzipLevel, Tar: TarFormat}
}

// Source is one architecture's zip.
type Source struct {
	Arch lambda.Arch
	Zip  string
}

// Meta is what the labels say about the layer.
type Meta struct {
	Name        string
	Description string
	License     string
	Runtimes    []string
}

// Result describes a written image.
type Result struct {
	Dir         string         // the OCI layout folder
	IndexDigest digest.Digest  // the image index: the reference to use
	Manifests   []ArchManifest // in Source order
	Index       v1.Descriptor  // the index's descriptor (as in the layout's index.json)
	Format      Format
}

// ArchManifest is one architecture's image.
type ArchManifest struct {
	Arch        lambda.Arch   `json:"architecture"`
	Digest      digest.Digest `json:"digest"`       // the image manifest
	LayerDigest digest.Digest `json:"layer_digest"` // the compressed layer blob
	DiffID      digest.Digest `json:"diff_id"`      // the uncompressed tar
	CodeSha256  string        `json:"code_sha256"`
}

// Platform is the OCI platform of a Lambda architecture.
func Platform(a lambda.Arch) (v1.Platform, error) {
	switch a {
	case lambda.X86_64:
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case lambda.ARM64:
		return v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil
	}
	return v1.Platform{}, fmt.Errorf("unknown architecture %q (want x86_64 or arm64)", a)
}

// WriteLayout writes the image of srcs as an OCI image layout at dir. The layout is
// made in a temp folder beside dir and renamed into place, so dir is either the old
// layout or the whole new one. epoch is SOURCE_DATE_EPOCH.
func WriteLayout(dir string, srcs []Source, m Meta, epoch time.Time) (*Result, error) {
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no zip to make an image of")
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	r, err := write(tmp, srcs, m, epoch.UTC())
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := replaceDir(tmp, dir); err != nil {
		return nil, err
	}
	r.Dir = dir
	return r, nil
}

// replaceDir renames src to dst; an existing dst is moved aside first and removed
// after, so no reader ever sees a mix of the two.
func replaceDir(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	old := src + ".old"
	if err := os.Rename(dst, old); err != nil {
		return fmt.Errorf("replacing %s: %w", dst, err)
	}
	if err := os.Rename(src, dst); err != nil {
		_ = os.Rename(old, dst)
		return fmt.Errorf("replacing %s: %w", dst, err)
	}
	return os.RemoveAll(old)
}

func write(dir string, srcs []Source, m Meta, epoch time.Time) (*Result, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	r := &Result{Format: CurrentFormat()}
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex}
	seen := map[lambda.Arch]bool{}
	for _, s := range srcs {
		plat, err := Platform(s.Arch)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Zip, err)
		}
		if seen[s.Arch] {
			return nil, fmt.Errorf("%s: a second zip for %s", s.Zip, s.Arch)
		}
		seen[s.Arch] = true
		am, desc, err := writeImage(blobs, s, plat, m, epoch)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Zip, err)
		}
		r.Manifests = append(r.Manifests, *am)
		idx.Manifests = append(idx.Manifests, desc)
	}
	idesc, err := writeJSON(blobs, v1.MediaTypeImageIndex, idx)
	if err != nil {
		return nil, err
	}
	r.IndexDigest, r.Index = idesc.Digest, idesc
	top := idesc
	top.Annotations = map[string]string{v1.AnnotationRefName: RefName}
	layoutIndex := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{top}}
	if err := writeFileJSON(filepath.Join(dir, v1.ImageIndexFile), layoutIndex); err != nil {
		return nil, err
	}
	if err := writeFileJSON(filepath.Join(dir, v1.ImageLayoutFile), v1.ImageLayout{Version: v1.ImageLayoutVersion}); err != nil {
		return nil, err
	}
	return r, nil
}

func writeImage(blobs string, s Source, plat v1.Platform, m Meta, epoch time.Time) (*ArchManifest, v1.Descriptor, error) {
	codeSha, err := lambda.FileCodeSha256(s.Zip)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	zr, err := zip.OpenReader(s.Zip)
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("not a zip: %w", err)
	}
	defer zr.Close()
	entries, err := readZipTree(&zr.Reader)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	layer, diffID, err := writeLayer(blobs, entries, epoch)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	labels := map[string]string{
		LabelTitle:      m.Name,
		LabelRuntimes:   strings.Join(m.Runtimes, " "),
		LabelCodeSha256: codeSha,
		LabelArch:       string(s.Arch),
	}
	if m.Description != "" {
		labels[LabelDescription] = m.Description
	}
	if m.License != "" {
		labels[LabelLicenses] = m.License
	}
	if len(m.Runtimes) == 0 {
		delete(labels, LabelRuntimes)
	}
	cfg := v1.Image{
		Created:  &epoch,
		Platform: plat,
		Config:   v1.ImageConfig{Labels: labels},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
	cdesc, err := writeJSON(blobs, v1.MediaTypeImageConfig, cfg)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	man := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    cdesc,
		Layers:    []v1.Descriptor{layer},
	}
	mdesc, err := writeJSON(blobs, v1.MediaTypeImageManifest, man)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	mdesc.Platform = &plat
	return &ArchManifest{Arch: s.Arch, Digest: mdesc.Digest, LayerDigest: layer.Digest, DiffID: diffID, CodeSha256: codeSha}, mdesc, nil
}

// writeLayer streams the tar through the diff-id hash, the pinned gzip and the blob
// hash into a temp file, then names it by its digest.
func writeLayer(blobs string, entries []tarEntry, epoch time.Time) (v1.Descriptor, digest.Digest, error) {
	f, err := os.CreateTemp(blobs, ".layer-")
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	blobHash := sha256.New()
	buf := bufio.NewWriterSize(f, 1<<20)
	counter := &countWriter{w: io.MultiWriter(buf, blobHash)}
	gz, err := gzip.NewWriterLevel(counter, GzipLevel)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	tarHash := sha256.New()
	if err := writeTar(io.MultiWriter(gz, tarHash), entries, epoch); err != nil {
		return v1.Descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return v1.Descriptor{}, "", err
	}
	if err := buf.Flush(); err != nil {
		return v1.Descriptor{}, "", err
	}
	if err := f.Close(); err != nil {
		return v1.Descriptor{}, "", err
	}
	d := digestOf(blobHash)
	if err := os.Rename(f.Name(), filepath.Join(blobs, d.Encoded())); err != nil {
		return v1.Descriptor{}, "", err
	}
	return v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: counter.n}, digestOf(tarHash), nil
}

func digestOf(h hash.Hash) digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeJSON stores v as a blob. encoding/json writes struct fields in order and map
// keys sorted, so the bytes depend only on the values.
func writeJSON(blobs, mediaType string, v any) (v1.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	d := digest.FromBytes(b)
	if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}

func writeFileJSON(p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}
