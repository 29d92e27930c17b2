package sbom

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// pypiComponent reads a distribution's METADATA (RFC 822 style headers).
func pypiComponent(b []byte) *cdx.Component {
	h := headers(b)
	name, ver := first(h["name"]), first(h["version"])
	if name == "" || ver == "" {
		return nil
	}
	var lic []cdx.LicenseChoice
	switch {
	case first(h["license-expression"]) != "":
		lic = []cdx.LicenseChoice{{Expression: first(h["license-expression"])}}
	case oneLine(first(h["license"])) != "" && !strings.EqualFold(first(h["license"]), "UNKNOWN"):
		lic = licenseChoice(first(h["license"]))
	default:
		for _, c := range h["classifier"] {
			if rest, ok := strings.CutPrefix(c, "License :: "); ok {
				parts := strings.Split(rest, " :: ")
				lic = append(lic, cdx.LicenseChoice{License: &cdx.License{Name: parts[len(parts)-1]}})
			}
		}
	}
	return &cdx.Component{
		Type: cdx.ComponentTypeLibrary, Name: name, Version: ver,
		PackageURL: "pkg:pypi/" + pypiName(name) + "@" + purlEscape(ver),
		Licenses:   licenses(lic),
	}
}

// headers parses the header block of a METADATA file (up to the first blank line),
// joining continuation lines.
func headers(b []byte) map[string][]string {
	h := map[string][]string{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" {
			break
		}
		if (l[0] == ' ' || l[0] == '\t') && last != "" {
			vs := h[last]
			vs[len(vs)-1] += "\n" + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		h[last] = append(h[last], strings.TrimSpace(v))
	}
	return h
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// oneLine is s when it is a short licence name, not a licence's whole text (old
// packages put the text in License:).
func oneLine(s string) string {
	if strings.Contains(s, "\n") || len(s) > 100 {
		return ""
	}
	return s
}

var pypiSep = regexp.MustCompile(`[-_.]+`)

// pypiName is the purl form: PEP 503 normalised.
func pypiName(n string) string { return pypiSep.ReplaceAllString(strings.ToLower(n), "-") }

// isPackageRoot: dir is node_modules/NAME/ or node_modules/@scope/NAME/ (anywhere),
// not a folder inside a package that happens to hold a package.json.
func isPackageRoot(dir string) bool {
	parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	n := len(parts)
	switch {
	case n >= 2 && parts[n-2] == "node_modules" && !strings.HasPrefix(parts[n-1], "@") && parts[n-1] != ".bin":
		return true
	case n >= 3 && parts[n-3] == "node_modules" && strings.HasPrefix(parts[n-2], "@"):
		return true
	}
	return false
}

// npmComponent reads a package.json.
func npmComponent(b []byte) (*cdx.Component, error) {
	var p struct {
		Name     string          `json:"name"`
		Version  string          `json:"version"`
		License  json.RawMessage `json:"license"`
		Licenses []struct {
			Type string `json:"type"`
		} `json:"licenses"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("package.json: %w", err)
	}
	if p.Name == "" || p.Version == "" {
		return nil, nil
	}
	var lic []cdx.LicenseChoice
	var s string
	var obj struct {
		Type string `json:"type"`
	}
	switch {
	case json.Unmarshal(p.License, &s) == nil && s != "":
		lic = licenseChoice(s)
	case json.Unmarshal(p.License, &obj) == nil && obj.Type != "":
		lic = licenseChoice(obj.Type)
	default:
		for _, l := range p.Licenses {
			if l.Type != "" {
				lic = append(lic, licenseChoice(l.Type)...)
			}
		}
	}
	purl := "pkg:npm/"
	if scope, name, ok := strings.Cut(p.Name, "/"); ok && strings.HasPrefix(scope, "@") {
		purl += "%40" + purlEscape(scope[1:]) + "/" + purlEscape(name)
	} else {
		purl += purlEscape(p.Name)
	}
	purl += "@" + purlEscape(p.Version)
	return &cdx.Component{Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: purl, Licenses: licenses(lic)}, nil
}

var (
	gemField = regexp.MustCompile(`(?m)^\s*s\.(name|version|platform)\s*=\s*"([^"]*)"`)
	gemLics  = regexp.MustCompile(`(?m)^\s*s\.licenses?\s*=\s*\[?([^\n\]]*)`)
	gemStr   = regexp.MustCompile(`"([^"]*)"`)
)

// gemComponent reads a gemspec as RubyGems writes it into specifications/
// (s.name = "rack".freeze ...); the file name gives what the fields lack.
func gemComponent(b []byte, file string) *cdx.Component {
	f := map[string]string{}
	for _, m := range gemField.FindAllSubmatch(b, -1) {
		if _, ok := f[string(m[1])]; !ok {
			f[string(m[1])] = string(m[2])
		}
	}
	name, ver := f["name"], f["version"]
	if name == "" || ver == "" {
		return nil
	}
	var lic []cdx.LicenseChoice
	if m := gemLics.FindSubmatch(b); m != nil {
		for _, s := range gemStr.FindAllSubmatch(m[1], -1) {
			lic = append(lic, licenseChoice(string(s[1]))...)
		}
	}
	purl := "pkg:gem/" + purlEscape(name) + "@" + purlEscape(ver)
	if p := f["platform"]; p != "" && p != "ruby" {
		purl += "?platform=" + purlEscape(p)
	} else if plat, ok := strings.CutPrefix(strings.TrimSuffix(file, ".gemspec"), name+"-"+ver+"-"); ok {
		purl += "?platform=" + purlEscape(plat)
	}
	return &cdx.Component{Type: cdx.ComponentTypeLibrary, Name: name, Version: ver, PackageURL: purl, Licenses: licenses(lic)}
}

