// Package crosscc is the fast path for compile steps: `zig cc` / `zig c++`, a
// static executable of the build daemon's own CPU, mounted read-only into a build
// container of the target architecture. The container keeps running the build
// system's scripts (under QEMU for a foreign architecture) and provides the target's
// headers and libraries; only the compiler and linker, where the time goes, run at
// native speed. Every compile names the target CPU and a glibc version
// (-target aarch64-linux-gnu.2.26), so the code needs no symbol newer than the
// oldest runtime of the layer, whatever glibc the build image has.
//
// The zig release is pinned by version and by the sha256 of each wheel; it is
// fetched once into layerpack's cache with the host's pip (which honours the
// user's index, proxy and certificate settings) and unpacked atomically.
package crosscc

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/atomicfile"
	"github.com/layerpack/layerpack/internal/hostcmd"
	"github.com/layerpack/layerpack/lambda"
)

// Version is the pinned zig release (PyPI package ziglang).
const Version = "0.17.1"

// wheel is the pinned ziglang wheel of one host architecture.
type wheel struct {
	platform string // pip --platform tag the wheel satisfies
	sha256   string
}

// wheels holds the zig that runs on each daemon architecture.
var wheels = map[lambda.Arch]wheel{
	lambda.X86_64: {"manylinux2014_x86_64", "ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54"},
	lambda.ARM64:  {"manylinux2014_aarch64", "b7c5f02fccd40f89b999ee16a1f5ddced56e6182370f8affe494bcf8a28cf07e"},
}

// Paths inside the build container.
const (
	// Mount is where the toolchain folder is mounted read-only.
	Mount = "/layerpack/cross"
	// cacheTarget is zig's cache (libc stubs, compiler-rt, libc++ built per
	// target): a persistent cache mount, so they are built once per daemon.
	cacheTarget = "/layerpack/zig-cache"
)

// Toolchain is an unpacked zig with its wrappers, ready to mount.
type Toolchain struct {
	Dir  string      // host folder: zig/ (the wheel's ziglang) and bin/ (wrappers)
	Host lambda.Arch // the CPU zig runs on
}

// Key is what the output of a compile depends on: the zig release and the
// wrappers. It goes into every compiling layer's cache key. The daemon's CPU is
// not in it: each CPU's zig of one release emits the same code for a target.
func Key() string {
	h := sha256.New()
	for _, name := range wrapperNames() {
		fmt.Fprintf(h, "%s\x00%s\x00", name, wrappers[name])
	}
	return fmt.Sprintf("zig %s wrappers:%x", Version, h.Sum(nil)[:8])
}

// Target is the zig target of a compile for arch and glibc.
func Target(arch lambda.Arch, glibc lambda.GlibcVersion) string {
	return fmt.Sprintf("%s-linux-gnu.%s", arch.GNU(), glibc)
}

// Ceiling is the newest glibc every runtime of a layer has: the oldest one's.
func Ceiling(rts []lambda.Runtime) lambda.GlibcVersion {
	var v lambda.GlibcVersion
	for i, rt := range rts {
		if i == 0 || rt.GLIBC.Less(v) {
			v = rt.GLIBC
		}
	}
	if v == (lambda.GlibcVersion{}) {
		v = lambda.GlibcVersion{Major: 2, Minor: 26} // the oldest Lambda runtime's
	}
	return v
}

// Apply returns a copy of s that compiles with t for arch and glibc: the
// toolchain mounted, zig's cache, and the variables build systems read for their
// compiler (see Env). Variables the step already sets win: they are the user's.
func (t *Toolchain) Apply(s *engine.Step, arch lambda.Arch, glibc lambda.GlibcVersion) *engine.Step {
	c := *s
	c.Env = map[string]string{}
	for k, v := range Env(arch, glibc) {
		c.Env[k] = v
	}
	for k, v := range s.Env {
		c.Env[k] = v
	}
	c.Mounts = append(append([]engine.Mount(nil), s.Mounts...), engine.Mount{Source: t.Dir, Target: Mount})
	c.Caches = append(append([]engine.Cache(nil), s.Caches...), engine.Cache{Key: "zig-" + Version, Target: cacheTarget})
	return &c
}

