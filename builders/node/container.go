package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/engine"
)

// Paths inside the build container.
const (
	srcMount  = "/layerpack/src"   // the prepared project (container installs)
	treeMount = "/layerpack/tree"  // the packages to build and their dependencies (auto)
	outDir    = "/layerpack/out"   // exported
	npmrcPath = "/layerpack/npmrc" // the merged npm config (npmConfig), as a secret
	npmCache  = "/layerpack/npm-cache"
	nodeInfo  = ".layerpack-node" // in outDir: the image's `node --version`
	workDir   = "/layerpack/work"
	prefixMap = "-fdebug-prefix-map=" + workDir + "=."
	homeDir   = "/tmp/layerpack-home"
)

// commonScript finds Node.js headers in the image so node-gyp does not download
// them (nothing outside the package registry is reachable from build steps
// here): the running node's own prefix first, Debian's libnode-dev (/usr) next.
// It puts a node-gyp on PATH (npm's own when the image has no other), the way
// npm does for install scripts, and records the image's Node.js version.
const commonScript = `mkdir -p "$HOME" ` + workDir + ` ` + outDir + ` /tmp/layerpack-gyp-bin
export LAYERPACK_GYP_BIN=/tmp/layerpack-gyp-bin
if [ -z "$npm_config_nodedir" ]; then
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  for d in "$prefix" /usr /usr/local; do
    if [ -f "$d/include/node/node_api.h" ] && [ -f "$d/include/node/common.gypi" ]; then export npm_config_nodedir="$d"; break; fi
  done
fi
if ! command -v node-gyp >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  npmdir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  for g in "$npmdir/node_modules/node-gyp/bin/node-gyp.js" "$npmdir/../node-gyp/bin/node-gyp.js"; do
    if [ -f "$g" ]; then
      printf '#!/bin/sh\nexec node "%s" "$@"\n' "$g" > "$LAYERPACK_GYP_BIN/node-gyp"
      chmod +x "$LAYERPACK_GYP_BIN/node-gyp"
      export npm_config_node_gyp="$g"
      break
    fi
  done
fi
export npm_node_execpath="$(command -v node)"
node --version > ` + outDir + `/` + nodeInfo + `
echo "layerpack: node $(cat ` + outDir + `/` + nodeInfo + `), headers from ${npm_config_nodedir:-node-gyp's download}"
`

// buildFile is the generated lifecycleScript, at the root of the mounted tree.
const buildFile = ".layerpack-build.sh"

// rebuildScript runs the generated install scripts in a writable copy of the
// tree and exports each package of LAYERPACK_REBUILD (newline-separated paths),
// without its node_modules, under out/tree; failed optional ones are listed in
// out/failed-optional.
const rebuildScript = commonScript + `cp -a ` + treeMount + `/. ` + workDir + `/
export LAYERPACK_FAILED=` + outDir + `/failed-optional
: > "$LAYERPACK_FAILED"
cd ` + workDir + `
. ` + workDir + `/` + buildFile + `
set -f
IFS='
'
for p in $LAYERPACK_REBUILD; do
  mkdir -p "` + outDir + `/tree/$p"
  (cd "` + workDir + `/$p" && tar -cf - --exclude=./node_modules .) | (cd "` + outDir + `/tree/$p" && tar -xf -)
done
`

// installScript is a whole install in the build container (build = "container"),
// install scripts included. npm in the image picks optional packages for the
// container's own platform; a Debian npm (9.x) does not know libc, which
// dropForeign fixes afterwards.
const installScript = commonScript + `cp -a ` + srcMount + `/. ` + workDir + `/
cd "` + workDir + `/$LAYERPACK_PROJECT"
npm ci --omit=dev --install-links --foreground-scripts --no-audit --no-fund
mv node_modules ` + outDir + `/node_modules
`

