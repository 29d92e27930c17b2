package python

// Local packages named in a requirements file ("./pkg", "-e ./pkg",
// "dist/pkg-1.0.tar.gz"), resolved against the file that names them. The host
// builds a wheel of each one from a copy (never in the user's folder); a pure
// wheel is installed as it is, a platform wheel (compiled code) is rebuilt in the
// build container for the target, from a copy at a fixed folder. The wheels then
// replace the path lines in the requirements pip installs.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/layerpack/layerpack/internal/fsutil"
)

// localName is a local package's folder name in scratch folders and containers:
// the folder's name, or the archive's without its extension, made unique.
func (jb *job) localName(abs string) string {
	if n, ok := jb.localNames[abs]; ok {
		return n
	}
	if jb.localNames == nil {
		jb.localNames = map[string]string{}
	}
	base := filepath.Base(abs)
	if e := archiveExt(base); e != "" && e != ".whl" {
		base = strings.TrimSuffix(base, e)
	}
	n := base
	for i := 2; ; i++ {
		taken := false
		for _, v := range jb.localNames {
			taken = taken || v == n
		}
		if !taken {
			break
		}
		n = fmt.Sprintf("%s-%d", base, i)
	}
	jb.localNames[abs] = n
	return n
}

// warnEditable says once per build that -e lines are installed normally.
func (jb *job) warnEditable(ls []Line) {
	if jb.editableWarned {
		return
	}
	for _, l := range ls {
		if l.Editable {
			jb.editableWarned = true
			jb.logf("warning: %s:%d: -e %s is installed as a regular package: an editable install would point at a folder of this machine, which is not in the layer", filepath.Base(l.File), l.Num, l.Text)
		}
	}
}

// isPureWheel reports whether a wheel file name is tagged for any platform.
func isPureWheel(path string) bool {
	return strings.HasSuffix(filepath.Base(path), "-none-any.whl")
}

// localSpec builds the target's local packages and returns the requirements to
// install with the path lines replaced by the wheels: rs itself without local
// packages.
func (jb *job) localSpec(ctx context.Context, t Target, rs *reqSpec) (*reqSpec, error) {
	locals := rs.reqs.Locals()
	if len(locals) == 0 {
		return rs, nil
	}
	jb.warnEditable(locals)
	wheels := map[string]string{}
	compiled := false
	var forContainer []Line
	for _, l := range locals {
		if strings.HasSuffix(l.Local, ".whl") {
			wheels[l.Local] = l.Local
			compiled = compiled || !isPureWheel(l.Local)
			continue
		}
		w, err := jb.hostLocalWheel(ctx, t, l)
		switch {
		case err != nil && buildMode(jb.p) == "host":
			return nil, err
		case err != nil:
			jb.logf("%s:%d: %s did not build on the host (%v): building it in the build container", filepath.Base(l.File), l.Num, l.Text, err)
			forContainer = append(forContainer, l)
		case w == "":
			if buildMode(jb.p) == "host" {
				return nil, fmt.Errorf("build = \"host\" never compiles, but the local package %s (%s:%d) builds a platform wheel (compiled code): use build = \"auto\" or \"container\"", l.Text, filepath.Base(l.File), l.Num)
			}
			forContainer = append(forContainer, l)
		default:
			wheels[l.Local] = w
		}
	}
	if len(forContainer) > 0 {
		built, err := jb.containerLocalWheels(ctx, t, forContainer)
		if err != nil {
			return nil, err
		}
		for k, v := range built {
			wheels[k] = v
		}
		compiled = true
	}
	hashes := rs.reqs.HasHashes()
	var werr error
	line := func(l Line) string {
		w := wheels[l.Local]
		s := w + l.LocalExtras
		if hashes {
			sum, err := fileSHA256(w)
			if err != nil {
				werr = err
			}
			s += " --hash=sha256:" + sum
		}
		return s
	}
	dir := filepath.Join(jb.j.Work, "local-req-"+t.Version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "requirements.txt")
	if _, err := rs.reqs.WriteWith(path, filepath.Join(dir, "constraints.txt"), line); err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	return &reqSpec{path: path, reqs: rs.reqs, noDeps: rs.noDeps, localPlatform: compiled}, nil
}

