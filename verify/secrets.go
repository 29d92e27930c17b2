package verify

import (
	"archive/zip"
	"bytes"
	"sort"

	"github.com/layerpack/layerpack/secrets"
)

// checkSecret reports a file that looks like credentials, unless allowed.
func (c *checker) checkSecret(name string, head []byte) {
	f, _ := secrets.Check(name, bytes.NewReader(head))
	if f == nil || secrets.Allowed(name, c.opt.AllowSecrets) {
		return
	}
	c.add(Error, name, CheckSecret, "%q looks like credentials (%s); layers are often shared, so leave it out, or allow it with allow_secrets = [%s] in the layer's config",
		name, f.Reason, quote(name))
}

// checkVCS warns once for each version-control folder in the layer.
func (c *checker) checkVCS(files []*zip.File) {
	counts := make(map[string]int)
	for _, f := range files {
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
