package node

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
)

// usesV8ABI reports whether a .node file is built against the V8/Node C++ API
// (NAN, direct V8) rather than Node-API: such an addon loads only on the Node.js
// major whose headers it was compiled with. Node-API addons import only napi_*
// (and uv_*) symbols.
func usesV8ABI(file string) (bool, error) {
	f, err := elf.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return false, err
	}
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF {
			continue
		}
		if strings.HasPrefix(s.Name, "_ZN2v8") || strings.HasPrefix(s.Name, "_ZN4node") || s.Name == "node_module_register" {
			return true, nil
		}
	}
	return false, nil
}

// checkABI looks at the .node files that builds in the image produced (in the
// packages in built, outside prebuilds/) and fails for an addon that uses the V8
// API when the image's Node.js major differs from a target runtime's.
func checkABI(root string, built []*pkg, imageMajor int, majors []int, imageName string) error {
	var bad []string
	for _, p := range built {
		dir := filepath.Join(root, filepath.FromSlash(p.Path))
		err := filepath.WalkDir(dir, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "prebuilds") && fp != dir {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(d.Name(), ".node") || !d.Type().IsRegular() {
				return nil
			}
			v8, err := usesV8ABI(fp)
			if err != nil || !v8 {
				return nil // not ELF (the ELF checks report that) or Node-API
			}
			for _, m := range majors {
				if m != imageMajor {
					rel, _ := filepath.Rel(root, fp)
					bad = append(bad, filepath.ToSlash(rel))
					break
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	var want []string
	for _, m := range majors {
		if m != imageMajor {
			want = append(want, fmt.Sprint(m))
		}
	}
	return fmt.Errorf("%s use the V8 API, not Node-API, so they load only on the Node.js major they were built for: "+
		"the build image %s has Node.js %d but the layer is for Node.js %s; use a build image with that Node.js "+
		"(image = ... in the layer or [images]), or one layer per Node.js major",
		strings.Join(bad, ", "), imageName, imageMajor, strings.Join(want, ", "))
}