// stepEnv is the environment of container steps. Prebuilt downloads (GitHub
// releases) are not reachable from build steps: build_from_source makes
// prebuild-install and node-pre-gyp compile instead.
func stepEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"HOME":                         homeDir,
		"npm_config_cache":             npmCache,
		"npm_config_build_from_source": "true",
		"npm_config_update_notifier":   "false",
		"npm_config_fund":              "false",
		"npm_config_audit":             "false",
		"npm_config_jobs":              "max",
		"JOBS":                         "max",
		// node-gyp's Makefiles append CFLAGS, CXXFLAGS and LDFLAGS to their own:
		// the build folder stays out of the addons' debug info (the folder is
		// fixed too; -fdebug-prefix-map because gcc 7 has no -ffile-prefix-map).
		"CFLAGS":   prefixMap,
		"CXXFLAGS": prefixMap,
		"LDFLAGS":  prefixMap,
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// secrets gives a step the npm configuration of the host (npmConfig: the
// user's config, the project's .npmrc, npm_config_* registry variables) as one
// secret userconfig file, and the variables it refers to as secret environment
// values: credentials never go through a mount, an environment value, the
// step's definition or a log.
func (b *Builder) secrets(p *project, shown, work string, logf func(string, ...any)) ([]engine.Secret, map[string]string, error) {
	c, err := loadNpmConfig(p, shown, b.getenv, b.env())
	if err != nil || c == nil {
		return nil, nil, err
	}
	// Names only: values can be credentials.
	logf("npm config from %s, given to the step as a secret", strings.Join(c.Sources, ", "))
	for _, d := range c.Dropped {
		logf("npm config: %s from %s left out of the step: %s", strings.TrimPrefix(d.Key, sectionMark), d.From, d.Why)
	}
	dir := filepath.Join(work, "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	// Env names cannot start with a dot: no clash with the variables below.
	rc := filepath.Join(dir, ".npmrc")
	if err := os.WriteFile(rc, c.file(), 0o600); err != nil {
		return nil, nil, err
	}
	env := map[string]string{"npm_config_userconfig": npmrcPath}
	out := []engine.Secret{{ID: "layerpack-npmrc", Source: rc, Target: npmrcPath}}
	for _, name := range c.Refs {
		v := b.getenv(name)
		if v == "" {
			continue
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			return nil, nil, err
		}
		out = append(out, engine.Secret{ID: "layerpack-npmrc-env-" + name, Source: f, Env: name})
	}
	return out, env, nil
}

// readNodeInfo reads the image's Node.js major that commonScript recorded
// (`node --version` starts fast even under QEMU; `node -p` takes seconds).
func readNodeInfo(dest string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dest, nodeInfo))
	if err != nil {
		return 0, fmt.Errorf("the build step did not report its Node.js version: %w", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(b)), "v")
	major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if err != nil {
		return 0, fmt.Errorf("the build step reported Node.js %q", strings.TrimSpace(string(b)))
	}
	return major, nil
}

func stepName(j *builders.Job, what string) string {
	return fmt.Sprintf("%s: node %s (%s)", j.Layer.Name, what, j.Target.Arch)
}

// containerInstall runs the whole install in the build container and returns
// the folder holding node_modules.
func (b *Builder) containerInstall(ctx context.Context, j *builders.Job, p *project, ms []int, logf func(string, ...any)) (string, error) {
	if p.Manager != npm {
		return "", fmt.Errorf("build = \"container\" installs with npm in the build image; %s needs build = \"auto\" or \"host\"", p.Lockfile)
	}
	for _, d := range p.LocalDeps {
		if filepath.IsAbs(d) {
			return "", fmt.Errorf("%s installs from %s, an absolute path the build container cannot see; use a path relative to %s",
				p.Lockfile, d, j.Layer.Node.Dir)
		}
	}
	srcRoot, rel, err := prepareSource(p, j.Work, false)
	if err != nil {
		return "", err
	}
	secs, env, err := b.secrets(p, j.Layer.Node.Dir, j.Work, logf)
	if err != nil {
		return "", err
	}
	if env == nil {
		env = map[string]string{}
	}
	env["LAYERPACK_PROJECT"] = rel
	dest := filepath.Join(j.Work, "install-out")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", err
	}
	step := j.Step(stepName(j, "install"), j.Target.Arch, j.Image, engine.Step{
		Script:  installScript,
		Dir:     "/",
		Env:     stepEnv(env),
		Mounts:  []engine.Mount{{Source: srcRoot, Target: srcMount}},
		Caches:  []engine.Cache{{Key: "npm", Target: npmCache}},
		Secrets: secs,
		Output:  outDir,
		Dest:    dest,
	})
	if err := j.RunCompile(ctx, j.Engine, step); err != nil {
		return "", err
	}
	major, err := readNodeInfo(dest)
	if err != nil {
		return "", err
	}
	if err := os.Remove(filepath.Join(dest, nodeInfo)); err != nil {
		return "", err
	}
	pkgs, err := scanTree(dest)
	if err != nil {
		return "", err
	}
	var gyp []*pkg
	for _, q := range pkgs {
		if q.HasGyp {
			gyp = append(gyp, q)
		}
	}
	if err := fixBuilt(dest, gyp, major, ms, j.Image, logf); err != nil {
		return "", err
	}
	return dest, nil
}
