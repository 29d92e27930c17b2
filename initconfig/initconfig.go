// Package initconfig writes a starting layerpack.toml from what a project folder
// holds: a layer per kind of project found (Python, Node.js, Ruby, Java, native
// code), runtimes read from the project's own version files, both architectures,
// and a comment on every key. It never overwrites a file.
package initconfig

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/lambda"
)

// Layer is one layer found in the folder.
type Layer struct {
	Kind    string // python, node, ruby, java, native
	Name    string
	Runtime string   // a Lambda runtime identifier
	From    string   // where the runtime came from ("" when it is the default)
	Keys    []Key    // the builder table's keys
	Notes   []string // what the user should check, written as comments
}

// Key is one key = value line with its comment.
type Key struct {
	Name, Value, Comment string
	Commented            bool // written as a commented-out example
}

// ErrExists is returned by Write when the file is already there.
var ErrExists = errors.New("already exists")

// ErrNothing is returned by Detect when the folder holds no project layerpack knows.
var ErrNothing = errors.New("nothing to build found")

// Defaults when the project does not say.
const (
	DefaultPython = "python3.12"
	DefaultNode   = "nodejs22.x"
	DefaultRuby   = "ruby3.3"
	DefaultJava   = "java21"
	DefaultNative = "provided.al2023"
)