// jarComponents reads every META-INF/maven/G/A/pom.properties in a jar (a shaded
// jar ships several), with the licences of the pom.xml beside each.
func jarComponents(b []byte) ([]*cdx.Component, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("reading the jar: %w", err)
	}
	poms := map[string]*zip.File{}
	var props []*zip.File
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "META-INF/maven/") {
			continue
		}
		switch {
		case strings.HasSuffix(f.Name, "/pom.properties"):
			props = append(props, f)
		case strings.HasSuffix(f.Name, "/pom.xml"):
			poms[strings.TrimSuffix(f.Name, "pom.xml")] = f
		}
	}
	sort.Slice(props, func(i, j int) bool { return props[i].Name < props[j].Name })
	var out []*cdx.Component
	for _, f := range props {
		pb, err := readEntry(f, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		kv := properties(pb)
		g, a, v := kv["groupId"], kv["artifactId"], kv["version"]
		if g == "" || a == "" || v == "" {
			continue
		}
		var lic []cdx.LicenseChoice
		if pf := poms[strings.TrimSuffix(f.Name, "pom.properties")]; pf != nil {
			if xb, err := readEntry(pf, 4<<20); err == nil {
				lic = pomLicenses(xb)
			}
		}
		out = append(out, &cdx.Component{
			Type: cdx.ComponentTypeLibrary, Group: g, Name: a, Version: v,
			PackageURL: "pkg:maven/" + purlEscape(g) + "/" + purlEscape(a) + "@" + purlEscape(v),
			Licenses:   licenses(lic),
		})
	}
	return out, nil
}

// properties parses a Java .properties file (the simple form pom.properties uses).
func properties(b []byte) map[string]string {
	kv := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return kv
}

func pomLicenses(b []byte) []cdx.LicenseChoice {
	var pom struct {
		Licenses []struct {
			Name string `xml:"name"`
			URL  string `xml:"url"`
		} `xml:"licenses>license"`
	}
	if xml.Unmarshal(b, &pom) != nil {
		return nil
	}
	var out []cdx.LicenseChoice
	for _, l := range pom.Licenses {
		if n := strings.TrimSpace(l.Name); n != "" {
			out = append(out, cdx.LicenseChoice{License: &cdx.License{Name: n, URL: strings.TrimSpace(l.URL)}})
		}
	}
	return out
}

func nativeComponent(n NativeLib) *cdx.Component {
	if n.Package == "" || n.Version == "" || (n.Type != "deb" && n.Type != "rpm") {
		return nil
	}
	purl := "pkg:" + n.Type + "/" + purlEscape(n.Distro) + "/" + purlEscape(n.Package) + "@" + purlEscape(n.Version)
	if n.Arch != "" {
		purl += "?arch=" + purlEscape(n.Arch)
	}
	return &cdx.Component{Type: cdx.ComponentTypeLibrary, Name: n.Package, Version: n.Version, PackageURL: purl}
}

// spdxIDs are licence identifiers common in package metadata, written as SPDX ids;
// anything else is kept as a name (CycloneDX only accepts listed ids as ids).
var spdxIDs = map[string]bool{
	"0BSD": true, "Apache-2.0": true, "BSD-2-Clause": true, "BSD-3-Clause": true, "BlueOak-1.0.0": true,
	"CC0-1.0": true, "EPL-1.0": true, "EPL-2.0": true, "GPL-2.0-only": true, "GPL-2.0-or-later": true,
	"GPL-3.0-only": true, "GPL-3.0-or-later": true, "ISC": true, "LGPL-2.1-only": true,
	"LGPL-2.1-or-later": true, "LGPL-3.0-only": true, "LGPL-3.0-or-later": true, "MIT": true,
	"MIT-0": true, "MPL-2.0": true, "PSF-2.0": true, "Python-2.0": true, "Ruby": true, "Unlicense": true,
	"Zlib": true, "Artistic-2.0": true, "BSD-1-Clause": true, "WTFPL": true,
}

// licenseChoice turns a metadata licence string into an SPDX id, an SPDX expression
// (contains AND / OR / WITH) or a plain name.
func licenseChoice(s string) []cdx.LicenseChoice {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil
	case spdxIDs[s]:
		return []cdx.LicenseChoice{{License: &cdx.License{ID: s}}}
	case regexp.MustCompile(`\s(AND|OR|WITH)\s`).MatchString(s):
		return []cdx.LicenseChoice{{Expression: s}}
	}
	return []cdx.LicenseChoice{{License: &cdx.License{Name: s}}}
}

func licenses(l []cdx.LicenseChoice) *cdx.Licenses {
	if len(l) == 0 {
		return nil
	}
	// CycloneDX allows one expression, or any number of licences, not both.
	for _, c := range l {
		if c.Expression != "" {
			ls := cdx.Licenses{c}
			return &ls
		}
	}
	ls := cdx.Licenses(l)
	return &ls
}

// purlEscape percent-encodes a purl segment.
func purlEscape(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
}
