package verify

import (
	"archive/zip"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/lambda"
)

const (
	// maxPerGroup is how many misplaced files of one folder are listed one by one;
	// the rest are counted, so a wrong layout of 10,000 files stays readable.
	maxPerGroup = 3
	// maxExtensions is Lambda's limit of extensions per function.
	maxExtensions = 10
)

type layoutKind int

const (
	rubyVendor       layoutKind = iota // ruby/lib/vendor/bundle/: not on GEM_PATH
	libPython                          // lib/pythonX.Y/: Python code on LD_LIBRARY_PATH
	libNode                            // lib/node_modules/: Node modules on LD_LIBRARY_PATH
	otherPython                        // python/lib/pythonX.Y/site-packages/ of a Python no runtime runs
	rootSitePackages                   // site-packages/ at the top of the layer
	rootPyPackage                      // a Python package (or its dist-info) at the top of the layer
	rootNodeModules                    // node_modules/ at the top of the layer
	rootBundle                         // vendor/bundle/ruby/X.Y.0/ at the top of the layer
	otherRuby                          // ruby/gems/X.Y.0/ of a Ruby no runtime runs
)

// layoutGroup gathers the misplaced files of one kind under one folder.
type layoutGroup struct {
	kind  layoutKind
	key   string // the folder, with a trailing slash
	names []string
}

var (
	libPythonRe   = regexp.MustCompile(`^lib/python(\d+\.\d+)/`)
	sitePackageRe = regexp.MustCompile(`^python/lib/python(\d+\.\d+)/site-packages/`)
	vendorRubyRe  = regexp.MustCompile(`^ruby/lib/vendor/bundle/ruby/(\d+\.\d+\.\d+)/(.+)$`)
	bundleRubyRe  = regexp.MustCompile(`^vendor/bundle/ruby/\d+\.\d+\.\d+/(.+)$`)
	gemPathRe     = regexp.MustCompile(`^ruby/gems/(\d+\.\d+)\.0/`)
	distInfoRe    = regexp.MustCompile(`^[^/]+\.(dist-info|egg-info)/`)
)

// checkLayout warns about files that look misplaced for a compatible runtime:
// Lambda extracts the whole zip into /opt and any path is legal (data read by
// absolute path, an agent's own folder, a wrapper script), so only patterns that
// are a known mistake are reported, as warnings with the reason. What cannot work
// is an error: a root bootstrap of a custom runtime that is not executable.
func (c *checker) checkLayout(files []*zip.File) {
	groups := make(map[string]*layoutGroup)
	extensions := 0
	pyTop := c.pythonPackagesAtTop(files)
	for _, f := range files {
		if f.Name == "bootstrap" || f.Name == "bootstrap/" {
			c.checkBootstrap(f)
		}
		if !f.Mode().IsRegular() {
			continue
		}
		if path.Dir(f.Name) == "extensions" {
			extensions++
		}
		kind, key, bad := c.classify(f.Name, pyTop)
		if !bad {
			continue
		}
		id := fmt.Sprint(kind) + "\x00" + key
		g := groups[id]
		if g == nil {
			g = &layoutGroup{kind: kind, key: key}
			groups[id] = g
		}
		g.names = append(g.names, f.Name)
	}
	for _, g := range groups {
		sort.Strings(g.names)
		for _, name := range g.names[:min(len(g.names), maxPerGroup)] {
			c.add(Warning, name, CheckLayout, "%s", c.layoutMessage(g, name))
		}
		if n := len(g.names); n > maxPerGroup {
			c.add(Warning, g.key, CheckLayout, "%s; the first %d are listed", c.layoutSummary(g, n), maxPerGroup)
		}
	}
	if extensions > maxExtensions {
		c.add(Warning, "extensions/", CheckLayout, "%d files directly under extensions/ would each start as an extension; Lambda allows at most %d extensions per function",
			extensions, maxExtensions)
	}
}