// Detect looks at dir and returns the layers a config should have.
func Detect(dir string) ([]Layer, error) {
	base := layerName(filepath.Base(absDir(dir)))
	var ls []Layer
	if l, ok := python(dir); ok {
		ls = append(ls, l)
	}
	if l, ok := node(dir); ok {
		ls = append(ls, l)
	}
	if l, ok := ruby(dir); ok {
		ls = append(ls, l)
	}
	if l, ok := java(dir); ok {
		ls = append(ls, l)
	}
	if l, ok := native(dir); ok {
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("%s: %w: no requirements.txt, pyproject.toml, package.json, Gemfile, pom.xml, build.gradle, Makefile or CMakeLists.txt (see layerpack.toml.example to write one by hand)", dir, ErrNothing)
	}
	for i := range ls {
		ls[i].Name = base
		if len(ls) > 1 {
			ls[i].Name = base + "-" + ls[i].Kind
		}
		if len(ls[i].Name) > 140 {
			ls[i].Name = ls[i].Name[:140]
		}
	}
	return ls, nil
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

var badName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// layerName makes a valid layer name (1-140 of A-Za-z0-9_-) from a folder name.
func layerName(s string) string {
	s = strings.Trim(badName.ReplaceAllString(s, "-"), "-")
	if s == "" {
		return "layer"
	}
	return s
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func read(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return string(b)
}

func known(id string) bool {
	r, ok := lambda.LookupRuntime(id)
	return ok && !r.Deprecated
}

var xy = regexp.MustCompile(`(\d+)\.(\d+)`)

func python(dir string) (Layer, bool) {
	l := Layer{Kind: "python", Runtime: DefaultPython}
	switch {
	case exists(dir, "pyproject.toml"):
		lock := ""
		for _, f := range []string{"uv.lock", "poetry.lock", "pdm.lock"} {
			if exists(dir, f) {
				lock = f
				break
			}
		}
		c := "the folder with pyproject.toml; its dependencies are installed (not the project itself)"
		if lock != "" {
			c += "; " + lock + " pins them"
		} else {
			l.Notes = append(l.Notes, "no uv.lock, poetry.lock or pdm.lock: versions are resolved at build time; lock them for a reproducible layer")
		}
		l.Keys = append(l.Keys, Key{Name: "project", Value: q("."), Comment: c})
		if m := regexp.MustCompile(`(?m)^\s*requires-python\s*=\s*["']([^"']+)["']`).FindStringSubmatch(read(dir, "pyproject.toml")); m != nil {
			if v := xy.FindStringSubmatch(m[1]); v != nil && known("python"+v[1]+"."+v[2]) {
				l.Runtime, l.From = "python"+v[1]+"."+v[2], "requires-python "+strconv.Quote(m[1])+" in pyproject.toml"
			}
		}
	case exists(dir, "requirements.txt"):
		l.Keys = append(l.Keys, Key{Name: "requirements", Value: q("requirements.txt"), Comment: "pip requirements; pin versions (==) for a reproducible layer"})
	default:
		return l, false
	}
	if v := xy.FindStringSubmatch(firstLine(read(dir, ".python-version"))); v != nil && known("python"+v[1]+"."+v[2]) {
		l.Runtime, l.From = "python"+v[1]+"."+v[2], ".python-version"
	}
	l.Keys = append(l.Keys,
		Key{Name: "installer", Value: q("pip"), Comment: `or "uv"`, Commented: true},
		Key{Name: "layout", Value: q("site-packages"), Comment: `python/lib/pythonX.Y/site-packages (default), or "flat": python/`, Commented: true},
		Key{Name: "build", Value: q("auto"), Comment: "auto: wheels on the host, sdists in the build container; host | container", Commented: true},
		Key{Name: "exclude_packages", Value: `["boto3", "botocore"]`, Comment: "already in the Lambda runtime", Commented: true},
		Key{Name: "compile", Value: "true", Comment: ".pyc for fast cold starts, compiled in the build image (a container); false: none", Commented: true},
	)
	return l, true
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

var major = regexp.MustCompile(`(\d+)`)

func node(dir string) (Layer, bool) {
	if !exists(dir, "package.json") {
		return Layer{}, false
	}
	l := Layer{Kind: "node", Runtime: DefaultNode}
	lock := ""
	for _, f := range []string{"package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "yarn.lock"} {
		if exists(dir, f) {
			lock = f
			break
		}
	}
	c := "the folder with package.json"
	if lock != "" {
		c += " and " + lock
	} else {
		l.Notes = append(l.Notes, "no lockfile: the build needs one (npm install --package-lock-only)")
	}
	l.Keys = append(l.Keys, Key{Name: "dir", Value: q("."), Comment: c})
	var pkg struct {
		Engines struct {
			Node string `json:"node"`
		} `json:"engines"`
	}
	_ = json.Unmarshal([]byte(read(dir, "package.json")), &pkg)
	if m := major.FindString(pkg.Engines.Node); m != "" && known("nodejs"+m+".x") {
		l.Runtime, l.From = "nodejs"+m+".x", "engines.node "+strconv.Quote(pkg.Engines.Node)+" in package.json"
	}
	if m := major.FindString(firstLine(read(dir, ".nvmrc"))); m != "" && known("nodejs"+m+".x") {
		l.Runtime, l.From = "nodejs"+m+".x", ".nvmrc"
	}
	l.Keys = append(l.Keys,
		Key{Name: "layout", Value: q("node_modules"), Comment: `nodejs/node_modules (default), or "versioned": nodejs/nodeNN/node_modules`, Commented: true},
		Key{Name: "build", Value: q("auto"), Comment: "auto: install on the host, native addons in the build container; host | container", Commented: true},
		Key{Name: "prune", Value: q("safe"), Comment: "drop docs, tests, source maps (never licence files)", Commented: true},
	)
	return l, true
}

func ruby(dir string) (Layer, bool) {
	if !exists(dir, "Gemfile") {
		return Layer{}, false
	}
	l := Layer{Kind: "ruby", Runtime: DefaultRuby}
	if !exists(dir, "Gemfile.lock") {
		l.Notes = append(l.Notes, "no Gemfile.lock: the build needs one (bundle lock)")
	}
	l.Keys = append(l.Keys, Key{Name: "gemfile", Value: q("Gemfile"), Comment: "Gemfile.lock beside it is required (frozen install)"})
	if m := regexp.MustCompile(`(?m)^RUBY VERSION\s*\n\s*ruby (\d+)\.(\d+)`).FindStringSubmatch(read(dir, "Gemfile.lock")); m != nil && known("ruby"+m[1]+"."+m[2]) {
		l.Runtime, l.From = "ruby"+m[1]+"."+m[2], "RUBY VERSION in Gemfile.lock"
	}
	if v := xy.FindStringSubmatch(firstLine(read(dir, ".ruby-version"))); v != nil && known("ruby"+v[1]+"."+v[2]) {
		l.Runtime, l.From = "ruby"+v[1]+"."+v[2], ".ruby-version"
	}
	l.Keys = append(l.Keys,
		Key{Name: "without", Value: `["development", "test"]`, Comment: "Bundler groups left out (the default)", Commented: true},
		Key{Name: "build", Value: q("auto"), Comment: "auto | container", Commented: true},
	)
	return l, true
}

func java(dir string) (Layer, bool) {
	l := Layer{Kind: "java", Runtime: DefaultJava}
	switch {
	case exists(dir, "pom.xml"):
		l.Keys = append(l.Keys, Key{Name: "pom", Value: q("pom.xml"), Comment: "its runtime classpath goes to java/lib"})
		if v, from := pomRelease(read(dir, "pom.xml")); v != "" {
			l.Runtime, l.From = v, from
		}
	case exists(dir, "build.gradle"), exists(dir, "build.gradle.kts"):
		f := "build.gradle"
		if !exists(dir, f) {
			f = "build.gradle.kts"
		}
		l.Keys = append(l.Keys, Key{Name: "gradle", Value: q(f), Comment: "resolved on the host with ./gradlew or gradle"})
	default:
		return l, false
	}
	l.Keys = append(l.Keys, Key{Name: "build", Value: q("auto"), Comment: "auto: host Maven when installed, else the build image; host | container", Commented: true})
	return l, true
}

// pomRelease maps maven.compiler.release (or source, or the compiler plugin's
// release) to a Java runtime.
func pomRelease(src string) (string, string) {
	var pom struct {
		Props struct {
			Release string `xml:"maven.compiler.release"`
			Source  string `xml:"maven.compiler.source"`
		} `xml:"properties"`
	}
	if xml.Unmarshal([]byte(src), &pom) != nil {
		return "", ""
	}
	for _, c := range []struct{ v, from string }{
		{pom.Props.Release, "maven.compiler.release in pom.xml"},
		{pom.Props.Source, "maven.compiler.source in pom.xml"},
	} {
		v := strings.TrimPrefix(strings.TrimSpace(c.v), "1.")
		if v == "" {
			continue
		}
		id := "java" + v
		if v == "8" {
			id = "java8.al2"
		}
		if _, ok := lambda.LookupRuntime(id); ok {
			return id, c.from
		}
		// A release with no runtime of its own runs on the next one that exists.
		n, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		for _, next := range []int{11, 17, 21, 25} {
			if n < next && known("java"+strconv.Itoa(next)) {
				return "java" + strconv.Itoa(next), c.from + " (" + v + ": the next Java runtime)"
			}
		}
	}
	return "", ""
}

func native(dir string) (Layer, bool) {
	l := Layer{Kind: "native", Runtime: DefaultNative}
	var script string
	switch {
	case exists(dir, "CMakeLists.txt"):
		script = "cmake -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/opt && cmake --build build && cmake --install build"
	case exists(dir, "Makefile"), exists(dir, "makefile"), exists(dir, "GNUmakefile"):
		script = "make && make install PREFIX=/opt"
	default:
		return l, false
	}
	l.Notes = append(l.Notes, "fill in the script: it must install what the layer ships under /opt (bin/, lib/, ...); and add compatible runtimes that use it")
	l.Keys = append(l.Keys,
		Key{Name: "context", Value: q("."), Comment: "mounted read-only; the script runs in a writable copy at /src"},
		Key{Name: "script", Value: q(script), Comment: "TODO: check it; run with sh -e for the target CPU"},
		Key{Name: "packages", Value: `["libjansson-dev"]`, Comment: "installed first with dnf, yum or apt-get", Commented: true},
		Key{Name: "bundle_libs", Value: "true", Comment: "copy needed shared libraries into lib/ (renamed); the default", Commented: true},
		Key{Name: "strip", Value: "false", Comment: "strip debug symbols", Commented: true},
	)
	return l, true
}

func q(s string) string { return strconv.Quote(s) }

// Render is the config file's text.
func Render(ls []Layer) []byte {
	var b strings.Builder
	b.WriteString("# layerpack.toml, written by `layerpack init` from what this folder holds.\n")
	b.WriteString("# Every key: layerpack.toml.example and README.md. Build with `layerpack build`.\n\n")
	b.WriteString("[defaults]\n")
	b.WriteString("architectures = [\"x86_64\", \"arm64\"]   # a zip per architecture\n")
	b.WriteString("# out_dir = \"dist\"                     # where zips, SBOMs and the manifest go\n")
	b.WriteString("# compression = 6                      # deflate level 1-9, 0 = store\n")
	for _, l := range ls {
		fmt.Fprintf(&b, "\n[layer.%s]\n", l.Name)
		from := "default"
		if l.From != "" {
			from = "from " + l.From
		}
		fmt.Fprintf(&b, "compatible_runtimes = [%s]   # %s; up to 15\n", q(l.Runtime), from)
		b.WriteString("# description = \"\"                    # shown in the Lambda console, at most 256 characters\n")
		b.WriteString("# license_info = \"\"                   # e.g. an SPDX id, at most 512 characters\n")
		b.WriteString("# exclude = [\"**/*.md\"]               # globs over paths inside the layer\n")
		for _, n := range l.Notes {
			fmt.Fprintf(&b, "# NOTE: %s\n", n)
		}
		fmt.Fprintf(&b, "\n[layer.%s.%s]\n", l.Name, l.Kind)
		for _, k := range l.Keys {
			line := k.Name + " = " + k.Value
			if k.Commented {
				line = "# " + line
			}
			pad := 38 - len(line)
			if pad < 2 {
				pad = 2
			}
			fmt.Fprintf(&b, "%s%s# %s\n", line, strings.Repeat(" ", pad), k.Comment)
		}
	}
	return []byte(b.String())
}

// Write writes data to path unless something is there already (ErrExists): the new
// file is made beside it and linked into place, which fails instead of replacing.
func Write(path string, data []byte) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s %w; not overwriting it (remove it, or pass another file name)", path, ErrExists)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s %w; not overwriting it (remove it, or pass another file name)", path, ErrExists)
		}
		return err
	}
	return nil
}
