package sbom

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

var update = flag.Bool("update", false, "rewrite testdata/small.cdx.json")

var epoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// writeZip makes a stored zip (stable bytes whatever the Go version's deflate).
func writeZip(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sortStrings(names)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func jar(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.jar")
	writeZip(t, p, files)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallLayer has one package of every kind, plus files that must not count.
func smallLayer(t *testing.T) map[string][]byte {
	sp := "python/lib/python3.12/site-packages/"
	return map[string][]byte{
		sp + "requests-2.32.3.dist-info/METADATA":                                []byte("Metadata-Version: 2.1\nName: requests\nVersion: 2.32.3\nLicense: Apache-2.0\n\nlong description\nName: not-this\n"),
		sp + "Typing_Extensions-4.12.2.dist-info/METADATA":                       []byte("Metadata-Version: 2.1\nName: Typing_Extensions\nVersion: 4.12.2\nClassifier: License :: OSI Approved :: Python Software Foundation License\n"),
		sp + "pydantic_core-2.20.1.dist-info/METADATA":                           []byte("Metadata-Version: 2.4\nName: pydantic_core\nVersion: 2.20.1\nLicense-Expression: MIT\nLicense: ignored when an expression is there\n"),
		"python/lib/python3.13/site-packages/requests-2.32.3.dist-info/METADATA": []byte("Metadata-Version: 2.1\nName: requests\nVersion: 2.32.3\nLicense: Apache-2.0\n"),
		"nodejs/node_modules/@types/node/package.json":                           []byte(`{"name": "@types/node", "version": "20.14.2", "license": "MIT"}`),
		"nodejs/node_modules/left-pad/package.json":                              []byte(`{"name": "left-pad", "version": "1.3.0", "licenses": [{"type": "WTFPL"}]}`),
		"nodejs/node_modules/left-pad/lib/package.json":                          []byte(`{"name": "inner", "version": "0.0.0"}`),
		"nodejs/node_modules/a/node_modules/b/package.json":                      []byte(`{"name": "b", "version": "2.0.0", "license": "(MIT OR Apache-2.0)"}`),
		"ruby/gems/3.3.0/specifications/rack-3.0.8.gemspec":                      []byte("Gem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"3.0.8\".freeze\n  s.licenses = [\"MIT\".freeze]\nend\n"),
		"ruby/gems/3.3.0/specifications/nokogiri-1.16.0-x86_64-linux.gemspec":    []byte("Gem::Specification.new do |s|\n  s.name = \"nokogiri\".freeze\n  s.version = \"1.16.0\".freeze\n  s.platform = \"x86_64-linux\".freeze\n  s.license = \"MIT\".freeze\nend\n"),
		"java/lib/jackson-core-2.17.2.jar": jar(t, map[string][]byte{
			"META-INF/maven/com.fasterxml.jackson.core/jackson-core/pom.properties": []byte("#Generated\nartifactId=jackson-core\ngroupId=com.fasterxml.jackson.core\nversion=2.17.2\n"),
			"META-INF/maven/com.fasterxml.jackson.core/jackson-core/pom.xml":        []byte("<project><licenses><license><name>The Apache Software License, Version 2.0</name><url>https://www.apache.org/licenses/LICENSE-2.0.txt</url></license></licenses></project>"),
			"com/fasterxml/jackson/core/JsonParser.class":                           []byte("\xca\xfe\xba\xbe"),
		}),
		"bin/tool": []byte("#!/bin/sh\n"),
	}
}

func TestGolden(t *testing.T) {
	dir := t.TempDir()
	z := filepath.Join(dir, "small-x86_64.zip")
	writeZip(t, z, smallLayer(t))
	bom, err := FromZip(z, Options{Name: "small", Architecture: "x86_64", Time: epoch})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Marshal(bom)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "small.cdx.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the SBOM differs from %s (go test ./sbom -update rewrites it):\n%s", golden, got)
	}

	// The same zip elsewhere, described again: the same bytes.
	z2 := filepath.Join(t.TempDir(), "copy.zip")
	writeZip(t, z2, smallLayer(t))
	bom2, err := FromZip(z2, Options{Name: "small", Architecture: "x86_64", Time: epoch})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Marshal(bom2)
	if !bytes.Equal(got, again) {
		t.Fatal("two runs over the same zip gave different documents")
	}
	// Another timestamp: another serial number.
	bom3, _ := FromZip(z, Options{Name: "small", Architecture: "x86_64", Time: epoch.Add(time.Second)})
	if bom3.SerialNumber == bom.SerialNumber {
		t.Fatal("the serial number ignores the timestamp")
	}
}

