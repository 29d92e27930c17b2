package config

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/layerpack/layerpack/lambda"
)

var layerName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,140}$`)

func itoa(i int) string { return strconv.Itoa(i) }

// validate holds every rule that is more than a type check.
func validate(w *walker, f *File) {
	if len(f.Defaults.Architectures) == 0 {
		w.errorf("defaults.architectures", "must list at least one architecture (x86_64, arm64)")
	}
	checkDupArches(w, "defaults.architectures", f.Defaults.Architectures)
	if c := f.Defaults.Compression; c < 0 || c > 9 {
		w.errorf("defaults.compression", "must be 0 (store) or a deflate level from 1 to 9, not %d", c)
	}
	if strings.TrimSpace(f.Defaults.OutDir) == "" {
		w.errorf("defaults.out_dir", "must not be empty")
	}
	for k, v := range f.Images {
		if _, ok := lambda.LookupRuntime(k); !ok && k != "default" {
			w.errorf("images."+k, "unknown runtime %q (keys are runtime identifiers or \"default\")", k)
		}
		if strings.TrimSpace(v) == "" {
			w.errorf("images."+k, "must not be empty")
		}
	}
	if len(f.Layers) == 0 {
		w.errorf("layer", "no layers defined (add a [layer.NAME] table)")
	}
	for _, l := range f.Layers {
		validateLayer(w, f, l)
	}
	validatePublish(w, f)
}

func validateLayer(w *walker, f *File, l *Layer) {
	key := "layer." + l.Name
	if !layerName.MatchString(l.Name) {
		w.errorf(key, "bad layer name %q: use 1 to 140 of A-Z a-z 0-9 _ -", l.Name)
	}
	if n := len([]rune(l.Description)); n > lambda.MaxDescriptionLen {
		w.errorf(key+".description", "is %d characters, at most %d allowed", n, lambda.MaxDescriptionLen)
	}
	if n := len([]rune(l.LicenseInfo)); n > lambda.MaxLicenseLen {
		w.errorf(key+".license_info", "is %d characters, at most %d allowed", n, lambda.MaxLicenseLen)
	}
	switch n := len(l.CompatibleRuntimes); {
	case n == 0:
		w.errorf(key+".compatible_runtimes", "required: list 1 to %d runtime identifiers, e.g. [\"python3.12\"]", lambda.MaxRuntimes)
	case n > lambda.MaxRuntimes:
		w.errorf(key+".compatible_runtimes", "lists %d runtimes, Lambda allows at most %d", n, lambda.MaxRuntimes)
	}
	seen := map[string]bool{}
	for i, id := range l.CompatibleRuntimes {
		k := fmt.Sprintf("%s.compatible_runtimes[%d]", key, i)
		r, ok := lambda.LookupRuntime(id)
		if !ok {
			w.errorf(k, "unknown runtime %q (known: %s)", id, strings.Join(lambda.RuntimeIDs(), ", "))
			continue
		}
		if seen[id] {
			w.errorf(k, "runtime %q is listed twice", id)
			continue
		}
		seen[id] = true
		l.Runtimes = append(l.Runtimes, r)
	}
	if l.Architectures != nil && len(l.Architectures) == 0 {
		w.errorf(key+".architectures", "must list at least one architecture (x86_64, arm64)")
	}
	checkDupArches(w, key+".architectures", l.Architectures)
	for i, p := range l.Include {
		if !doublestar.ValidatePattern(p) {
			w.errorf(fmt.Sprintf("%s.include[%d]", key, i), "bad glob pattern %q", p)
		}
	}
	for i, p := range l.Exclude {
		if !doublestar.ValidatePattern(p) {
			w.errorf(fmt.Sprintf("%s.exclude[%d]", key, i), "bad glob pattern %q", p)
		}
	}
	for i, p := range l.AllowSecrets {
		if !doublestar.ValidatePattern(p) {
			w.errorf(fmt.Sprintf("%s.allow_secrets[%d]", key, i), "bad glob pattern %q (a path inside the layer, like \".env\" or \"certs/*.pem\")", p)
		}
	}
	oneOf(w, key+".cross_compile", l.CrossCompile, CrossCompileModes...)
	for i := range l.Files {
		validateFiles(w, f, fmt.Sprintf("%s.files[%d]", key, i), &l.Files[i])
	}
	if n := l.Native; n != nil {
		k := key + ".native"
		if n.Context == "" {
			w.errorf(k+".context", "required: the folder with the sources, mounted at /src")
		} else if abs, ok := localPath(w, f, k+".context", n.Context); ok {
			if st, err := os.Stat(abs); err == nil && !st.IsDir() {
				w.errorf(k+".context", "%q is not a folder", n.Context)
			}
			n.AbsContext = abs
		}
		if strings.TrimSpace(n.Script) == "" {
			w.errorf(k+".script", "required: the shell script that builds and installs into /opt")
		}
		for i, p := range n.Packages {
			if p == "" || strings.ContainsAny(p, " \t\n'\"$;&|`") {
				w.errorf(fmt.Sprintf("%s.packages[%d]", k, i), "bad package name %q", p)
			}
		}
		for name := range n.Env {
			if !envName.MatchString(name) {
				w.errorf(k+".env."+name, "bad environment variable name %q", name)
			}
		}
	}
	validateLanguages(w, f, l, key)
	if len(l.Files) == 0 && l.Native == nil && l.Python == nil && l.Node == nil && l.Ruby == nil && l.Java == nil {
		w.errorf(key, "nothing to build: add [[%s.files]] or a builder table such as [%s.native]", key, key)
	}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkDupArches(w *walker, key string, as []lambda.Arch) {
	seen := map[lambda.Arch]bool{}
	for i, a := range as {
		if seen[a] {
			w.errorf(fmt.Sprintf("%s[%d]", key, i), "architecture %q is listed twice", a)
		}
		seen[a] = true
	}
}

