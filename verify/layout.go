package verify

import (
	"archive/zip"
	"fmt"
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
	notSearched layoutKind = iota // no compatible runtime looks there
	rubyVendor                    // ruby/lib/vendor/bundle/: not on GEM_PATH
	libPython                     // lib/pythonX.Y/: Python code on LD_LIBRARY_PATH
	libNode                       // lib/node_modules/: Node modules on LD_LIBRARY_PATH
	otherPython                   // python/lib/pythonX.Y/site-packages/ of a Python no runtime runs
)

// layoutGroup gathers the misplaced files of one kind under one folder.
type layoutGroup struct {
	kind  layoutKind
	key   string // the folder, with a trailing slash; "" for the top of the layer
	names []string
}

var (
	libPythonRe   = regexp.MustCompile(`^lib/python(\d+\.\d+)/`)
	sitePackageRe = regexp.MustCompile(`^python/lib/python(\d+\.\d+)/site-packages/`)
	vendorRubyRe  = regexp.MustCompile(`^ruby/lib/vendor/bundle/ruby/(\d+\.\d+\.\d+)/(.+)$`)
	bundleRubyRe  = regexp.MustCompile(`^vendor/bundle/ruby/\d+\.\d+\.\d+/(.+)$`)
)

// checkLayout reports regular files that none of the compatible runtimes will find.
func (c *checker) checkLayout(files []*zip.File) {
	groups := make(map[string]*layoutGroup)
	extensions := 0
	for _, f := range files {
		if !f.Mode().IsRegular() {
			continue
		}
		if path.Dir(f.Name) == "extensions" {
			extensions++
		}
		kind, key, bad := c.classify(f.Name)
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
			c.add(Error, name, CheckLayout, "%s", c.layoutMessage(g, name))
		}
		if n := len(g.names); n > maxPerGroup {
			c.add(Error, g.key, CheckLayout, "%s; the first %d are listed", c.layoutSummary(g, n), maxPerGroup)
		}
	}
	if extensions > maxExtensions {
		c.add(Warning, "extensions/", CheckLayout, "%d files directly under extensions/ would each start as an extension; Lambda allows at most %d extensions per function",
			extensions, maxExtensions)
	}
}

// classify says whether name is misplaced, how, and under which folder to group it.
func (c *checker) classify(name string) (layoutKind, string, bool) {
	if strings.HasPrefix(name, "ruby/lib/vendor/bundle/") {
		return rubyVendor, "ruby/lib/vendor/bundle/", true
	}
	rts := c.opt.Runtimes
	if len(rts) == 0 {
		return 0, "", false
	}
	pyVersions := c.versions(lambda.Python)
	if m := libPythonRe.FindStringSubmatch(name); m != nil && len(pyVersions) > 0 {
		return libPython, "lib/python" + m[1] + "/", true
	}
	if strings.HasPrefix(name, "lib/node_modules/") && len(c.versions(lambda.Node)) > 0 {
		return libNode, "lib/node_modules/", true
	}
	if m := sitePackageRe.FindStringSubmatch(name); m != nil && len(pyVersions) > 0 && !contains(pyVersions, m[1]) {
		return otherPython, m[0], true
	}
	for _, rt := range rts {
		if rt.Searched(name) {
			return 0, "", false
		}
	}
	key := ""
	if i := strings.Index(name, "/"); i >= 0 {
		key = name[:i+1]
	}
	return notSearched, key, true
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
	}
	msg = q + " is not where " + c.whereRuntimesLook()
	if s := c.suggest(name); s != "" && s != name {
		msg += "; move it to " + quote(s)
	}
	return msg
}

func (c *checker) layoutSummary(g *layoutGroup, n int) string {
	under := fmt.Sprintf("%d files under %s", n, quote(g.key))
	if g.key == "" {
		under = fmt.Sprintf("%d files at the top of the layer", n)
	}
	switch g.kind {
	case rubyVendor:
		return under + " are not on GEM_PATH, so Ruby does not find these gems; they belong in " + c.gemDirs()
	case libPython:
		return under + " are where only the dynamic loader looks; " + c.pythonImports() + "; move them to " + quote("python/"+g.key)
	case libNode:
		return under + " are where only the dynamic loader looks; " + c.nodeRequires() + "; move them to " + quote("nodejs/node_modules/")
	case otherPython:
		return under + " are for another Python, which " + c.pythonSearch() + "; install the packages for " + c.pythonNames() + " instead"
	}
	return under + " are not where " + c.whereRuntimesLook()
}

// whereRuntimesLook is "python3.12 looks (python/ or python/lib/python3.12/site-packages/)".
func (c *checker) whereRuntimesLook() string {
	var ids []string
	var folders []string
	seen := make(map[string]bool)
	addFolder := func(f string) {
		if !seen[f] {
			seen[f] = true
			folders = append(folders, f)
		}
	}
	for _, rt := range c.opt.Runtimes {
		ids = append(ids, rt.ID)
		if rt.Language == lambda.Python {
			addFolder("python/")
			addFolder(lambda.SitePackages(rt.Version) + "/")
			continue
		}
		for _, p := range rt.SearchedPrefixes() {
			addFolder(p)
		}
	}
	if len(folders) == 0 {
		for _, p := range lambda.CommonPrefixes {
			addFolder(p)
		}
	}
	verb := "looks"
	if len(ids) > 1 {
		verb = "look"
	}
	return joinOr(ids) + " " + verb + " (" + joinOr(folders) + ")"
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
