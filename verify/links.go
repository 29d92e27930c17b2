package verify

import (
	"archive/zip"
	"errors"
	"io"
	"io/fs"
	"strings"

	"github.com/layerpack/layerpack/symlinks"
)

// maxLinkLen is the longest link text Linux accepts (PATH_MAX less the NUL).
const maxLinkLen = 4095

// checkLinks resolves every symlink of the layer as the kernel will under /opt,
// through the other links of the layer, and refuses entries below a link: unzip
// writes them wherever the link points.
func (c *checker) checkLinks(files []*zip.File) {
	tree := symlinks.New()
	var links []*zip.File
	for _, f := range files {
		mode := f.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			target, err := readLink(f)
			if err != nil {
				c.add(Error, f.Name, CheckSymlink, "%q is a symlink whose target cannot be read: %v", f.Name, err)
				continue
			}
			tree.Add(f.Name, symlinks.Link, target)
			links = append(links, f)
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			tree.Add(f.Name, symlinks.Dir, "")
		default:
			tree.Add(f.Name, symlinks.File, "")
		}
	}
	for _, f := range files {
		if p := tree.LinkedParent(f.Name); p != "" {
			c.add(Error, f.Name, CheckSymlink, "%q is below the symlink %q; unzip would write it wherever the link points", f.Name, p)
		}
	}
	for _, f := range links {
		err := tree.Check(f.Name)
		var le *symlinks.Error
		if !errors.As(err, &le) {
			continue
		}
		switch le.Problem {
		case symlinks.Absolute:
			c.add(Error, f.Name, CheckSymlink, "%q -> %q is an absolute link; links in a layer must be relative and stay under /opt", f.Name, le.Target)
		case symlinks.Loop:
			c.add(Error, f.Name, CheckSymlink, "%q -> %q does not resolve: more than %d links in a row", f.Name, le.Target, symlinks.MaxHops)
		default:
			c.add(Error, f.Name, CheckSymlink, "%q -> %q leaves /opt: unzipped there it points to %s%s", f.Name, le.Target, le.Reached, le.Through())
		}
	}
}

// readLink reads a symlink entry's target, at most maxLinkLen bytes.
func readLink(f *zip.File) (string, error) {
	if f.UncompressedSize64 > maxLinkLen {
		return "", errors.New("it is longer than the 4095 bytes Linux allows")
	}
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkLen+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxLinkLen {
		return "", errors.New("it is longer than the 4095 bytes Linux allows")
	}
	if len(b) == 0 {
		return "", errors.New("it is empty")
	}
	if strings.IndexByte(string(b), 0) >= 0 {
		return "", errors.New("it contains a NUL byte")
	}
	return string(b), nil
}