// checkBootstrap: Lambda runs /opt/bootstrap of a layer for a custom runtime
// (provided.al2, provided.al2023) when the function has none, so there it must be
// executable; other runtimes never run it.
func (c *checker) checkBootstrap(f *zip.File) {
	var custom, other []string
	for _, rt := range c.opt.Runtimes {
		if rt.Language == lambda.Provided {
			custom = append(custom, rt.ID)
		} else {
			other = append(other, rt.ID)
		}
	}
	mode := f.Mode()
	run := "runs"
	if len(custom) > 1 {
		run = "run"
	}
	switch {
	case len(custom) > 0 && !mode.IsRegular() && mode&fs.ModeSymlink == 0:
		c.add(Error, f.Name, CheckExecBit, "%q is a folder; %s "+run+" /opt/bootstrap as the runtime when the function has none, so it must be an executable file", f.Name, joinAnd(custom))
	case len(custom) > 0 && mode.IsRegular() && mode.Perm()&0o001 == 0:
		c.add(Error, f.Name, CheckExecBit, "%q has mode %04o; %s "+run+" /opt/bootstrap as the runtime when the function has none, so it must be executable by everyone (%04o)",
			f.Name, mode.Perm(), joinAnd(custom), mode.Perm()|0o555)
	case len(custom) == 0 && len(other) > 0:
		verb := "runs"
		if len(other) > 1 {
			verb = "run"
		}
		c.add(Warning, f.Name, CheckLayout, "%q at the top of the layer is run only by the custom runtimes (provided.al2, provided.al2023); %s never %s it",
			f.Name, joinAnd(other), verb)
	}
}

// pythonPackagesAtTop finds top-level folders holding an __init__.py: a Python
// package zipped at the top of the layer instead of under python/. Only for
// layers with a Python runtime.
func (c *checker) pythonPackagesAtTop(files []*zip.File) map[string]bool {
	if len(c.versions(lambda.Python)) == 0 {
		return nil
	}
	top := make(map[string]bool)
	for _, f := range files {
		dir, rest, ok := strings.Cut(f.Name, "/")
		if ok && rest == "__init__.py" && !knownTop[dir] {
			top[dir+"/"] = true
		}
	}
	return top
}

// knownTop are top-level folders with a meaning of their own.
var knownTop = map[string]bool{"python": true, "nodejs": true, "ruby": true, "java": true, "bin": true, "lib": true, "extensions": true}

// classify says whether name looks misplaced, how, and under which folder to
// group it. Paths no runtime has an opinion on are fine.
func (c *checker) classify(name string, pyTop map[string]bool) (layoutKind, string, bool) {
	if strings.HasPrefix(name, "ruby/lib/vendor/bundle/") {
		return rubyVendor, "ruby/lib/vendor/bundle/", true
	}
	if len(c.opt.Runtimes) == 0 {
		return 0, "", false
	}
	if len(c.versions(lambda.Python)) > 0 {
		pyVersions := c.versions(lambda.Python)
		if m := libPythonRe.FindStringSubmatch(name); m != nil {
			return libPython, "lib/python" + m[1] + "/", true
		}
		if m := sitePackageRe.FindStringSubmatch(name); m != nil && !contains(pyVersions, m[1]) {
			return otherPython, m[0], true
		}
		if strings.HasPrefix(name, "site-packages/") {
			return rootSitePackages, "site-packages/", true
		}
		if m := distInfoRe.FindString(name); m != "" {
			return rootPyPackage, m, true
		}
		if i := strings.Index(name, "/"); i >= 0 && pyTop[name[:i+1]] {
			return rootPyPackage, name[:i+1], true
		}
	}
	if len(c.versions(lambda.Node)) > 0 {
		if strings.HasPrefix(name, "lib/node_modules/") {
			return libNode, "lib/node_modules/", true
		}
		if strings.HasPrefix(name, "node_modules/") {
			return rootNodeModules, "node_modules/", true
		}
	}
	if rv := c.versions(lambda.Ruby); len(rv) > 0 {
		if bundleRubyRe.MatchString(name) {
			return rootBundle, "vendor/bundle/", true
		}
		if m := gemPathRe.FindStringSubmatch(name); m != nil && !contains(rv, m[1]) {
			return otherRuby, m[0], true
		}
	}
	return 0, "", false
}

