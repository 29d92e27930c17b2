// Package lambda holds the facts about AWS Lambda that layerpack must get right:
// runtime identifiers, their operating system and glibc, the folders each runtime
// searches inside /opt, and the size limits. It has no dependencies so every other
// package can use it.
package lambda

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/internal/ctxio"
)

// Arch is a Lambda architecture as the API spells it.
type Arch string

const (
	X86_64 Arch = "x86_64"
	ARM64  Arch = "arm64"
)

// Arches lists the architectures in their canonical order.
var Arches = []Arch{X86_64, ARM64}

// ParseArch accepts exactly the API values.
func ParseArch(s string) (Arch, error) {
	switch Arch(s) {
	case X86_64, ARM64:
		return Arch(s), nil
	}
	return "", fmt.Errorf("unknown architecture %q (want x86_64 or arm64)", s)
}

// Platform is the OCI platform of the architecture.
func (a Arch) Platform() string {
	if a == ARM64 {
		return "linux/arm64"
	}
	return "linux/amd64"
}

// GOARCH-style name used by OCI and Debian (amd64, arm64).
func (a Arch) OCI() string {
	if a == ARM64 {
		return "arm64"
	}
	return "amd64"
}

// GNU is the CPU name in GNU triplets and uname -m (x86_64, aarch64).
func (a Arch) GNU() string {
	if a == ARM64 {
		return "aarch64"
	}
	return "x86_64"
}

// Language is the runtime family; it decides the layer folders that runtime searches.
type Language string

const (
	Python   Language = "python"
	Node     Language = "nodejs"
	Ruby     Language = "ruby"
	Java     Language = "java"
	Provided Language = "provided"
)

// Runtime describes one Lambda runtime identifier.
type Runtime struct {
	ID         string
	Language   Language
	Version    string // language version: "3.12" for python, "20" for node, "3.3" for ruby, "21" for java; "" for provided
	OS         string // "al2" or "al2023"
	GLIBC      GlibcVersion
	Deprecated bool
}

// GlibcVersion is a major.minor glibc version.
type GlibcVersion struct{ Major, Minor int }

func (v GlibcVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less reports whether v is older than w.
func (v GlibcVersion) Less(w GlibcVersion) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	return v.Minor < w.Minor
}

var (
	glibcAL2    = GlibcVersion{2, 26}
	glibcAL2023 = GlibcVersion{2, 34}
)

// runtimes is the table from the Lambda developer guide (see ../shared notes).
// python3.11 runs on the Debian test images too, which is why it matters to tests.
var runtimes = []Runtime{
	{"python3.9", Python, "3.9", "al2", glibcAL2, true},
	{"python3.10", Python, "3.10", "al2", glibcAL2, false},
	{"python3.11", Python, "3.11", "al2", glibcAL2, false},
	{"python3.12", Python, "3.12", "al2023", glibcAL2023, false},
	{"python3.13", Python, "3.13", "al2023", glibcAL2023, false},
	{"python3.14", Python, "3.14", "al2023", glibcAL2023, false},
	{"nodejs18.x", Node, "18", "al2", glibcAL2, true},
	{"nodejs20.x", Node, "20", "al2023", glibcAL2023, false},
	{"nodejs22.x", Node, "22", "al2023", glibcAL2023, false},
	{"nodejs24.x", Node, "24", "al2023", glibcAL2023, false},
	{"ruby3.2", Ruby, "3.2", "al2", glibcAL2, false},
	{"ruby3.3", Ruby, "3.3", "al2023", glibcAL2023, false},
	{"ruby3.4", Ruby, "3.4", "al2023", glibcAL2023, false},
	{"java8.al2", Java, "8", "al2", glibcAL2, false},
	{"java11", Java, "11", "al2", glibcAL2, false},
	{"java17", Java, "17", "al2", glibcAL2, false},
	{"java21", Java, "21", "al2023", glibcAL2023, false},
	{"java25", Java, "25", "al2023", glibcAL2023, false},
	{"provided.al2", Provided, "", "al2", glibcAL2, false},
	{"provided.al2023", Provided, "", "al2023", glibcAL2023, false},
}

var byID = func() map[string]Runtime {
	m := make(map[string]Runtime, len(runtimes))
	for _, r := range runtimes {
		m[r.ID] = r
	}
	return m
}()

// LookupRuntime finds a runtime by identifier.
func LookupRuntime(id string) (Runtime, bool) {
	r, ok := byID[id]
	return r, ok
}

// RuntimeIDs lists every known identifier, sorted.
func RuntimeIDs() []string {
	ids := make([]string, 0, len(runtimes))
	for _, r := range runtimes {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	return ids
}

// Limits from the Lambda API.
const (
	MaxUnzippedSize   = 262144000 // function plus all layers, unzipped
	MaxDirectUpload   = 50 << 20  // zipped, for a direct upload; larger goes through S3
	MaxRuntimes       = 15
	MaxArchitectures  = 2
	MaxLayerNameLen   = 140
	MaxDescriptionLen = 256
	MaxLicenseLen     = 512
)

// SitePackages is the folder a Python runtime adds to sys.path for its version.
func SitePackages(pyVersion string) string {
	return "python/lib/python" + pyVersion + "/site-packages"
}

// RubyGemPath is the GEM_PATH folder for a Ruby version ("3.3" -> ruby/gems/3.3.0).
func RubyGemPath(rubyVersion string) string {
	return "ruby/gems/" + rubyVersion + ".0"
}

// SearchedPrefixes returns the folder prefixes (with trailing slash) that a runtime
// looks into by itself, beyond the ones every runtime shares (bin/, lib/,
// extensions/). Every other path in a layer is legal too (data and tools read by
// absolute path, an agent's own folder): Lambda extracts the whole zip into /opt.
func (r Runtime) SearchedPrefixes() []string {
	switch r.Language {
	case Python:
		return []string{"python/"}
	case Node:
		return []string{"nodejs/node_modules/", "nodejs/node" + r.Version + "/node_modules/"}
	case Ruby:
		return []string{RubyGemPath(r.Version) + "/", "ruby/lib/"}
	case Java:
		return []string{"java/lib/"}
	}
	return nil
}

// CommonPrefixes are the folders every runtime uses.
var CommonPrefixes = []string{"bin/", "lib/", "extensions/"}

// Searched reports whether a path inside the layer is somewhere r looks by itself;
// false does not make the path wrong (see SearchedPrefixes).
func (r Runtime) Searched(name string) bool {
	for _, p := range append(r.SearchedPrefixes(), CommonPrefixes...) {
		if strings.HasPrefix(name, p) || name+"/" == p {
			return true
		}
	}
	return false
}

// SAMBuildImage is the default build image for a runtime and architecture.
func SAMBuildImage(runtime string, a Arch) string {
	return "public.ecr.aws/sam/build-" + runtime + ":latest-" + string(a)
}

// CodeSha256 is what Lambda reports for a layer version: the SHA-256 of the zip bytes,
// base64 with the standard alphabet and padding (Terraform's filebase64sha256).
func CodeSha256(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// FileCodeSha256 is CodeSha256 of a file.
func FileCodeSha256(path string) (string, error) {
	return FileCodeSha256Context(context.Background(), path)
}

// FileCodeSha256Context is FileCodeSha256 that stops with ctx's error once ctx is
// done.
func FileCodeSha256Context(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return CodeSha256(ctxio.Reader(ctx, f))
}
