package python

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/engine"
)

// Paths inside build containers.
const (
	ctrReq       = "/layerpack/req"
	ctrSdists    = "/layerpack/sdists"
	ctrFindLinks = "/layerpack/find-links"
	ctrPipCache  = "/layerpack/pip-cache"
	ctrOut       = "/out"
)

// ctrFindPython sets PY to the build image's interpreter for $LP_PYVER:
// python3.12 or a python3 of that version (the SAM build images have both; a
// Debian image has python3.11 only).
const ctrFindPython = `lp_python() {
  for c in "python$LP_PYVER" python3 "/var/lang/bin/python$LP_PYVER" "/usr/local/bin/python$LP_PYVER"; do
    if command -v "$c" >/dev/null 2>&1 && [ "$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$LP_PYVER" ]; then
      echo "$c"
      return 0
    fi
  done
  echo "layerpack: the build image has no Python $LP_PYVER (looked for python$LP_PYVER and python3): use a build image for python$LP_PYVER, such as the SAM build image (the default) or [images] python$LP_PYVER = \"...\"" >&2
  return 1
}
PY=$(lp_python)
`

// ctrPython is ctrFindPython for steps that run pip.
const ctrPython = ctrFindPython + `if ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "layerpack: $PY in the build image has no pip" >&2
  exit 1
fi
eval "set -- $LP_PIP_ARGS"
`

// ctrBuild is the fixed folder every sdist is unpacked into and every local
// package copied into before pip builds it in place: pip's own build folders
// (pip-req-build-XXXXXXXX) are random, and compilers write the build folder into
// debug info and so into the GNU build id, which made two builds of one sdist
// differ. buildFlags also map it to "." in debug info (-fdebug-prefix-map: gcc 7
// of Amazon Linux 2 has no -ffile-prefix-map). It is under the step's output
// folder (and removed before the output is taken) so that the fake engine of the
// unit tests maps it to a private folder too.
const ctrBuild = ctrOut + "/.layerpack-build"

// ctrLocal holds the local packages of a requirements file, mounted read-only.
const ctrLocal = "/layerpack/local"

// prefixMap is the compiler flag that keeps the build folder out of the output.
const prefixMap = "-fdebug-prefix-map=" + ctrBuild + "=."

// buildFlags are added to container steps that compile: setuptools, meson,
// CMake and node-gyp append the environment's flags to their own.
var buildFlags = map[string]string{"CFLAGS": prefixMap, "CXXFLAGS": prefixMap, "LDFLAGS": prefixMap}

// ctrUnpack unpacks each sdist of the folder argv[1] to ctrBuild/NAME-VERSION (at
// most one level of archive folder is dropped, as pip does). The first call (one
// argument) also empties ctrBuild, copies each local package of ctrLocal to
// ctrBuild/NAME and the wheel files of argv[1] to ctrBuild.
const ctrUnpack = `import os, shutil, sys
B, S, L = "` + ctrBuild + `", sys.argv[1], "` + ctrLocal + `"
first = len(sys.argv) == 2
if first:
    shutil.rmtree(B, ignore_errors=True)
    os.makedirs(B)
if os.path.isdir(S):
    for f in sorted(os.listdir(S)):
        if f.endswith(".whl"):
            if first:
                shutil.copy(os.path.join(S, f), B)
            continue
        stem = None
        for ext in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"):
            if f.endswith(ext):
                stem = f[:-len(ext)]
                break
        if stem is None:
            continue
        tmp = os.path.join(B, ".unpack-" + stem)
        try:
            shutil.unpack_archive(os.path.join(S, f), tmp, filter="data")
        except TypeError:
            shutil.unpack_archive(os.path.join(S, f), tmp)
        ents = os.listdir(tmp)
        top = os.path.join(tmp, ents[0]) if len(ents) == 1 and os.path.isdir(os.path.join(tmp, ents[0])) else tmp
        os.rename(top, os.path.join(B, stem))
        shutil.rmtree(tmp, ignore_errors=True)
if first and os.path.isdir(L):
    for f in sorted(os.listdir(L)):
        shutil.copytree(os.path.join(L, f), os.path.join(B, f), symlinks=True)
`

// containerWheelScript builds wheels from the sdists mounted at /layerpack/sdists
// and the local packages at /layerpack/local, each in place at its fixed folder
// (pip 21.3 and later build a local folder in place), into /out/NAME/.
const containerWheelScript = ctrPython + `mkdir -p ` + ctrOut + `
"$PY" -c '` + ctrUnpack + `' ` + ctrSdists + `
for d in ` + ctrBuild + `/*/; do
  [ -d "$d" ] || continue
  d=${d%/}
  "$PY" -m pip wheel --no-deps --disable-pip-version-check --no-input --wheel-dir "` + ctrOut + `/${d##*/}" "$@" "$d"
done
rm -rf ` + ctrBuild + `
`