func (c *checker) layoutMessage(g *layoutGroup, name string) string {
	q := quote(name)
	var msg string
	switch g.kind {
	case rubyVendor:
		msg = q + " is under ruby/lib/vendor/bundle/, which is not on GEM_PATH, so Ruby does not find these gems; they belong in " + c.gemDirs()
		if m := vendorRubyRe.FindStringSubmatch(name); m != nil {
			msg += "; move it to " + quote("ruby/gems/"+m[1]+"/"+m[2])
		}
		return msg
	case libPython:
		return q + " is under lib/, where only the dynamic loader looks; " + c.pythonImports() + "; move it to " + quote("python/"+name)
	case libNode:
		return q + " is under lib/, where only the dynamic loader looks; " + c.nodeRequires() + "; move it to " + quote("nodejs/"+strings.TrimPrefix(name, "lib/"))
	case otherPython:
		v := sitePackageRe.FindStringSubmatch(name)[1]
		return q + " is in the site-packages folder of Python " + v + ", which " + c.pythonSearch() + "; install the packages for " + c.pythonNames() + " instead"
	case rootSitePackages:
		return q + " is in a site-packages/ folder at the top of the layer, which " + c.pythonSearch() + "; move it to " + quote("python/"+strings.TrimPrefix(name, "site-packages/"))
	case rootPyPackage:
		return q + " is part of a Python package at the top of the layer, which " + c.pythonSearch() + "; move it to " + quote("python/"+name)
	case rootNodeModules:
		return q + " is in a node_modules/ folder at the top of the layer; " + c.nodeRequires() + "; move it to " + quote("nodejs/"+name)
	case otherRuby:
		v := gemPathRe.FindStringSubmatch(name)[1]
		return q + " is in the gem folder of Ruby " + v + ", which is not on the GEM_PATH of " + c.rubyIDs() + " (" + c.gemDirs() + "); install the gems for Ruby " + joinAnd(c.versions(lambda.Ruby)) + " instead"
	case rootBundle:
		msg = q + " is in a Bundler folder at the top of the layer, which is not on GEM_PATH; the gems belong in " + c.gemDirs()
		if s := c.suggest(name); s != "" {
			msg += "; move it to " + quote(s)
		}
		return msg
	}
	return q + " looks misplaced"
}

func (c *checker) layoutSummary(g *layoutGroup, n int) string {
	under := fmt.Sprintf("%d files under %s", n, quote(g.key))
	switch g.kind {
	case rubyVendor:
		return under + " are not on GEM_PATH, so Ruby does not find these gems; they belong in " + c.gemDirs()
	case libPython:
		return under + " are where only the dynamic loader looks; " + c.pythonImports() + "; move them to " + quote("python/"+g.key)
	case libNode:
		return under + " are where only the dynamic loader looks; " + c.nodeRequires() + "; move them to " + quote("nodejs/node_modules/")
	case otherPython:
		return under + " are for another Python, which " + c.pythonSearch() + "; install the packages for " + c.pythonNames() + " instead"
	case rootSitePackages:
		return under + " are at the top of the layer, which " + c.pythonSearch() + "; move them to \"python/\""
	case rootPyPackage:
		return under + " are a Python package at the top of the layer, which " + c.pythonSearch() + "; move them to " + quote("python/"+g.key)
	case rootNodeModules:
		return under + " are at the top of the layer; " + c.nodeRequires() + "; move them to \"nodejs/node_modules/\""
	case rootBundle:
		return under + " are not on GEM_PATH; the gems belong in " + c.gemDirs()
	case otherRuby:
		return under + " are for another Ruby, not on the GEM_PATH of " + c.rubyIDs() + " (" + c.gemDirs() + ")"
	}
	return under + " look misplaced"
}

// pythonImports is "python3.12 imports Python code from python/ or python/lib/python3.12/site-packages/".
func (c *checker) pythonImports() string {
	ids, folders := c.pythonFolders()
	verb := "imports"
	if len(ids) > 1 {
		verb = "import"
	}
	return joinOr(ids) + " " + verb + " Python code from " + joinOr(folders)
}

// pythonSearch is "python3.12 does not search (python/ or python/lib/python3.12/site-packages/)".
func (c *checker) pythonSearch() string {
	ids, folders := c.pythonFolders()
	verb := "does"
	if len(ids) > 1 {
		verb = "do"
	}
	return joinOr(ids) + " " + verb + " not search (" + joinOr(folders) + ")"
}

