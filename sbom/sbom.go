// Package sbom describes what a layer zip ships as a CycloneDX 1.6 JSON document:
// Python distributions (*.dist-info/METADATA), npm packages (node_modules/**/package.json),
// gems (specifications/*.gemspec) and Maven artifacts (META-INF/maven/**/pom.properties
// inside each jar), with package URLs and the licences their metadata states.
//
// The document is byte-for-byte reproducible: the serial number is derived from the
// zip's CodeSha256 (and the layerpack version and timestamp, which are in the document
// too), the timestamp is the build's SOURCE_DATE_EPOCH, and components are sorted.
package sbom

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/layerpack/layerpack/internal/atomicfile"
	"github.com/layerpack/layerpack/internal/version"
	"github.com/layerpack/layerpack/internal/zipfile"
)

// Options say what the zip is.
type Options struct {
	Name         string    // the layer's name (the document's subject)
	Architecture string    // x86_64 or arm64; "" when unknown
	Time         time.Time // the build's SOURCE_DATE_EPOCH
	// Native lists shared libraries bundled from the build image's packages.
	//
	// TODO(native builder): fill this at bundling time (dpkg -S / rpm -qf for each
	// library copied into lib/, in the build container) and pass it here; nothing
	// provides it yet, so bundled libraries are not listed.
	Native []NativeLib
}

// NativeLib is one bundled library and the OS package that provided it.
type NativeLib struct {
	Path    string // entry in the zip, e.g. lib/libjansson-1a2b3c4d.so.4
	Type    string // "deb" or "rpm"
	Distro  string // purl namespace: "debian", "amzn", ...
	Package string
	Version string
	Arch    string // the package's architecture (amd64, aarch64, ...)
}

// MaxJar is the largest jar read into memory to look for pom.properties.
const MaxJar = 512 << 20

// FromZip reads a layer zip and describes it.
func FromZip(path string, o Options) (*cdx.BOM, error) {
	return fromZip(path, nil, o)
}

// fromZip is FromZip; sum, when not nil, is the zip's SHA-256, known from
// writing it, so the zip is not read whole again to hash it.
func fromZip(path string, sum []byte, o Options) (*cdx.BOM, error) {
	if sum == nil {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		sum = h.Sum(nil)
	}
	zf, err := zipfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer zf.Close()
	return describe(path, zf, sum, o)
}

// Render is the document of the zip open as f, whose SHA-256 is sum, encoded:
// for a caller that holds the zip open (it may be renamed meanwhile). Errors
// call the zip name. It closes f.
func Render(f *os.File, name string, sum []byte, o Options) ([]byte, error) {
	zf, err := zipfile.OpenFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer zf.Close()
	bom, err := describe(name, zf, sum, o)
	if err != nil {
		return nil, err
	}
	return Marshal(bom)
}

// UpToDate reports whether out holds the document of the zip whose CodeSha256
// is codeSha256 (its serial number says so).
func UpToDate(out, codeSha256 string, t time.Time) bool {
	if codeSha256 == "" {
		return false
	}
	old, err := os.ReadFile(out)
	return err == nil && bytes.Contains(old, []byte(`"serialNumber": "`+Serial(codeSha256, t)+`"`))
}

func describe(path string, zf *zipfile.File, sum []byte, o Options) (*cdx.BOM, error) {
	c := &collector{byRef: map[string]*cdx.Component{}}
	for _, e := range zf.Reader.File {
		if e.FileInfo().IsDir() {
			continue
		}
		if err := c.entry(e); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, e.Name, err)
		}
	}
	for _, n := range o.Native {
		c.add(nativeComponent(n), n.Path)
	}
	return c.bom(o, sum), nil
}

// Serial is the document's serial number for a zip: the same inputs, the same UUID.
func Serial(codeSha256 string, t time.Time) string {
	name := "layerpack-sbom " + version.Version + " " + codeSha256 + " " + t.UTC().Format(time.RFC3339)
	return "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)).String()
}

