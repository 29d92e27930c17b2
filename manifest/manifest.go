// Package manifest writes layerpack-manifest.json, the machine-readable record of a
// build: one entry per zip with its CodeSha256. Its field order is a contract, so it is
// fixed by the struct order below.
package manifest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/layerpack/layerpack/internal/atomicfile"
	"github.com/layerpack/layerpack/lambda"
)

// FileName is the manifest's name inside the output folder.
const FileName = "layerpack-manifest.json"

type Manifest struct {
	LayerpackVersion string  `json:"layerpack_version"`
	Zip              Zip     `json:"zip"`
	Layers           []Layer `json:"layers"`
	// Written by `layerpack image` only; absent from a plain build's manifest.
	ImageFormat *ImageFormat `json:"image,omitempty"`
	Images      []Image      `json:"images,omitempty"`
}

// ImageFormat records what decides the image bytes besides the zips.
type ImageFormat struct {
	Encoder string `json:"encoder"` // module path@version of the gzip encoder
	Level   int    `json:"level"`
	Tar     string `json:"tar"`
}

// Image is the container image of one layer: an OCI index over one image per
// architecture.
type Image struct {
	Name        string          `json:"name"`
	IndexDigest string          `json:"index_digest"`
	Manifests   []ImageManifest `json:"manifests"`
	Layout      string          `json:"layout,omitempty"` // the OCI layout folder, relative to the manifest's
	Pushed      string          `json:"pushed,omitempty"` // repository@index digest
	Tag         string          `json:"tag,omitempty"`    // the reference pushed to
}

// ImageManifest is one architecture's image.
type ImageManifest struct {
	Architecture string `json:"architecture"`
	Digest       string `json:"digest"`       // the image manifest
	LayerDigest  string `json:"layer_digest"` // the gzip layer blob
	DiffID       string `json:"diff_id"`      // the uncompressed tar
	CodeSha256   string `json:"code_sha256"`  // of the zip it was made from
}

// Zip records what decides the zip bytes besides the content.
type Zip struct {
	Encoder         string `json:"encoder"` // module path@version of the deflate encoder
	Level           int    `json:"level"`
	SourceDateEpoch int64  `json:"source_date_epoch"`
}

type Layer struct {
	Name                    string   `json:"name"`
	Architecture            string   `json:"architecture"`
	File                    string   `json:"file"` // relative to the manifest's folder
	CodeSha256              string   `json:"code_sha256"`
	Size                    int64    `json:"size"`
	UnzippedSize            int64    `json:"unzipped_size"`
	Entries                 int      `json:"entries"`
	CompatibleRuntimes      []string `json:"compatible_runtimes"`
	CompatibleArchitectures []string `json:"compatible_architectures"`
	Description             string   `json:"description"`
	LicenseInfo             string   `json:"license_info"`
	// SBOM is the layer's CycloneDX file beside the zip (relative), when one was written.
	SBOM string `json:"sbom,omitempty"`
	// Published is set by `layerpack publish`: one entry per region.
	Published []Published `json:"published,omitempty"`
}

// Published is one layer version that holds the zip, in one region.
type Published struct {
	Region          string `json:"region"`
	LayerName       string `json:"layer_name"`
	LayerArn        string `json:"layer_arn"`
	LayerVersionArn string `json:"layer_version_arn"`
	Version         int64  `json:"version"`
	Status          string `json:"status"` // "new" or "unchanged"
}

// Marshal is the manifest's exact bytes: indented, newline-terminated.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Write writes the manifest atomically.
func (m *Manifest) Write(path string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// Read loads a manifest.
func Read(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	return &m, json.Unmarshal(b, &m)
}

// Target is what a zip was built for, as far as can be told without a config.
type Target struct {
	Name     string      // the layer's name
	Arch     lambda.Arch // "" when unknown
	Runtimes []string    // the compatible runtimes; nil when unknown
	Entry    *Layer      // the manifest entry, when the manifest beside the zip lists it
}

// TargetOf tells what a zip was built for: from the manifest beside it when that
// lists the zip, else from the name layerpack gives zips (<layer>-<arch>.zip).
func TargetOf(zip string) Target {
	if m, err := Read(filepath.Join(filepath.Dir(zip), FileName)); err == nil {
		for i := range m.Layers {
			if l := &m.Layers[i]; l.File == filepath.Base(zip) {
				return Target{Name: l.Name, Arch: lambda.Arch(l.Architecture), Runtimes: l.CompatibleRuntimes, Entry: l}
			}
		}
	}
	t := Target{Name: strings.TrimSuffix(filepath.Base(zip), ".zip")}
	for _, a := range lambda.Arches {
		if n, ok := strings.CutSuffix(t.Name, "-"+string(a)); ok && n != "" {
			t.Name, t.Arch = n, a
		}
	}
	return t
}
