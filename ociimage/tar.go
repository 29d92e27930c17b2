package ociimage

import (
	"archive/tar"
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Root is the folder a layer's tree sits under in the image, as Lambda extracts it.
const Root = "opt"

// maxLinkHops bounds symlink chains while resolving, as the kernel's ELOOP does.
const maxLinkHops = 40

type tarEntry struct {
	name   string // slash path inside the layer, no trailing slash
	kind   byte   // tar.TypeDir, tar.TypeReg, tar.TypeSymlink
	mode   int64  // permission bits only
	target string // symlink target
	file   *zip.File
}

// readZipTree lists the zip's entries as the tar will hold them, and refuses any
// entry that could land outside /opt when the image is unpacked: bad names,
// duplicates, entries below a symlink, and symlinks that resolve (through other
// symlinks of the tree, too) to a place outside the layer. verify checks a zip
// before this; this is the tar writer's own guard, so a gap there cannot become an
// escaping image.
func readZipTree(zr *zip.Reader) ([]tarEntry, error) {
	byName := map[string]*tarEntry{}
	var list []*tarEntry
	for _, f := range zr.File {
		isDir := strings.HasSuffix(f.Name, "/")
		name := strings.TrimSuffix(f.Name, "/")
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("zip entry %q: %w", f.Name, err)
		}
		if byName[name] != nil {
			return nil, fmt.Errorf("zip entry %q: duplicate name", f.Name)
		}
		e := &tarEntry{name: name, mode: int64(f.Mode().Perm()), file: f}
		m := f.Mode()
		switch {
		case isDir || m.IsDir():
			e.kind = tar.TypeDir
		case m&fs.ModeSymlink != 0:
			e.kind = tar.TypeSymlink
			t, err := readSmall(f)
			if err != nil {
				return nil, fmt.Errorf("zip entry %q: reading the symlink target: %w", f.Name, err)
			}
			e.target = t
		case m.IsRegular():
			e.kind = tar.TypeReg
		default:
			return nil, fmt.Errorf("zip entry %q: unsupported file type %s", f.Name, m.Type())
		}
		byName[name] = e
		list = append(list, e)
	}
	// Parent folders a zip made elsewhere may leave out, so every path has its folder.
	for _, e := range list {
		for d := path.Dir(e.name); d != "."; d = path.Dir(d) {
			p := byName[d]
			if p == nil {
				p = &tarEntry{name: d, kind: tar.TypeDir, mode: 0o755}
				byName[d] = p
				list = append(list, p)
				continue
			}
			if p.kind == tar.TypeSymlink {
				return nil, fmt.Errorf("zip entry %q: inside %q, which is a symlink", e.name, d)
			}
			if p.kind != tar.TypeDir {
				return nil, fmt.Errorf("zip entry %q: inside %q, which is a file", e.name, d)
			}
		}
	}
	for _, e := range list {
		if e.kind != tar.TypeSymlink {
			continue
		}
		if _, err := resolve(byName, strings.Split(path.Dir(e.name), "/"), e.target, 0); err != nil {
			return nil, fmt.Errorf("zip entry %q: symlink to %q: %w", e.name, e.target, err)
		}
	}
	out := make([]tarEntry, len(list))
	for i, e := range list {
		out[i] = *e
	}
	// Sorted by the tar name (folders end in "/"), so a folder comes before its
	// contents and the order does not depend on the zip's.
	sort.Slice(out, func(i, j int) bool { return out[i].tarName() < out[j].tarName() })
	return out, nil
}

func (e *tarEntry) tarName() string {
	if e.kind == tar.TypeDir {
		return Root + "/" + e.name + "/"
	}
	return Root + "/" + e.name
}

// checkName accepts only clean relative slash paths.
func checkName(name string) error {
	switch {
	case name == "" || name == ".":
		return fmt.Errorf("empty name")
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("absolute name")
	case strings.ContainsAny(name, "\\\x00"):
		return fmt.Errorf("backslash or NUL in name")
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("name has an empty, . or .. part")
		}
	}
	return nil
}

// resolve walks target from the folder dir (parts below the layer root) the way the
// kernel would inside /opt, following the tree's own symlinks, and returns where it
// ends. Going above the root, or an absolute target outside /opt, is an error.
// Parts that do not exist are taken as plain names (a dangling link stays inside).
func resolve(tree map[string]*tarEntry, dir []string, target string, hops int) ([]string, error) {
	if hops > maxLinkHops {
		return nil, fmt.Errorf("too many levels of symlinks")
	}
	stack := append([]string(nil), dir...)
	if len(stack) == 1 && stack[0] == "." {
		stack = nil
	}
	rest := target
	if strings.HasPrefix(target, "/") {
		t := path.Clean(target)
		if t != "/"+Root && !strings.HasPrefix(t, "/"+Root+"/") {
			return nil, fmt.Errorf("points outside /%s", Root)
		}
		// An absolute link is resolved from the real root, so walk it unclean.
		rest = strings.TrimPrefix(strings.TrimLeft(target, "/"), Root)
		stack = nil
		if rest != "" && !strings.HasPrefix(rest, "/") {
			return nil, fmt.Errorf("points outside /%s", Root)
		}
	}
	for _, c := range strings.Split(rest, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return nil, fmt.Errorf("points outside /%s", Root)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		p := strings.Join(append(stack, c), "/")
		if e := tree[p]; e != nil && e.kind == tar.TypeSymlink {
			var err error
			if stack, err = resolve(tree, stack, e.target, hops+1); err != nil {
				return nil, err
			}
			continue
		}
		stack = append(stack, c)
	}
	return stack, nil
}

func readSmall(f *zip.File) (string, error) {
	if f.UncompressedSize64 > 4096 {
		return "", fmt.Errorf("%d bytes, longer than any path", f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4097))
	return string(b), err
}

// writeTar writes the layer tar: the root folder, then every entry under it.
func writeTar(w io.Writer, entries []tarEntry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	hdr := func(name string, kind byte, mode int64) *tar.Header {
		// uid/gid 0 without names, one mtime, PAX only where USTAR cannot say it.
		return &tar.Header{Name: name, Typeflag: kind, Mode: mode, ModTime: mtime, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(Root+"/", tar.TypeDir, 0o755)); err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		h := hdr(e.tarName(), e.kind, e.mode)
		switch e.kind {
		case tar.TypeSymlink:
			h.Linkname = e.target
		case tar.TypeReg:
			h.Size = int64(e.file.UncompressedSize64)
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		if e.kind != tar.TypeReg {
			continue
		}
		rc, err := e.file.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		n, err := io.Copy(tw, rc)
		rc.Close()
		if err == nil && n != h.Size {
			err = fmt.Errorf("read %d bytes, the zip says %d", n, h.Size)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return tw.Close()
}