// Encode writes the document as CycloneDX 1.6 JSON, indented.
func Encode(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

// Marshal is Encode into bytes.
func Marshal(bom *cdx.BOM) ([]byte, error) {
	var b bytes.Buffer
	if err := Encode(&b, bom); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFile describes zipPath into out, atomically. It does nothing when out already
// holds the document for this zip (the serial number says so), so an unchanged build
// reads no zip.
func WriteFile(out, zipPath, codeSha256 string, o Options) error {
	if UpToDate(out, codeSha256, o.Time) {
		return nil
	}
	// The CodeSha256 the zip was written with is its hash: no need to read it all.
	sum, err := base64.StdEncoding.DecodeString(codeSha256)
	if err != nil || len(sum) != sha256.Size {
		sum = nil
	}
	bom, err := fromZip(zipPath, sum, o)
	if err != nil {
		return err
	}
	b, err := Marshal(bom)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(out, b, 0o644)
}

func (c *collector) bom(o Options, sum []byte) *cdx.BOM {
	code := base64.StdEncoding.EncodeToString(sum)
	comps := make([]cdx.Component, 0, len(c.byRef))
	for _, p := range c.byRef {
		sort.Strings(c.paths[p.BOMRef])
		occ := make([]cdx.EvidenceOccurrence, 0, len(c.paths[p.BOMRef]))
		for _, path := range c.paths[p.BOMRef] {
			occ = append(occ, cdx.EvidenceOccurrence{Location: path})
		}
		p.Evidence = &cdx.Evidence{Occurrences: &occ}
		comps = append(comps, *p)
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].BOMRef < comps[j].BOMRef })
	props := []cdx.Property{{Name: "aws:lambda:CodeSha256", Value: code}}
	if o.Architecture != "" {
		props = append(props, cdx.Property{Name: "aws:lambda:architecture", Value: o.Architecture})
	}
	bom := cdx.NewBOM()
	bom.SerialNumber = Serial(code, o.Time)
	bom.Metadata = &cdx.Metadata{
		Timestamp: o.Time.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "layerpack", Version: version.Version,
		}}},
		Component: &cdx.Component{
			BOMRef: "layer:" + o.Name, Type: cdx.ComponentTypeFile, Name: o.Name,
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex.EncodeToString(sum)}},
			Properties: &props,
		},
	}
	bom.Components = &comps
	deps := make([]string, len(comps))
	for i := range comps {
		deps[i] = comps[i].BOMRef
	}
	bom.Dependencies = &[]cdx.Dependency{{Ref: "layer:" + o.Name, Dependencies: &deps}}
	return bom
}

// collector gathers components, one per package URL, with every path it was found at
// (a package can ship once per Python version folder).
type collector struct {
	byRef map[string]*cdx.Component
	paths map[string][]string
}

func (c *collector) add(p *cdx.Component, path string) {
	if p == nil {
		return
	}
	if p.BOMRef == "" {
		p.BOMRef = p.PackageURL
	}
	if c.paths == nil {
		c.paths = map[string][]string{}
	}
	if _, ok := c.byRef[p.BOMRef]; !ok {
		c.byRef[p.BOMRef] = p
	}
	c.paths[p.BOMRef] = append(c.paths[p.BOMRef], path)
}

func (c *collector) entry(e *zip.File) error {
	name := e.Name
	base := name[strings.LastIndex(name, "/")+1:]
	dir := strings.TrimSuffix(name, base)
	switch {
	case base == "METADATA" && strings.HasSuffix(dir, ".dist-info/"):
		b, err := readEntry(e, 16<<20)
		if err != nil {
			return err
		}
		c.add(pypiComponent(b), strings.TrimSuffix(dir, "/"))
	case base == "package.json" && isPackageRoot(dir):
		b, err := readEntry(e, 16<<20)
		if err != nil {
			return err
		}
		p, err := npmComponent(b)
		if err != nil {
			return err
		}
		c.add(p, strings.TrimSuffix(dir, "/"))
	case strings.HasSuffix(base, ".gemspec") && strings.HasSuffix(dir, "specifications/"):
		b, err := readEntry(e, 16<<20)
		if err != nil {
			return err
		}
		c.add(gemComponent(b, base), name)
	case strings.HasSuffix(base, ".jar"):
		b, err := readEntry(e, MaxJar)
		if err != nil {
			return err
		}
		comps, err := jarComponents(b)
		if err != nil {
			return err
		}
		for _, p := range comps {
			c.add(p, name)
		}
	}
	return nil
}

func readEntry(e *zip.File, max int64) ([]byte, error) {
	if e.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, max))
}