func TestRoundTrip(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "small.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(want), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
		t.Fatalf("spec %v, serial %q", bom.SpecVersion, bom.SerialNumber)
	}
	var purls []string
	for _, c := range *bom.Components {
		purls = append(purls, c.PackageURL)
	}
	wantPurls := []string{
		"pkg:gem/nokogiri@1.16.0?platform=x86_64-linux",
		"pkg:gem/rack@3.0.8",
		"pkg:maven/com.fasterxml.jackson.core/jackson-core@2.17.2",
		"pkg:npm/%40types/node@20.14.2",
		"pkg:npm/b@2.0.0",
		"pkg:npm/left-pad@1.3.0",
		"pkg:pypi/pydantic-core@2.20.1",
		"pkg:pypi/requests@2.32.3",
		"pkg:pypi/typing-extensions@4.12.2",
	}
	if strings.Join(purls, "\n") != strings.Join(wantPurls, "\n") {
		t.Fatalf("components:\n%s\nwant:\n%s", strings.Join(purls, "\n"), strings.Join(wantPurls, "\n"))
	}
	got, err := Marshal(&bom)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("decode + encode changed the document:\n%s", got)
	}
}

func TestWriteFileSkipsWhenUpToDate(t *testing.T) {
	dir := t.TempDir()
	z := filepath.Join(dir, "a.zip")
	writeZip(t, z, smallLayer(t))
	out := filepath.Join(dir, "a.cdx.json")
	bom, _ := FromZip(z, Options{Name: "a", Time: epoch})
	var code string
	for _, p := range *bom.Metadata.Component.Properties {
		if p.Name == "aws:lambda:CodeSha256" {
			code = p.Value
		}
	}
	if err := WriteFile(out, z, code, Options{Name: "a", Time: epoch}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(out)
	// A zip that is not one any more: an up-to-date document is not rewritten, so
	// the zip is never read.
	if err := os.WriteFile(z, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(out, z, code, Options{Name: "a", Time: epoch}); err != nil {
		t.Fatalf("an up-to-date SBOM was regenerated: %v", err)
	}
	if err := WriteFile(out, z, "other", Options{Name: "a", Time: epoch}); err == nil {
		t.Fatal("a changed CodeSha256 did not regenerate the SBOM")
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, first) {
		t.Fatal("a failed regeneration changed the file")
	}
}

// WriteFile takes the zip's hash from the CodeSha256 it is given instead of
// reading the zip whole: the document is the one FromZip makes by hashing.
func TestWriteFileKnownSum(t *testing.T) {
	dir := t.TempDir()
	z := filepath.Join(dir, "a.zip")
	writeZip(t, z, smallLayer(t))
	bom, err := FromZip(z, Options{Name: "a", Architecture: "arm64", Time: epoch})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Marshal(bom)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(z)
	s := sha256.Sum256(b)
	out := filepath.Join(dir, "a.cdx.json")
	if err := WriteFile(out, z, base64.StdEncoding.EncodeToString(s[:]), Options{Name: "a", Architecture: "arm64", Time: epoch}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatalf("with the known CodeSha256 the document differs:\n%s\nwant\n%s", got, want)
	}
}