// containerInstallScript is build = "container": pip resolves and downloads in the
// image (hashes checked), every sdist and local package is built at its fixed
// folder (never in pip's random pip-req-build-XXXXXXXX), and the resulting wheels,
// exactly the resolved set, are installed with --no-deps. pip resolves the
// requirements' path lines against its working folder, ctrBuild, where the
// local packages are.
const containerInstallScript = ctrPython + `dl=` + ctrOut + `/.layerpack-dl
mkdir -p ` + ctrOut + `/tree "$dl"
"$PY" -c '` + ctrUnpack + `' ` + ctrSdists + `
cd ` + ctrBuild + `
"$PY" -m pip download --disable-pip-version-check --no-input --dest "$dl" "$@" $LP_REQ_ARGS -r ` + ctrReq + `/requirements.txt
"$PY" -c '` + ctrUnpack + `' "$dl" again
for f in "$dl"/*; do
  case "$f" in *.whl) ;; *) rm -f "$f" ;; esac
done
for d in ` + ctrBuild + `/*/; do
  [ -d "$d" ] || continue # no sdist or local package: sh leaves the pattern as it is
  "$PY" -m pip wheel --no-deps --disable-pip-version-check --no-input --wheel-dir "$dl" "$@" "${d%/}"
done
cd /
set -- "$dl"/*.whl
if [ -e "$1" ]; then
  "$PY" -m pip install --no-index --no-deps --target ` + ctrOut + `/tree --no-compile --no-warn-script-location --disable-pip-version-check --no-input "$@"
fi
rm -rf ` + ctrBuild + ` "$dl"
`

// ctrIndex is the index settings for a container step: plain options as arguments,
// URLs with credentials as secret environment variables (never in the step's
// definition, its cache key or a log), local find-links folders as mounts.
type ctrIndex struct {
	args    []string
	secrets []engine.Secret
	mounts  []engine.Mount
}

func (jb *job) containerIndex() (*ctrIndex, error) {
	ci := &ctrIndex{}
	ix := jb.idx
	secretDir := filepath.Join(jb.j.Work, "secrets")
	secret := func(env, value string) error {
		if err := os.MkdirAll(secretDir, 0o700); err != nil {
			return err
		}
		p := filepath.Join(secretDir, env)
		if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
			return err
		}
		ci.secrets = append(ci.secrets, engine.Secret{ID: "layerpack-" + strings.ToLower(env), Source: p, Env: env})
		return nil
	}
	hasCreds := func(u string) bool { return len(urlSecrets(u)) > 0 }
	if ix.NoIndex {
		ci.args = append(ci.args, "--no-index")
	}
	if ix.URL != "" {
		if hasCreds(ix.URL) {
			if err := secret("PIP_INDEX_URL", ix.URL); err != nil {
				return nil, err
			}
		} else {
			ci.args = append(ci.args, "--index-url", ix.URL)
		}
	}
	var credExtra, credLinks []string
	for _, u := range ix.Extra {
		if hasCreds(u) {
			credExtra = append(credExtra, u)
		} else {
			ci.args = append(ci.args, "--extra-index-url", u)
		}
	}
	for i, f := range ix.FindLinks {
		switch {
		case strings.Contains(f, "://") && hasCreds(f):
			credLinks = append(credLinks, f)
		case strings.Contains(f, "://"):
			ci.args = append(ci.args, "--find-links", f)
		default:
			if _, err := os.Stat(f); err != nil {
				continue // pip on the host ignored it too
			}
			target := ctrFindLinks + "/" + strconv.Itoa(i)
			ci.mounts = append(ci.mounts, engine.Mount{Source: f, Target: target})
			ci.args = append(ci.args, "--find-links", target)
		}
	}
	for _, h := range ix.Trusted {
		ci.args = append(ci.args, "--trusted-host", h)
	}
	if len(credExtra) > 0 {
		if err := secret("PIP_EXTRA_INDEX_URL", strings.Join(credExtra, " ")); err != nil {
			return nil, err
		}
	}
	if len(credLinks) > 0 {
		if err := secret("PIP_FIND_LINKS", strings.Join(credLinks, " ")); err != nil {
			return nil, err
		}
	}
	return ci, nil
}

// stepEnv is the environment of the builder's container steps.
func (jb *job) stepEnv(t Target, args []string) map[string]string {
	env := map[string]string{
		"LP_PYVER":                      t.Version,
		"LP_PIP_ARGS":                   shellQuote(args),
		"PIP_CACHE_DIR":                 ctrPipCache,
		"PIP_DISABLE_PIP_VERSION_CHECK": "1",
		"PIP_NO_INPUT":                  "1",
		"PIP_ROOT_USER_ACTION":          "ignore",
		"PYTHONDONTWRITEBYTECODE":       "1",
	}
	for k, v := range buildFlags {
		env[k] = v
	}
	return env
}

func (jb *job) engine() (engine.Engine, error) {
	if jb.j.Engine == nil {
		return nil, fmt.Errorf("a build container is needed but no engine is configured")
	}
	return jb.j.Engine, nil
}

