package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/config"
)

// configDir is the folder of the config file, recovered from the node section
// (the config package resolved dir against it).
func configDir(n *config.Node) string {
	abs := filepath.Clean(n.AbsDir)
	if d := strings.TrimSuffix(abs, filepath.Clean("/"+n.Dir)); d != abs || filepath.Clean("/"+n.Dir) == "/" {
		if d == "" {
			return "/"
		}
		return d
	}
	return abs
}

// checkLocalDeps refuses a local dependency ("file:../lib", a link) that leaves
// the config's folder: layerpack copies local dependencies into the install and
// hashes them into the cache key, and a build reads nothing outside the project
// it was given. A dependency named in package.json is reported by its name.
func checkLocalDeps(p *project, n *config.Node) error {
	root := configDir(n)
	byPath := map[string][]string{}
	if raw, err := os.ReadFile(filepath.Join(p.Dir, "package.json")); err == nil {
		var pj struct {
			Dependencies         map[string]string `json:"dependencies"`
			OptionalDependencies map[string]string `json:"optionalDependencies"`
			DevDependencies      map[string]string `json:"devDependencies"`
		}
		if json.Unmarshal(raw, &pj) == nil {
			for _, m := range []map[string]string{pj.Dependencies, pj.OptionalDependencies, pj.DevDependencies} {
				for name, spec := range m {
					if s, ok := strings.CutPrefix(spec, "file:"); ok {
						s = strings.TrimSuffix(s, "/")
						if !path.IsAbs(s) {
							s = path.Clean(s)
						}
						byPath[s] = append(byPath[s], name)
					}
				}
			}
		}
	}
	var errs []string
	for _, d := range p.LocalDeps {
		abs := filepath.FromSlash(d)
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(p.Dir, abs)
		}
		rel, err := filepath.Rel(root, abs)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		names := byPath[d]
		sort.Strings(names)
		if len(names) > 0 {
			for _, name := range names {
				errs = append(errs, fmt.Sprintf("%s: dependency %q is \"file:%s\", which leaves the config's folder %s", path.Join(n.Dir, "package.json"), name, d, root))
			}
		} else {
			errs = append(errs, fmt.Sprintf("%s: local dependency %s leaves the config's folder %s", path.Join(n.Dir, p.Lockfile), d, root))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s (local dependencies are copied into the build and hashed into the cache key: keep them inside the folder of layerpack.toml)", strings.Join(errs, "; "))
	}
	return nil
}
