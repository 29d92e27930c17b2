package node

import (
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
	npmrcPath = "/layerpack/npmrc" // the project's .npmrc, as a secret
	npmCache  = "/layerpack/npm-cache"
	nodeInfo  = ".layerpack-node" // in outDir: "NODE_VERSION MODULE_VERSION"
	workDir   = "/layerpack/work"
	homeDir   = "/tmp/layerpack-home"
)

// commonScript finds Node.js headers in the image so node-gyp does not download
// them (nothing outside the package registry is reachable from build steps
// here): the running node's own prefix first, Debian's libnode-dev (/usr) next.
const commonScript = `mkdir -p "$HOME" ` + workDir + ` ` + outDir + `
if [ -z "$npm_config_nodedir" ]; then
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  for d in "$prefix" /usr /usr/local; do
    if [ -f "$d/include/node/node_api.h" ] && [ -f "$d/include/node/common.gypi" ]; then export npm_config_nodedir="$d"; break; fi
  done
fi
node -p 'process.versions.node + " " + process.versions.modules' > ` + outDir + `/` + nodeInfo + `
echo "layerpack: node $(node --version), npm $(npm --version), headers from ${npm_config_nodedir:-node-gyp's download}"
`

// rebuildScript runs the install scripts of the packages in LAYERPACK_REBUILD
// (newline-separated paths) with npm rebuild, in a writable copy of the tree,
// and exports each rebuilt package (without its node_modules) under out/tree.
const rebuildScript = commonScript + `cp -a ` + treeMount + `/. ` + workDir + `/
cd ` + workDir + `
set -f
IFS='
'
set --
for p in $LAYERPACK_REBUILD; do set -- "$@" "` + workDir + `/$p"; done
npm rebuild --foreground-scripts "$@"
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
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// secrets gives a step the project's .npmrc (credentials never go through a
// mount, an environment value or a log) and the variables it refers to.
func secrets(p *project, work string, getenv func(string) string) ([]engine.Secret, map[string]string, error) {
	if !p.Npmrc {
		return nil, nil, nil
	}
	env := map[string]string{"npm_config_userconfig": npmrcPath}
	out := []engine.Secret{{ID: "layerpack-npmrc", Source: filepath.Join(p.Dir, ".npmrc"), Target: npmrcPath}}
	dir := filepath.Join(work, "secrets")
	for _, name := range p.NpmrcEnv {
		v := getenv(name)
		if v == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, err
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			return nil, nil, err
		}
		out = append(out, engine.Secret{ID: "layerpack-npmrc-env-" + name, Source: f, Env: name})
	}
	return out, env, nil
}

// readNodeInfo reads what commonScript wrote: the image's Node.js major and
// NODE_MODULE_VERSION.
func readNodeInfo(dest string) (major, modules int, err error) {
	b, err := os.ReadFile(filepath.Join(dest, nodeInfo))
	if err != nil {
		return 0, 0, fmt.Errorf("the build step did not report its Node.js version: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("the build step reported Node.js %q", strings.TrimSpace(string(b)))
	}
	major, _ = strconv.Atoi(strings.SplitN(f[0], ".", 2)[0])
	modules, _ = strconv.Atoi(f[1])
	return major, modules, nil
}

func stepName(j *builders.Job, what string) string {
	return fmt.Sprintf("%s: node %s (%s)", j.Layer.Name, what, j.Target.Arch)
}