// image is the build image plan chose for the target's Python version.
func (jb *job) image(t Target) string {
	return jb.j.Images.For(t.Runtimes[0], t.Arch)
}

// containerWheels builds wheels from the sdists in sdistDir and the local package
// folders in localDir ("" for none) into wheelDir/NAME/, in the build container
// for the target architecture.
func (jb *job) containerWheels(ctx context.Context, t Target, sdistDir, wheelDir string, names []string, localDir string) error {
	eng, err := jb.engine()
	if err != nil {
		return err
	}
	ci, err := jb.containerIndex()
	if err != nil {
		return err
	}
	step := jb.j.Step(fmt.Sprintf("%s: pip wheel %s (CPython %s, %s)", jb.j.Layer.Name, strings.Join(names, " "), t.Version, t.Arch), t.Arch, jb.image(t), engine.Step{
		Script:  containerWheelScript,
		Dir:     "/",
		Env:     jb.stepEnv(t, ci.args),
		Mounts:  append(localMounts(sdistDir, localDir), ci.mounts...),
		Caches:  []engine.Cache{{Key: "pip-" + t.Version, Target: ctrPipCache}},
		Secrets: ci.secrets,
		Output:  ctrOut,
		Dest:    wheelDir,
	})
	return jb.j.RunCompile(ctx, eng, step)
}

// containerInstall is build = "container": pip install --target in the image.
func (jb *job) containerInstall(ctx context.Context, t Target, rs *reqSpec, dir string) error {
	eng, err := jb.engine()
	if err != nil {
		return err
	}
	ci, err := jb.containerIndex()
	if err != nil {
		return err
	}
	reqDir := filepath.Join(jb.j.Work, "req-"+t.Version)
	if err := os.MkdirAll(reqDir, 0o755); err != nil {
		return err
	}
	locals := rs.reqs.Locals()
	jb.warnEditable(locals)
	localDir, sdistDir := filepath.Join(jb.j.Work, "local-install-"+t.Version), filepath.Join(jb.j.Work, "local-install-sdists-"+t.Version)
	for _, l := range locals {
		if rs.reqs.HasHashes() {
			return fmt.Errorf("%s:%d: the local package %s has no hash to check, but the requirements use --hash (build = \"container\" installs it from its folder): use build = \"auto\", which hashes the wheel it builds", filepath.Base(l.File), l.Num, l.Text)
		}
		for _, d := range []string{localDir, sdistDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := stageLocal(l.Local, jb.localName(l.Local), localDir, sdistDir); err != nil {
			return err
		}
	}
	if len(locals) == 0 {
		localDir, sdistDir = "", ""
	}
	line := func(l Line) string { return ctrLocalLine(l, jb.localName(l.Local)) }
	if _, err := rs.reqs.WriteWith(filepath.Join(reqDir, "requirements.txt"), filepath.Join(reqDir, "constraints.txt"), line); err != nil {
		return err
	}
	var reqArgs []string
	if rs.reqs.HasHashes() {
		reqArgs = append(reqArgs, "--require-hashes")
	}
	if rs.noDeps {
		reqArgs = append(reqArgs, "--no-deps")
	}
	env := jb.stepEnv(t, ci.args)
	env["LP_REQ_ARGS"] = strings.Join(reqArgs, " ")
	out := dir + ".out"
	step := jb.j.Step(fmt.Sprintf("%s: pip install (CPython %s, %s)", jb.j.Layer.Name, t.Version, t.Arch), t.Arch, jb.image(t), engine.Step{
		Script:  containerInstallScript,
		Dir:     "/",
		Env:     env,
		Mounts:  append(append([]engine.Mount{{Source: reqDir, Target: ctrReq}}, localMounts(sdistDir, localDir)...), ci.mounts...),
		Caches:  []engine.Cache{{Key: "pip-" + t.Version, Target: ctrPipCache}},
		Secrets: ci.secrets,
		Output:  ctrOut,
		Dest:    out,
	})
	if err := jb.j.RunCompile(ctx, eng, step); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(out, "tree"), dir); err != nil {
		return fmt.Errorf("the build container installed nothing: %w", err)
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err == nil {
		if err := os.Rename(filepath.Join(out, "report.json"), filepath.Join(dir+".report", "report.json")); err != nil {
			return err
		}
	}
	return os.RemoveAll(out)
}

// localMounts mounts the sdists and local package folders of a step ("": none).
func localMounts(sdistDir, localDir string) []engine.Mount {
	var m []engine.Mount
	if sdistDir != "" {
		m = append(m, engine.Mount{Source: sdistDir, Target: ctrSdists})
	}
	if localDir != "" {
		m = append(m, engine.Mount{Source: localDir, Target: ctrLocal})
	}
	return m
}

// shellQuote joins args for `eval "set -- $LP_PIP_ARGS"`.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
