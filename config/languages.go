package config

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/internal/redact"
)

// Python is [layer.NAME.python].
type Python struct {
	Requirements    string   // a requirements file, or:
	Project         string   // a folder with pyproject.toml; its lock (uv.lock, poetry.lock, pdm.lock) is honoured
	Installer       string   // "pip" (default) or "uv"
	Layout          string   // "site-packages" (default): python/lib/pythonX.Y/site-packages; "flat": python/
	Build           string   // "auto" (default), "host" or "container"
	ExcludePackages []string // provided by the runtime (boto3...): left out with their exclusive dependencies
	IndexURL        string
	ExtraIndexURLs  []string
	FindLinks       []string // folders (relative to the config file) or URLs
	// Compile writes .pyc files (checked-hash) for each Python version of the
	// runtimes. Default: true, except with build = "host" (see builders/python).
	Compile *bool
	// BytecodeBudget is the most bytes the layer may have unzipped with its
	// bytecode; above it the layer ships without. Default DefaultBytecodeBudget.
	BytecodeBudget int64
	Prune          string // "" or "safe"
	PruneStubs     bool   // with prune: also *.pyi
	Strip          bool   // strip debug symbols from extension modules

	AbsRequirements string `json:"-"`
	AbsProject      string `json:"-"`
}

// Node is [layer.NAME.node].
type Node struct {
	Dir        string // required: folder with package.json and its lockfile
	Layout     string // "node_modules" (default) or "versioned": nodejs/nodeNN/node_modules
	Build      string // "auto" (default), "host" or "container"
	Prune      string // "" or "safe"
	PruneTypes bool   // with prune: also *.d.ts

	AbsDir string `json:"-"`
}

// Ruby is [layer.NAME.ruby].
type Ruby struct {
	Gemfile string   // default "Gemfile"; Gemfile.lock beside it is required
	Without []string // bundler groups left out; default ["development", "test"]
	Build   string   // "auto" (default), "host" or "container"

	AbsGemfile string `json:"-"`
}

// Java is [layer.NAME.java].
type Java struct {
	Pom          string            // a pom.xml whose runtime dependencies go in java/lib, or:
	Gradle       string            // a build.gradle(.kts), or:
	Artifacts    []string          // group:artifact:version[:classifier]
	Repositories []string          // extra repositories
	Classifiers  map[string]string // group:artifact -> classifier; {arch} is x86_64 or aarch_64
	Build        string            // "auto" (default), "host" or "container" (Maven in the build image)

	AbsPom    string `json:"-"`
	AbsGradle string `json:"-"`
}

func decodeLanguages(t *table, l *Layer) {
	if pt := t.table("python"); pt != nil {
		p := &Python{}
		pt.str("requirements", &p.Requirements)
		pt.str("project", &p.Project)
		pt.str("installer", &p.Installer)
		pt.str("layout", &p.Layout)
		pt.str("build", &p.Build)
		pt.strs("exclude_packages", &p.ExcludePackages)
		pt.str("index_url", &p.IndexURL)
		pt.strs("extra_index_urls", &p.ExtraIndexURLs)
		pt.strs("find_links", &p.FindLinks)
		pt.boolean("compile", &p.Compile)
		byteSize(pt, "bytecode_budget", &p.BytecodeBudget)
		pt.str("prune", &p.Prune)
		boolField(pt, "prune_stubs", &p.PruneStubs)
		boolField(pt, "strip", &p.Strip)
		pt.done()
		l.Python = p
	}
	if nt := t.table("node"); nt != nil {
		n := &Node{}
		nt.str("dir", &n.Dir)
		nt.str("layout", &n.Layout)
		nt.str("build", &n.Build)
		nt.str("prune", &n.Prune)
		boolField(nt, "prune_types", &n.PruneTypes)
		nt.done()
		l.Node = n
	}
	if rt := t.table("ruby"); rt != nil {
		r := &Ruby{Gemfile: "Gemfile", Without: []string{"development", "test"}}
		rt.str("gemfile", &r.Gemfile)
		rt.strs("without", &r.Without)
		rt.str("build", &r.Build)
		rt.done()
		l.Ruby = r
	}
	if jt := t.table("java"); jt != nil {
		j := &Java{}
		jt.str("pom", &j.Pom)
		jt.str("gradle", &j.Gradle)
		jt.strs("artifacts", &j.Artifacts)
		jt.strs("repositories", &j.Repositories)
		jt.strMap("classifiers", &j.Classifiers)
		jt.str("build", &j.Build)
		jt.done()
		l.Java = j
	}
}

func boolField(t *table, k string, dst *bool) {
	var b *bool
	if t.boolean(k, &b) {
		*dst = *b
	}
}

func oneOf(w *walker, key, v string, allowed ...string) {
	if v == "" {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	w.errorf(key, "%q is not one of %s", v, joinQuoted(allowed))
}

// existingFile resolves a file path, as localPath does, and checks it is a file.
func existingFile(w *walker, f *File, key, p string) string {
	abs, ok := localPath(w, f, key, p)
	if !ok {
		return ""
	}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		w.errorf(key, "%q is a folder, not a file", p)
		return ""
	}
	return abs
}

func existingDir(w *walker, f *File, key, p string) string {
	abs, ok := localPath(w, f, key, p)
	if !ok {
		return ""
	}
	if st, err := os.Stat(abs); err == nil && !st.IsDir() {
		w.errorf(key, "%q is not a folder", p)
		return ""
	}
	return abs
}

