package verify

import (
	"archive/zip"
	"bytes"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/secrets"
)

// readRecords notes the files installed Python distributions list in their
// RECORD: they come from a registry, like node_modules/, and are not checked
// for secrets.
func (c *checker) readRecords(files []*zip.File) {
	for _, f := range files {
		if !f.Mode().IsRegular() || !secrets.IsRecord(f.Name) || secrets.InPackage(f.Name) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			continue // reported when the contents are read
		}
		paths, _ := secrets.ParseRecord(f.Name, rc)
		rc.Close()
		if c.packaged == nil {
			c.packaged = make(map[string]bool)
		}
		for _, p := range paths {
			c.packaged[p] = true
		}
	}
}

// checkSecret reports a file that looks like credentials, unless allowed.
func (c *checker) checkSecret(name string, head []byte) {
	if c.packaged[name] {
		return
	}
	f, _ := secrets.Check(name, bytes.NewReader(head))
	if f != nil {
		c.secretFinding(name, f)
	}
}

// secretFinding reports what secrets.Check found in name, unless allowed.
func (c *checker) secretFinding(name string, f *secrets.Finding) {
	if c.packaged[name] || secrets.Allowed(name, c.opt.AllowSecrets) {
		return
	}
	c.add(Error, name, CheckSecret, "%q looks like credentials (%s); layers are often shared, so leave it out, or allow it with allow_secrets = [%s] in the layer's config",
		name, f.Reason, quote(name))
}

// checkVCS warns once for each version-control folder in the layer.
func (c *checker) checkVCS(files []*zip.File) {
	counts := make(map[string]int)
	for _, f := range files {
		if !maybeVCS(f.Name) {
			continue
		}
		if root := secrets.VCSRoot(f.Name); root != "" && !secrets.Allowed(f.Name, c.opt.AllowSecrets) {
			counts[root]++
		}
	}
	roots := make([]string, 0, len(counts))
	for r := range counts {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	for _, r := range roots {
		c.add(Warning, r, CheckVCS, "%q is version-control data (%s): history and config, which may hold credentials, are no use in a layer; builds leave it out", r, plural(counts[r], "entry", "entries"))
	}
}

// maybeVCS is false for names secrets.VCSRoot says "" of without splitting them:
// a VCS folder's name is in the entry's.
func maybeVCS(name string) bool {
	return strings.Contains(name, ".git") || strings.Contains(name, ".hg") || strings.Contains(name, ".svn")
}
