// Package native is the builder for [layer.NAME.native]: a user script compiles code
// in the build container for the target architecture and installs into /opt; then the
// shared libraries it needs that the Lambda base system lacks are bundled into lib/,
// renamed the way auditwheel does so a system copy cannot shadow them.
package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
)

// Builder runs native builds.
type Builder struct {
	// Patchelf is the host patchelf used to rename bundled libraries ("" = look it up).
	Patchelf string
}

func New() *Builder { return &Builder{} }

func (*Builder) Name() string                 { return "native" }
func (*Builder) Applies(l *config.Layer) bool { return l.Native != nil }
func (*Builder) Engine(*config.Layer, builders.Target) builders.EngineNeeds {
	return builders.EngineNeeds{Use: builders.UsesEngine}
}

func (*Builder) Inputs(l *config.Layer, t builders.Target) ([]builders.Input, error) {
	// The script, packages and env are in the config section, which is in the key.
	return []builders.Input{
		{Name: "context:" + l.Native.Context, Path: l.Native.AbsContext},
		{Name: "collect-script", Value: collectScript},
		builders.CompileInput(l.CrossCompile, t),
	}, nil
}

func (*Builder) Steps(l *config.Layer, t builders.Target) []string {
	n := l.Native
	var s []string
	if len(n.Packages) > 0 {
		s = append(s, "install packages with dnf, yum or apt-get: "+strings.Join(n.Packages, " "))
	}
	s = append(s, fmt.Sprintf("run script in /src (a writable copy of %s), installing into /opt, for linux/%s", n.Context, t.Arch.OCI()),
		"  "+builders.DescribeCompile(l.CrossCompile, t)+": CC, CXX, AR, RANLIB, CMAKE_TOOLCHAIN_FILE")
	if n.Strip {
		s = append(s, "strip debug symbols from ELF files")
	}
	if n.BundleLibs {
		s = append(s, "bundle shared libraries the runtime lacks into lib/ (hashed SONAME, RUNPATH $ORIGIN)")
	}
	return s
}

// Paths inside the build container.
const (
	contextMount = "/layerpack/context"
	depsDir      = ".layerpack-deps" // under /opt: libraries collected for bundling
)

func (b *Builder) Build(ctx context.Context, j *builders.Job) error {
	n := j.Layer.Native
	out := filepath.Join(j.Work, "opt")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	env := map[string]string{
		"LAYERPACK_PACKAGES": strings.Join(n.Packages, " "),
		"LAYERPACK_SCRIPT":   n.Script,
		"LAYERPACK_BUNDLE":   boolEnv(n.BundleLibs),
		"LAYERPACK_STRIP":    boolEnv(n.Strip),
		// Lambda searches /opt/lib; so does ldd here, so libraries the script
		// installed there are found and not collected again.
		"LD_LIBRARY_PATH": "/opt/lib",
		// For the script to add to its compiler flags: /src is already the same
		// folder on every build, this keeps it out of debug info too. Not put in
		// CFLAGS itself: a configure script given CFLAGS drops its -g -O2 default.
		"LAYERPACK_PREFIX_MAP": "-fdebug-prefix-map=/src=.",
	}
	for k, v := range n.Env {
		env[k] = v
	}
	step := j.Step(fmt.Sprintf("%s: native build (%s)", j.Layer.Name, j.Target.Arch), j.Target.Arch, j.Image, engine.Step{
		Script: buildScript,
		Dir:    "/",
		Env:    env,
		Mounts: []engine.Mount{{Source: n.AbsContext, Target: contextMount}},
		Caches: packageCaches,
		Output: "/opt",
		Dest:   out,
	})
	if err := j.RunCompile(ctx, j.Engine, step); err != nil {
		return err
	}
	if n.BundleLibs {
		if err := b.bundle(out, j.Target.Runtimes); err != nil {
			return fmt.Errorf("bundling shared libraries: %w", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(out, depsDir)); err != nil {
		return err
	}
	return builders.Merge(out, j.Stage)
}

func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// packageCaches keep downloaded packages between builds (per architecture), one
// step at a time: dnf and yum corrupt a shared cache, and apt fails at once, rather
// than waits, when another step holds /var/cache/apt/archives/lock.
var packageCaches = []engine.Cache{
	{Key: "dnf", Target: "/var/cache/dnf", Locked: true},
	{Key: "yum", Target: "/var/cache/yum", Locked: true},
	{Key: "apt-archives", Target: "/var/cache/apt/archives", Locked: true},
}

// buildScript runs in the build container. The user's script comes in through
// LAYERPACK_SCRIPT so that no quoting can change its meaning.
const buildScript = `set -e
if [ -n "$LAYERPACK_PACKAGES" ]; then
  if command -v dnf >/dev/null 2>&1; then
    dnf install -y $LAYERPACK_PACKAGES
  elif command -v yum >/dev/null 2>&1; then
    yum install -y $LAYERPACK_PACKAGES
  elif command -v apt-get >/dev/null 2>&1; then
    if ! dpkg -s $LAYERPACK_PACKAGES >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -q && apt-get install -y -q --no-install-recommends $LAYERPACK_PACKAGES
    fi
  else
    echo "layerpack: the build image has no dnf, yum or apt-get to install: $LAYERPACK_PACKAGES" >&2
    exit 1
  fi
fi
mkdir -p /src
cp -a ` + contextMount + `/. /src/
cd /src
sh -e -c "$LAYERPACK_SCRIPT"
cd /opt
` + collectScript

// collectScript strips ELF files when asked and copies every shared library they load
// from outside /opt into /opt/.layerpack-deps, for the host to decide what to bundle.
// The C library and the loader are never collected: they must come from the runtime.
const collectScript = `is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "7f454c46" ]; }
find /opt -path /opt/` + depsDir + ` -prune -o -type f -print | LC_ALL=C sort > /tmp/layerpack-files
while IFS= read -r f; do
  is_elf "$f" || continue
  if [ "$LAYERPACK_STRIP" = 1 ]; then strip --strip-debug "$f" 2>/dev/null || true; fi
  [ "$LAYERPACK_BUNDLE" = 1 ] || continue
  ldd "$f" 2>/dev/null | while read -r name arrow path rest; do
    [ "$arrow" = "=>" ] || continue
    case "$path" in /opt/*|"") continue ;; esac
    case "$name" in libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libresolv.so.*|libutil.so.*) continue ;; esac
    mkdir -p /opt/` + depsDir + `
    [ -e "/opt/` + depsDir + `/$name" ] || cp -L "$path" "/opt/` + depsDir + `/$name"
  done
done < /tmp/layerpack-files
`