var builds = []string{"auto", "host", "container"}

func validateLanguages(w *walker, f *File, l *Layer, key string) {
	if p := l.Python; p != nil {
		k := key + ".python"
		switch {
		case p.Requirements != "" && p.Project != "":
			w.errorf(k, "set requirements or project, not both")
		case p.Requirements != "":
			p.AbsRequirements = existingFile(w, f, k+".requirements", p.Requirements)
		case p.Project != "":
			p.AbsProject = existingDir(w, f, k+".project", p.Project)
		default:
			w.errorf(k, "set requirements (a requirements.txt) or project (a folder with pyproject.toml)")
		}
		oneOf(w, k+".installer", p.Installer, "pip", "uv")
		oneOf(w, k+".layout", p.Layout, "site-packages", "flat")
		oneOf(w, k+".build", p.Build, builds...)
		oneOf(w, k+".prune", p.Prune, "safe")
		needLanguage(w, l, k, "python")
	}
	if n := l.Node; n != nil {
		k := key + ".node"
		if n.Dir == "" {
			w.errorf(k+".dir", "required: the folder with package.json and its lockfile")
		} else {
			n.AbsDir = existingDir(w, f, k+".dir", n.Dir)
		}
		oneOf(w, k+".layout", n.Layout, "node_modules", "versioned")
		oneOf(w, k+".build", n.Build, builds...)
		oneOf(w, k+".prune", n.Prune, "safe")
		needLanguage(w, l, k, "nodejs")
	}
	if r := l.Ruby; r != nil {
		k := key + ".ruby"
		r.AbsGemfile = existingFile(w, f, k+".gemfile", r.Gemfile)
		oneOf(w, k+".build", r.Build, builds...)
		needLanguage(w, l, k, "ruby")
	}
	if j := l.Java; j != nil {
		k := key + ".java"
		n := 0
		if j.Pom != "" {
			n++
			j.AbsPom = existingFile(w, f, k+".pom", j.Pom)
		}
		if j.Gradle != "" {
			n++
			j.AbsGradle = existingFile(w, f, k+".gradle", j.Gradle)
		}
		if len(j.Artifacts) > 0 {
			n++
		}
		if n != 1 {
			w.errorf(k, "set exactly one of pom, gradle or artifacts")
		}
		for i, a := range j.Artifacts {
			if parts := len(splitColon(a)); parts < 3 || parts > 4 {
				w.errorf(fmt.Sprintf("%s.artifacts[%d]", k, i), "%q is not group:artifact:version[:classifier]", a)
			}
		}
		oneOf(w, k+".build", j.Build, builds...)
		if j.Build == "container" && j.Gradle != "" {
			w.errorf(k+".build", `"container" runs Maven in the build image, for pom and artifacts; a Gradle build resolves on the host (build = "auto" or "host")`)
		}
		needLanguage(w, l, k, "java")
	}
}

// needLanguage checks that a language table comes with a runtime of that language.
func needLanguage(w *walker, l *Layer, key, lang string) {
	for _, r := range l.Runtimes {
		if string(r.Language) == lang {
			return
		}
	}
	if len(l.Runtimes) > 0 {
		w.errorf(key, "compatible_runtimes has no %s runtime for this table", lang)
	}
}

func splitColon(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// MarshalJSON is the section as it enters cache keys: passwords in URLs are masked,
// because a credential changes no byte of the layer and must not be in key text.
func (p Python) MarshalJSON() ([]byte, error) {
	type plain Python // no methods: avoids recursion
	c := plain(p)
	c.IndexURL = maskURL(c.IndexURL)
	c.ExtraIndexURLs = maskURLs(c.ExtraIndexURLs)
	c.FindLinks = maskURLs(c.FindLinks)
	return json.Marshal(c)
}

func maskURLs(us []string) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = maskURL(u)
	}
	return out
}

// maskURL hides the user information of a URL (a password, or a token used as the
// user name: https://TOKEN@host) with the one rule plan output and logs use.
func maskURL(s string) string { return redact.URLs(s) }

// byteSize reads a size: an integer of bytes, or a string with a unit ("200MiB",
// "240 MB"; B, kB, MB, GB decimal, KiB, MiB, GiB binary).
func byteSize(t *table, k string, dst *int64) {
	v, ok := t.take(k)
	if !ok {
		return
	}
	switch x := v.(type) {
	case int64:
		if x <= 0 {
			t.w.errorf(t.key(k), "must be a positive number of bytes, not %d", x)
			return
		}
		*dst = x
	case string:
		n, err := parseByteSize(x)
		if err != nil {
			t.w.errorf(t.key(k), "%v", err)
			return
		}
		*dst = n
	default:
		t.w.errorf(t.key(k), "must be a size (an integer of bytes, or a string such as \"200MiB\"), not %s", typeName(v))
	}
}

var sizeUnits = map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}

func parseByteSize(s string) (int64, error) {
	num := strings.TrimRight(strings.TrimSpace(s), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
	unit := strings.ToLower(strings.TrimSpace(strings.TrimSpace(s)[len(num):]))
	mul, okUnit := sizeUnits[unit]
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !okUnit || err != nil || f <= 0 {
		return 0, fmt.Errorf("%q is not a size: write bytes as an integer, or a number and a unit (B, kB, MB, GB, KiB, MiB, GiB), such as \"200MiB\"", s)
	}
	return int64(f * float64(mul)), nil
}
