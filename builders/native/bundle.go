package native

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/layerpack/layerpack/elfinfo"
	"github.com/layerpack/layerpack/lambda"
)

// bundle moves the collected libraries that some target runtime lacks into lib/ under
// a hashed name (libjansson.so.4 -> libjansson-1a2b3c4d.so.4), sets that SONAME, and
// rewrites DT_NEEDED and RUNPATH of every ELF file that loads them. Lambda puts /lib64
// and /usr/lib64 before /opt/lib on LD_LIBRARY_PATH, so an unrenamed copy could be
// shadowed by an older system library of the same name.
func (b *Builder) bundle(root string, runtimes []lambda.Runtime) error {
	deps := filepath.Join(root, depsDir)
	ents, err := os.ReadDir(deps)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	rename := map[string]string{} // old soname -> new file name and soname
	for _, e := range ents {
		soname := e.Name()
		if providedByAll(soname, runtimes) {
			continue
		}
		src := filepath.Join(deps, soname)
		newName, err := hashedName(src, soname)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(root, "lib"), 0o755); err != nil {
			return err
		}
		if err := os.Rename(src, filepath.Join(root, "lib", newName)); err != nil {
			return err
		}
		rename[soname] = newName
	}
	if len(rename) == 0 {
		return nil
	}
	patchelf := b.Patchelf
	if patchelf == "" {
		if patchelf, err = exec.LookPath("patchelf"); err != nil {
			return fmt.Errorf("patchelf is needed on the host to rename bundled libraries (%s): install it (apt-get install patchelf) or set bundle_libs = false", strings.Join(slices.Sorted(maps.Keys(rename)), ", "))
		}
	}
	for _, newName := range rename {
		if err := run(patchelf, "--set-soname", newName, filepath.Join(root, "lib", newName)); err != nil {
			return err
		}
	}
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := inspect(p)
		if err != nil || info == nil {
			return err
		}
		var args []string
		for _, need := range info.Needed {
			if n, ok := rename[need]; ok {
				args = append(args, "--replace-needed", need, n)
			}
		}
		if len(args) == 0 {
			return nil
		}
		rel, err := filepath.Rel(filepath.Dir(p), filepath.Join(root, "lib"))
		if err != nil {
			return err
		}
		runpath := "$ORIGIN"
		if rel != "." {
			runpath += "/" + filepath.ToSlash(rel)
		}
		// Two calls: patchelf 0.14 (Debian 12) mixes up --set-rpath and
		// --replace-needed given together.
		if err := run(patchelf, "--set-rpath", runpath, p); err != nil {
			return err
		}
		return run(patchelf, append(args, p)...)
	})
}

// providedByAll reports whether every runtime's base system has the library, so it
// need not be bundled.
func providedByAll(soname string, runtimes []lambda.Runtime) bool {
	for _, r := range runtimes {
		if !lambda.BaseSystemProvides(r.OS, soname) {
			return false
		}
	}
	return len(runtimes) > 0
}

// hashedName inserts the first 8 hex digits of the content's SHA-256 before ".so".
func hashedName(path, soname string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])[:8]
	if i := strings.Index(soname, ".so"); i > 0 {
		return soname[:i] + "-" + h + soname[i:], nil
	}
	return soname + "-" + h, nil
}

func inspect(path string) (*elfinfo.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 4)
	if n, _ := f.Read(head); n < 4 || !elfinfo.IsELF(head) {
		return nil, nil
	}
	info, err := elfinfo.Inspect(f)
	if err != nil {
		return nil, fmt.Errorf("reading ELF %s: %w", path, err)
	}
	return info, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