func validateFiles(w *walker, f *File, key string, fc *Files) {
	if fc.Src == "" {
		w.errorf(key+".src", "required: a file or folder relative to %s", filepath.Base(f.Path))
	} else if abs, ok := localPath(w, f, key+".src", fc.Src); ok {
		fc.AbsSrc = abs
	}
	if fc.Dest != "" {
		clean := path.Clean(fc.Dest)
		if path.IsAbs(fc.Dest) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(fc.Dest, `\`) {
			w.errorf(key+".dest", "%q must be a relative path inside the layer (like \"bin\" or \"python/lib\")", fc.Dest)
		}
	}
	if fc.Mode != "" {
		m, err := strconv.ParseUint(fc.Mode, 8, 32)
		if err != nil || m > 0o777 {
			w.errorf(key+".mode", "%q is not an octal file mode like \"0755\"", fc.Mode)
		} else if m&0o444 != 0o444 {
			w.errorf(key+".mode", "%q is not world-readable; Lambda needs 0644 or 0755", fc.Mode)
		}
	}
}

// localPath resolves p against the config folder and checks that it exists and does
// not leave that folder, through ".." or through a symlink.
func localPath(w *walker, f *File, key, p string) (string, bool) {
	if filepath.IsAbs(p) {
		w.errorf(key, "%q must be relative to the config file's folder, not absolute", p)
		return "", false
	}
	clean := filepath.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		w.errorf(key, "%q leaves the config file's folder", p)
		return "", false
	}
	abs := filepath.Join(f.Dir, clean)
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if os.IsNotExist(err) {
			w.errorf(key, "%q does not exist", p)
		} else {
			w.errorf(key, "%v", err)
		}
		return "", false
	}
	root, err := filepath.EvalSymlinks(f.Dir)
	if err != nil {
		root = f.Dir
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		w.errorf(key, "%q resolves to %s, outside the config file's folder (through a symlink)", p, real)
		return "", false
	}
	return abs, true
}