// pythonFolders are the layer's Python runtimes and the folders they import from.
func (c *checker) pythonFolders() (ids, folders []string) {
	folders = []string{"python/"}
	for _, rt := range c.opt.Runtimes {
		if rt.Language == lambda.Python {
			ids = append(ids, rt.ID)
			folders = append(folders, lambda.SitePackages(rt.Version)+"/")
		}
	}
	return ids, folders
}

// pythonNames is "Python 3.12" or "Python 3.11 and 3.12".
func (c *checker) pythonNames() string {
	return "Python " + joinAnd(c.versions(lambda.Python))
}

// nodeRequires is "nodejs20.x loads modules from nodejs/node_modules/ or nodejs/node20/node_modules/".
func (c *checker) nodeRequires() string {
	var ids, folders []string
	seen := make(map[string]bool)
	for _, rt := range c.opt.Runtimes {
		if rt.Language != lambda.Node {
			continue
		}
		ids = append(ids, rt.ID)
		for _, p := range rt.SearchedPrefixes() {
			if !seen[p] {
				seen[p] = true
				folders = append(folders, p)
			}
		}
	}
	verb := "loads"
	if len(ids) > 1 {
		verb = "load"
	}
	return joinOr(ids) + " " + verb + " modules from " + joinOr(folders)
}

// gemDirs is "ruby/gems/3.3.0/" for the compatible Ruby runtimes, or a pattern.
func (c *checker) gemDirs() string {
	var dirs []string
	for _, v := range c.versions(lambda.Ruby) {
		dirs = append(dirs, lambda.RubyGemPath(v)+"/")
	}
	if len(dirs) == 0 {
		return "ruby/gems/X.Y.0/ (GEM_PATH, for Ruby X.Y)"
	}
	return joinOr(dirs) + " (GEM_PATH)"
}

// rubyIDs is "ruby3.3" or "ruby3.3 and ruby3.4".
func (c *checker) rubyIDs() string {
	var ids []string
	for _, rt := range c.opt.Runtimes {
		if rt.Language == lambda.Ruby {
			ids = append(ids, rt.ID)
		}
	}
	return joinAnd(ids)
}

// suggest proposes where a misplaced file belongs, when all compatible runtimes
// with a language folder agree on one language and the name makes it clear.
func (c *checker) suggest(name string) string {
	var lang lambda.Language
	for _, rt := range c.opt.Runtimes {
		if rt.Language == lambda.Provided {
			continue
		}
		if lang != "" && lang != rt.Language {
			return ""
		}
		lang = rt.Language
	}
	switch lang {
	case lambda.Python:
		if rest, ok := strings.CutPrefix(name, "site-packages/"); ok {
			return "python/" + rest
		}
		if strings.Contains(name, "/") || strings.HasSuffix(name, ".py") {
			return "python/" + name
		}
	case lambda.Node:
		if strings.HasPrefix(name, "node_modules/") {
			return "nodejs/" + name
		}
	case lambda.Ruby:
		vs := c.versions(lambda.Ruby)
		if len(vs) != 1 {
			return ""
		}
		gems := lambda.RubyGemPath(vs[0]) + "/"
		if m := bundleRubyRe.FindStringSubmatch(name); m != nil {
			return gems + m[1]
		}
		if strings.HasPrefix(name, "gems/") || strings.HasPrefix(name, "specifications/") {
			return gems + name
		}
	case lambda.Java:
		if isJar(name) {
			return "java/lib/" + path.Base(name)
		}
	}
	return ""
}

// versions lists the language versions of the compatible runtimes of lang.
func (c *checker) versions(lang lambda.Language) []string {
	var vs []string
	for _, rt := range c.opt.Runtimes {
		if rt.Language == lang && !contains(vs, rt.Version) {
			vs = append(vs, rt.Version)
		}
	}
	return vs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// joinOr writes "a", "a or b", "a, b or c".
func joinOr(list []string) string { return joinWith(list, " or ") }

// joinAnd writes "a", "a and b", "a, b and c".
func joinAnd(list []string) string { return joinWith(list, " and ") }

func joinWith(list []string, last string) string {
	switch len(list) {
	case 0:
		return ""
	case 1:
		return list[0]
	}
	return strings.Join(list[:len(list)-1], ", ") + last + list[len(list)-1]
}