// Env is what a compile step gets: the wrappers for every build system's
// variable (make and autotools, CMake, node-gyp, setuptools, mkmf), and the
// target the wrappers compile for.
func Env(arch lambda.Arch, glibc lambda.GlibcVersion) map[string]string {
	bin := Mount + "/bin/"
	cc, cxx := bin+"cc", bin+"c++"
	return map[string]string{
		"LAYERPACK_CROSS_TARGET": Target(arch, glibc),
		"LAYERPACK_CROSS_TRIPLE": arch.GNU() + "-linux-gnu",
		// For autotools scripts that want it; the container is already the
		// target's, so configure does not need it to build for the target.
		"LAYERPACK_HOST":       arch.GNU() + "-linux-gnu",
		"CC":                   cc,
		"CXX":                  cxx,
		"AR":                   bin + "ar",
		"RANLIB":               bin + "ranlib",
		"CMAKE_TOOLCHAIN_FILE": Mount + "/toolchain.cmake",
		// node-gyp's make generator.
		"LINK": cxx, "CC_target": cc, "CXX_target": cxx, "LINK_target": cxx,
		// setuptools and distutils take the shared-object link from LDSHARED.
		"LDSHARED": cc + " -shared", "LDCXXSHARED": cxx + " -shared",
		// mkmf (Ruby C extensions) takes its compiler from RbConfig, not $CC.
		"RUBYOPT":              "-r" + Mount + "/ruby/mkmf-cross.rb",
		"ZIG_GLOBAL_CACHE_DIR": cacheTarget,
		"ZIG_LOCAL_CACHE_DIR":  cacheTarget + "/local",
	}
}

// Describe says, for `layerpack plan`, how a compile for arch runs.
func Describe(arch lambda.Arch, glibc lambda.GlibcVersion) string {
	return fmt.Sprintf("zig %s cc/c++ for %s", Version, Target(arch, glibc))
}

// Provider fetches the toolchain of a host architecture on first use, once per run.
type Provider struct {
	CacheDir string    // layerpack's cache folder
	Log      io.Writer // where the one-time fetch says what it does
	// Python is the host interpreter with pip ("" = python3).
	Python string

	mu   sync.Mutex
	got  map[lambda.Arch]*Toolchain
	errs map[lambda.Arch]error
}

// Get returns the toolchain for host, fetching and unpacking it the first time.
func (p *Provider) Get(ctx context.Context, host lambda.Arch) (*Toolchain, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.got[host]; t != nil {
		return t, nil
	}
	if err := p.errs[host]; err != nil {
		return nil, err
	}
	t, err := fetch(ctx, p.CacheDir, host, p.python(), p.Log)
	if err != nil {
		if ctx.Err() == nil {
			if p.errs == nil {
				p.errs = map[lambda.Arch]error{}
			}
			p.errs[host] = err
		}
		return nil, err
	}
	if p.got == nil {
		p.got = map[lambda.Arch]*Toolchain{}
	}
	p.got[host] = t
	return t, nil
}

func (p *Provider) python() string {
	if p.Python != "" {
		return p.Python
	}
	return "python3"
}

// Dir is the folder of the toolchain for host under cacheDir.
func Dir(cacheDir string, host lambda.Arch) string {
	return filepath.Join(cacheDir, "crosscc", "zig-"+Version+"-"+string(host)+"-"+wheels[host].sha256[:12])
}

