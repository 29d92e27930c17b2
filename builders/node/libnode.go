package node

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Debian's node-gyp links every addon with -lnode (its node is a shared
// library, libnode.so.NNN). Lambda's node is one static executable that exports
// the Node-API and V8 symbols itself and has no libnode, so such an addon fails
// to load there ("libnode.so.108: cannot open shared object file"). The
// dependency is not needed anywhere: the symbols resolve from the executable
// (or, on Debian, from the libnode it already loaded). dropLibnode removes the
// DT_NEEDED entry, as `patchelf --remove-needed` does.

// dropLibnodeTree applies dropLibnode to the .node files of the given packages
// (outside their node_modules and prebuilds) and returns the files it changed.
func dropLibnodeTree(root string, pkgs []*pkg) ([]string, error) {
	var changed []string
	for _, p := range pkgs {
		dir := filepath.Join(root, filepath.FromSlash(p.Path))
		err := filepath.WalkDir(dir, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && fp != dir && (d.Name() == "node_modules" || d.Name() == "prebuilds" || d.Name() == "obj.target" || d.Name() == ".deps") {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".node") {
				return nil
			}
			ok, err := dropLibnode(fp)
			if err != nil {
				rel, _ := filepath.Rel(root, fp)
				return fmt.Errorf("%s: %w", filepath.ToSlash(rel), err)
			}
			if ok {
				rel, _ := filepath.Rel(root, fp)
				changed = append(changed, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(changed)
	return changed, nil
}

// dropLibnode removes DT_NEEDED entries naming libnode.so.* from an ELF shared
// object, in place: the later entries of the dynamic section move up and a
// DT_NULL fills the end. It reports whether it changed the file; a file that is
// not ELF is left alone.
func dropLibnode(file string) (bool, error) {
	f, err := elf.Open(file)
	if err != nil {
		return false, nil // not ELF: the layer checks say so if it matters
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		f.Close()
		return false, nil
	}
	found := false
	for _, l := range libs {
		if isLibnode(l) {
			found = true
		}
	}
	dyn := f.Section(".dynamic")
	if !found || dyn == nil {
		f.Close()
		return false, nil
	}
	data, err := dyn.Data()
	if err != nil {
		f.Close()
		return false, err
	}
	var size int
	switch f.Class {
	case elf.ELFCLASS64:
		size = 16
	case elf.ELFCLASS32:
		size = 8
	default:
		f.Close()
		return false, fmt.Errorf("unknown ELF class %v", f.Class)
	}
	order := f.ByteOrder
	dynstr, err := sectionFor(f, dyn)
	f.Close()
	if err != nil {
		return false, err
	}
	read := func(b []byte) uint64 {
		if size == 16 {
			return order.Uint64(b)
		}
		return uint64(order.Uint32(b))
	}
	var kept [][]byte
	removed := 0
	for off := 0; off+size <= len(data); off += size {
		e := data[off : off+size]
		tag := elf.DynTag(read(e[:size/2]))
		if tag == elf.DT_NULL {
			break
		}
		if tag == elf.DT_NEEDED && isLibnode(cString(dynstr, read(e[size/2:]))) {
			removed++
			continue
		}
		kept = append(kept, e)
	}
	if removed == 0 {
		return false, nil
	}
	out := make([]byte, len(data)) // zeros: DT_NULL entries
	for i, e := range kept {
		copy(out[i*size:], e)
	}
	w, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return false, err
	}
	if _, err := w.WriteAt(out, int64(dyn.Offset)); err != nil {
		w.Close()
		return false, err
	}
	return true, w.Close()
}

// sectionFor returns the string table the dynamic section links to.
func sectionFor(f *elf.File, dyn *elf.Section) ([]byte, error) {
	if int(dyn.Link) >= len(f.Sections) {
		return nil, fmt.Errorf("bad .dynamic link %d", dyn.Link)
	}
	return f.Sections[dyn.Link].Data()
}

func cString(tab []byte, off uint64) string {
	if off >= uint64(len(tab)) {
		return ""
	}
	end := off
	for end < uint64(len(tab)) && tab[end] != 0 {
		end++
	}
	return string(tab[off:end])
}

func isLibnode(name string) bool { return strings.HasPrefix(name, "libnode.so") }