// hostLocalWheel builds a wheel of a local package on the host from a copy. It
// returns "" (and no error) when the wheel is a platform one: compiled code is
// built in the build container instead.
func (jb *job) hostLocalWheel(ctx context.Context, t Target, l Line) (string, error) {
	if w, ok := jb.pureLocal[l.Local]; ok {
		return w, nil
	}
	name := jb.localName(l.Local)
	src := filepath.Join(jb.j.Work, "local-src", name)
	if err := copyLocal(l.Local, src); err != nil {
		return "", err
	}
	if st, err := os.Stat(l.Local); err == nil && !st.IsDir() {
		src = filepath.Join(src, filepath.Base(l.Local))
	}
	out := filepath.Join(jb.j.Work, "local-wheels", t.Version, name)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	args := []string{"wheel", "--quiet", "--no-deps", "--wheel-dir", out}
	args = append(args, jb.idx.Args()...)
	if err := jb.pip(ctx, "pip wheel "+l.Text, t, false, append(args, src)...); err != nil {
		return "", err
	}
	ws, _ := filepath.Glob(filepath.Join(out, "*.whl"))
	if len(ws) != 1 {
		return "", fmt.Errorf("pip wheel %s made %d wheels, want 1", l.Text, len(ws))
	}
	if !isPureWheel(ws[0]) {
		return "", nil
	}
	if jb.pureLocal == nil {
		jb.pureLocal = map[string]string{}
	}
	jb.pureLocal[l.Local] = ws[0]
	return ws[0], nil
}

// containerLocalWheels builds wheels of local packages in the build container for
// the target: folders mounted at /layerpack/local, sdist files at
// /layerpack/sdists, each built from a copy at a fixed folder.
func (jb *job) containerLocalWheels(ctx context.Context, t Target, ls []Line) (map[string]string, error) {
	base := filepath.Join(jb.j.Work, "local-ctr-"+t.Version)
	dirs, sdists, wheels := filepath.Join(base, "local"), filepath.Join(base, "sdists"), filepath.Join(base, "wheels")
	for _, d := range []string{dirs, sdists, wheels} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var names []string
	for _, l := range ls {
		if err := stageLocal(l.Local, jb.localName(l.Local), dirs, sdists); err != nil {
			return nil, err
		}
		names = append(names, l.Text)
	}
	if err := jb.containerWheels(ctx, t, sdists, wheels, names, dirs); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range ls {
		ws, _ := filepath.Glob(filepath.Join(wheels, jb.localName(l.Local), "*.whl"))
		if len(ws) != 1 {
			return nil, fmt.Errorf("the build container made %d wheels of %s, want 1", len(ws), l.Text)
		}
		out[l.Local] = ws[0]
	}
	return out, nil
}

// stageLocal copies a local package for a container step: a folder to
// dirs/NAME, a file into sdists/.
func stageLocal(abs, name, dirs, sdists string) error {
	st, err := os.Stat(abs)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return copyLocal(abs, filepath.Join(dirs, name))
	}
	return fsutil.CopyFile(abs, filepath.Join(sdists, filepath.Base(abs)), 0o644)
}

// ctrLocalLine is a local package's requirement in the build container, after
// the step's unpack script placed it at the fixed build folder, which is pip's
// working folder there (pip resolves a path line against it).
func ctrLocalLine(l Line, name string) string {
	if strings.HasSuffix(l.Local, ".whl") {
		return "./" + filepath.Base(l.Local) + l.LocalExtras
	}
	return "./" + name + l.LocalExtras
}

// copyLocal copies a local package folder (or file, into dst/) to dst, keeping
// symlinks as they are; it does nothing when dst exists (one copy per build).
func copyLocal(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		return fsutil.CopyFile(src, filepath.Join(dst, filepath.Base(src)), 0o644)
	}
	return fsutil.CopyTree(src, dst, fsutil.TreeOptions{FileMode: func(m fs.FileMode) fs.FileMode { return m | 0o200 }})
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