// fetch makes Dir(cacheDir, host) if it is not there yet: pip downloads the
// pinned wheel, its sha256 is checked, and it is unpacked into a temp folder that
// is renamed into place only when complete.
func fetch(ctx context.Context, cacheDir string, host lambda.Arch, python string, log io.Writer) (*Toolchain, error) {
	w, ok := wheels[host]
	if !ok {
		return nil, fmt.Errorf("no zig for a %s build daemon", host)
	}
	dir := Dir(cacheDir, host)
	if _, err := os.Stat(filepath.Join(dir, "zig", "zig")); err == nil {
		// The wrappers of this layerpack, whatever an earlier one wrote.
		if err := writeWrappers(dir); err != nil {
			return nil, err
		}
		return &Toolchain{Dir: dir, Host: host}, nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := atomicfile.MkdirTemp(parent, ".fetch")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if log != nil {
		fmt.Fprintf(log, "crosscc: fetching zig %s for %s (ziglang wheel from the pip index, about 100 MB, once)\n", Version, host)
	}
	if _, err := exec.LookPath(python); err != nil {
		return nil, fmt.Errorf("fetching zig %s needs %s with pip on this machine: %w", Version, python, err)
	}
	dl := filepath.Join(tmp, "download")
	if _, err := hostcmd.Run(ctx, hostcmd.Cmd{
		What: "pip download ziglang==" + Version,
		Path: python,
		Args: []string{"-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform", w.platform,
			"--disable-pip-version-check", "-q",
			"-d", dl, "ziglang==" + Version},
		Env: os.Environ(),
	}); err != nil {
		return nil, err
	}
	whl, err := filepath.Glob(filepath.Join(dl, "ziglang-"+Version+"-*.whl"))
	if err != nil || len(whl) != 1 {
		return nil, fmt.Errorf("pip download ziglang==%s left %d wheels in %s, want 1", Version, len(whl), dl)
	}
	if err := checkSum(whl[0], w.sha256); err != nil {
		return nil, err
	}
	unpacked := filepath.Join(tmp, "tree")
	if err := unpack(whl[0], unpacked); err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", filepath.Base(whl[0]), err)
	}
	if err := writeWrappers(unpacked); err != nil {
		return nil, err
	}
	if err := os.Rename(unpacked, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "zig", "zig")); serr == nil {
			return &Toolchain{Dir: dir, Host: host}, nil // another run finished first
		}
		return nil, err
	}
	return &Toolchain{Dir: dir, Host: host}, nil
}

func checkSum(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: sha256 %s, want %s (the pinned ziglang %s): the index served a different file", filepath.Base(path), got, want, Version)
	}
	return nil
}

// pruned are folders of the wheel for operating systems layerpack never targets:
// leaving them out halves what every compile step mounts (and BuildKit hashes).
var pruned = []string{
	"ziglang/lib/libc/include/any-windows-any", "ziglang/lib/libc/mingw",
	"ziglang/lib/libc/include/any-darwin-any", "ziglang/lib/libc/darwin",
	"ziglang/lib/libc/include/generic-freebsd", "ziglang/lib/libc/freebsd",
	"ziglang/lib/libc/include/generic-netbsd", "ziglang/lib/libc/netbsd",
	"ziglang/lib/libc/include/generic-openbsd", "ziglang/lib/libc/openbsd",
	"ziglang/lib/libc/wasi", "ziglang/lib/libc/include/wasm-wasi-musl",
}

func keep(name string) bool {
	if !strings.HasPrefix(name, "ziglang/") {
		return false // dist-info
	}
	for _, p := range pruned {
		if name == p || strings.HasPrefix(name, p+"/") {
			return false
		}
	}
	return true
}

// unpack extracts the ziglang folder of the wheel into dst/zig.
func unpack(whl, dst string) error {
	zr, err := zip.OpenReader(whl)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !keep(f.Name) || strings.HasSuffix(f.Name, "/") {
			continue
		}
		rel := strings.TrimPrefix(f.Name, "ziglang/")
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("entry %q leaves the folder", f.Name)
		}
		out := filepath.Join(dst, "zig", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if rel == "zig" || f.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := extract(f, out, mode); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "zig", "zig")); err != nil {
		return errors.New("the wheel has no ziglang/zig")
	}
	return nil
}

func extract(f *zip.File, out string, mode os.FileMode) error {
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func wrapperNames() []string {
	var n []string
	for k := range wrappers {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// writeWrappers writes the files that differ, each atomically: another run may
// be mounting the folder.
func writeWrappers(dst string) error {
	for _, name := range wrapperNames() {
		p := filepath.Join(dst, filepath.FromSlash(name))
		if b, err := os.ReadFile(p); err == nil && string(b) == wrappers[name] {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o755)
		if !strings.HasPrefix(name, "bin/") {
			mode = 0o644
		}
		if err := atomicfile.WriteFile(p, []byte(wrappers[name]), mode); err != nil {
			return err
		}
	}
	return nil
}
