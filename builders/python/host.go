package python

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/layerpack/layerpack/internal/hostcmd"
)

// hostTools is what the host offers for the fast path.
type hostTools struct {
	Python        string // interpreter path or name
	PythonVersion string // "3.11.7"
	Pip           string // pip's version, "" when missing
	Err           error  // why the host cannot run pip

	uvOnce    sync.Once
	UV        string // uv binary, "" when missing
	UVVersion string
}

func (h *hostTools) describe() string {
	s := "pip " + h.Pip + " (python " + h.PythonVersion + ")"
	if h.Err != nil {
		s = "no host pip: " + h.Err.Error()
	}
	if h.UV != "" {
		s += "; " + h.UVVersion
	}
	return s
}

// pipAtLeast reports whether the host pip is at least major.minor.
func (h *hostTools) pipAtLeast(major, minor int) bool {
	v, err := ParseVersion(h.Pip)
	if err != nil || len(v.Release) < 2 {
		return false
	}
	return v.Release[0] > major || v.Release[0] == major && v.Release[1] >= minor
}

// tools probes the host interpreter and pip once, and uv when the layer asks for it.
func (b *Builder) tools(wantUV bool) *hostTools {
	b.probeOnce.Do(func() {
		py := b.Python
		if py == "" {
			py = "python3"
		}
		b.probe.Python = py
		out, err := exec.Command(py, "-c", "import sys, pip; print('%d.%d.%d' % sys.version_info[:3], pip.__version__)").Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && len(ee.Stderr) > 0 {
				err = fmt.Errorf("%s: %s", py, lastLine(string(ee.Stderr)))
			}
			b.probe.Err = err
			return
		}
		f := strings.Fields(string(out))
		if len(f) != 2 {
			b.probe.Err = fmt.Errorf("%s: unexpected answer %q", py, out)
			return
		}
		b.probe.PythonVersion, b.probe.Pip = f[0], f[1]
	})
	if wantUV {
		b.probe.uvOnce.Do(func() {
			uv := b.UV
			if uv == "" {
				uv, _ = exec.LookPath("uv")
			}
			if uv == "" {
				return
			}
			out, err := exec.Command(uv, "--version").Output()
			if err != nil {
				return
			}
			b.probe.UV, b.probe.UVVersion = uv, strings.TrimSpace(string(out))
		})
	}
	return &b.probe
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// pipDriver runs pip with the environment markers of the target: pip's --platform,
// --python-version and --abi select wheels for another platform, but pip still
// evaluates markers ("; platform_machine == 'aarch64'", "; python_version < '3.12'")
// for the interpreter running it. The driver replaces the marker environment with
// the target's (LAYERPACK_MARKER_ENV, JSON). With LAYERPACK_ALLOW_SDISTS=1 it also
// lifts pip's rule that --platform needs --only-binary=:all:, for the dry run that
// finds which requirements have no wheel (their sdists' metadata is prepared on
// the host, which is pip's normal behaviour for sdists).
const pipDriver = `import json, os, sys
env = json.loads(os.environ.pop("LAYERPACK_MARKER_ENV"))
from pip._vendor.packaging import markers as _markers
_default_environment = _markers.default_environment
def _target_environment():
    e = _default_environment()
    e.update(env)
    return e
_markers.default_environment = _target_environment
if os.environ.pop("LAYERPACK_ALLOW_SDISTS", "") == "1":
    from pip._internal.cli import cmdoptions as _cmdoptions
    _cmdoptions.check_dist_restriction = lambda *a, **k: None
from pip._internal.cli.main import main
sys.argv[0] = "pip"
sys.exit(main(sys.argv[1:]))
`

func hashString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// runHost runs a host command, writing its output (masked) to the job's log and
// returning the last lines in the error when it fails.
func (jb *job) runHost(ctx context.Context, what string, env []string, name string, args ...string) error {
	_, err := hostcmd.Run(ctx, hostcmd.Cmd{What: what, Path: name, Args: args, Dir: jb.j.Work,
		Env: append(jb.b.environ(), env...), Log: jb.log.w, Secrets: jb.log.secrets})
	return err
}

// pip runs the host pip through the driver, for target t.
func (jb *job) pip(ctx context.Context, what string, t Target, allowSdists bool, args ...string) error {
	envJSON, err := json.Marshal(t.Env())
	if err != nil {
		return err
	}
	env := []string{
		"LAYERPACK_MARKER_ENV=" + string(envJSON),
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_NO_INPUT=1",
		"PIP_ROOT_USER_ACTION=ignore",
		"PYTHONDONTWRITEBYTECODE=1",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(jb.j.SourceDateEpoch, 10),
	}
	if allowSdists {
		env = append(env, "LAYERPACK_ALLOW_SDISTS=1")
	}
	tools := jb.b.tools(false)
	return jb.runHost(ctx, what, env, tools.Python, append([]string{"-c", pipDriver}, args...)...)
}

// noWheel matches pip's and uv's answers when a requirement has no wheel for the
// target (or none at all).
var noWheel = regexp.MustCompile(`No matching distribution found for|Could not find a version that satisfies|no usable wheels|no wheels|has no wheel|only has source distribution|not a supported wheel`)

// reqSpec is a requirements file for one target.
type reqSpec struct {
	path   string
	reqs   *Requirements
	noDeps bool // a lock export: every package is listed, pinned
	// localPlatform: a local package built a platform wheel (linux_<cpu>), which
	// the install must accept besides the manylinux tags.
	localPlatform bool
}

// targetArgs are pip's options selecting wheels for the target.
func (jb *job) targetArgs(t Target, rs *reqSpec) []string {
	a := t.pipTargetArgs()
	if rs.localPlatform {
		a = append(a, "--platform", t.LocalPlatform())
	}
	return a
}

// reqFor returns the requirements of a target: the layer's file, or the project's
// dependencies (its lock exported for the target) written to a file.
func (jb *job) reqFor(t Target) (*reqSpec, error) {
	if jb.src.reqs != nil {
		return &reqSpec{path: jb.p.AbsRequirements, reqs: jb.src.reqs}, nil
	}
	pr := jb.src.project
	lines, err := pr.RequirementsFor(t.Env())
	if err != nil {
		return nil, err
	}
	path := filepath.Join(jb.j.Work, "requirements-"+t.Version+".txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	reqs, err := ParseRequirements(path, jb.b.getenv)
	if err != nil {
		return nil, fmt.Errorf("exported requirements: %w", err)
	}
	return &reqSpec{path: path, reqs: reqs, noDeps: pr.Lock != ""}, nil
}

// commonArgs are the pip options every install of the target shares.
func (jb *job) commonArgs(rs *reqSpec) []string {
	a := jb.idx.Args()
	if rs.reqs.HasHashes() {
		a = append(a, "--require-hashes")
	}
	if rs.noDeps {
		a = append(a, "--no-deps")
	}
	return a
}

// installTarget installs the requirements of target t into dir.
func (jb *job) installTarget(ctx context.Context, t Target, dir string) error {
	rs, err := jb.reqFor(t)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir+".report", 0o755); err != nil {
		return err
	}
	mode := buildMode(jb.p)
	if mode == "container" {
		return jb.containerInstall(ctx, t, rs, dir)
	}
	tools := jb.b.tools(installer(jb.p) == "uv")
	if tools.Err != nil {
		if mode == "host" {
			return fmt.Errorf("build = \"host\" needs python3 with pip on the host: %v", tools.Err)
		}
		jb.logf("no usable pip on the host (%v): installing in the build container instead", tools.Err)
		return jb.containerInstall(ctx, t, rs, dir)
	}
	if rs, err = jb.localSpec(ctx, t, rs); err != nil {
		return err
	}
	var fastErr error
	if installer(jb.p) == "uv" {
		if rs.localPlatform {
			jb.logf("a local package is compiled: installing with pip %s (uv does not install linux_%s wheels for a manylinux target)", tools.Pip, t.Arch.GNU())
			fastErr = jb.pipFast(ctx, t, rs, dir)
		} else if tools.UV == "" {
			jb.logf("installer = \"uv\" but uv is not on PATH: using pip %s instead", tools.Pip)
			fastErr = jb.pipFast(ctx, t, rs, dir)
		} else {
			fastErr = jb.uvFast(ctx, t, rs, dir)
		}
	} else {
		fastErr = jb.pipFast(ctx, t, rs, dir)
	}
	if fastErr == nil {
		return nil
	}
	var ce *hostcmd.Error
	if !errors.As(fastErr, &ce) || !noWheel.MatchString(ce.Output()) {
		return fastErr
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return jb.viaSdists(ctx, t, rs, dir)
}

// pipFast installs wheels for the target with the host pip.
func (jb *job) pipFast(ctx context.Context, t Target, rs *reqSpec, dir string) error {
	args := []string{"install", "--quiet", "--target", dir, "--no-compile", "--no-warn-script-location", "--no-warn-conflicts",
		"--only-binary=:all:"}
	args = append(args, jb.targetArgs(t, rs)...)
	if jb.b.tools(false).pipAtLeast(22, 2) {
		args = append(args, "--report", filepath.Join(dir+".report", "report.json"))
	}
	args = append(args, jb.commonArgs(rs)...)
	args = append(args, "-r", rs.path)
	return jb.pip(ctx, "pip install (wheels for "+t.String()+")", t, false, args...)
}

// uvFast installs wheels for the target with uv, which evaluates markers for the
// target itself (--python-platform, --python-version).
func (jb *job) uvFast(ctx context.Context, t Target, rs *reqSpec, dir string) error {
	tools := jb.b.tools(installer(jb.p) == "uv")
	args := []string{"pip", "install", "--quiet", "--target", dir, "--python", tools.Python,
		"--python-platform", t.UVPlatform(), "--python-version", t.Version, "--only-binary", ":all:"}
	ix := jb.idx
	// The same index settings pip gets; uv names pip's --trusted-host
	// --allow-insecure-host, and needs pip's way of picking among several indexes
	// asked for.
	for _, a := range ix.Args() {
		if a == "--trusted-host" {
			a = "--allow-insecure-host"
		}
		args = append(args, a)
	}
	if len(ix.Extra) > 0 {
		args = append(args, "--index-strategy", "unsafe-best-match")
	}
	if rs.reqs.HasHashes() {
		args = append(args, "--require-hashes")
	}
	if rs.noDeps {
		args = append(args, "--no-deps")
	}
	args = append(args, "-r", rs.path)
	if err := jb.runHost(ctx, "uv pip install (wheels for "+t.String()+")", []string{"UV_NO_PROGRESS=1"}, tools.UV, args...); err != nil {
		return err
	}
	// uv locks the target folder with a .lock file it leaves behind.
	if err := os.Remove(filepath.Join(dir, ".lock")); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// report is the part of pip's installation report (--report) the builder reads.
type report struct {
	Install []reportItem `json:"install"`
}

type reportItem struct {
	DownloadInfo struct {
		URL         string          `json:"url"`
		ArchiveInfo json.RawMessage `json:"archive_info"`
		DirInfo     json.RawMessage `json:"dir_info"`
		VCSInfo     json.RawMessage `json:"vcs_info"`
	} `json:"download_info"`
	IsDirect  bool `json:"is_direct"`
	Requested bool `json:"requested"`
	Metadata  struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"metadata"`
}

func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return &r, nil
}

func (it *reportItem) isWheel() bool {
	u := it.DownloadInfo.URL
	if i := strings.IndexAny(u, "#?"); i >= 0 {
		u = u[:i]
	}
	return strings.HasSuffix(u, ".whl")
}

func (it *reportItem) pin() string {
	if it.IsDirect && it.DownloadInfo.URL != "" {
		return it.Metadata.Name + " @ " + it.DownloadInfo.URL
	}
	return it.Metadata.Name + "==" + it.Metadata.Version
}

// viaSdists is the slow path of "auto": resolve allowing sdists, build the sdists'
// wheels in the build container, install everything as wheels.
func (jb *job) viaSdists(ctx context.Context, t Target, rs *reqSpec, dir string) error {
	repPath := filepath.Join(dir+".report", "report.json")
	args := []string{"install", "--quiet", "--dry-run", "--ignore-installed", "--prefer-binary", "--report", repPath}
	args = append(args, jb.targetArgs(t, rs)...)
	args = append(args, jb.commonArgs(rs)...)
	args = append(args, "-r", rs.path)
	if !jb.b.tools(false).pipAtLeast(22, 2) {
		return fmt.Errorf("finding the requirements that need compiling needs pip 22.2 or later on the host (have %s); upgrade pip or use build = \"container\"", jb.b.tools(false).Pip)
	}
	if err := jb.pip(ctx, "pip install --dry-run (which requirements have no wheel for "+t.String()+")", t, true, args...); err != nil {
		return err
	}
	rep, err := readReport(repPath)
	if err != nil {
		return err
	}
	var wheels, sdists []reportItem
	var unsupported []string
	for _, it := range rep.Install {
		switch {
		case it.isWheel():
			wheels = append(wheels, it)
		case len(it.DownloadInfo.ArchiveInfo) > 0:
			sdists = append(sdists, it)
		default:
			unsupported = append(unsupported, it.Metadata.Name)
		}
	}
	if len(unsupported) > 0 {
		return fmt.Errorf("%s come from a local folder or version control: only wheels and sdists can be installed for another platform; build a wheel or an sdist of them first", strings.Join(unsupported, ", "))
	}
	var names []string
	for _, it := range sdists {
		names = append(names, it.Metadata.Name+"=="+it.Metadata.Version)
	}
	if len(sdists) == 0 {
		return fmt.Errorf("pip found no wheel for some requirement but the dry run needs no sdist either; run pip install --only-binary=:all: %s by hand to see why", strings.Join(t.pipTargetArgs(), " "))
	}
	if buildMode(jb.p) == "host" {
		return fmt.Errorf("build = \"host\" never compiles, but %s %s no wheel for %s (platforms %s ... %s, ABI %s, abi3 or pure) and must be compiled from source: use build = \"auto\" or \"container\", or provide wheels (find_links)",
			strings.Join(names, ", "), plural(len(names), "has", "have"), t, t.Platforms()[0], t.Platforms()[len(t.Platforms())-1], t.ABI())
	}
	jb.logf("no wheel for %s: compiling %s in the build container (%s)", t, strings.Join(names, ", "), t.Arch.Platform())
	hashes := rs.reqs.HasHashes()
	pins := func(items []reportItem) string {
		var b strings.Builder
		for _, it := range items {
			b.WriteString(it.pin())
			if hashes {
				for _, h := range rs.reqs.HashesFor(it.Metadata.Name) {
					b.WriteString(" --hash=" + h)
				}
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	work := dir + ".sdists"
	sdistDir, wheelDir, built := filepath.Join(work, "sdists"), filepath.Join(work, "wheels"), filepath.Join(work, "built")
	for _, d := range []string{sdistDir, wheelDir, built} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// 1. The sdists, downloaded (and hash-checked) on the host.
	sdistPins := filepath.Join(work, "sdists.txt")
	if err := os.WriteFile(sdistPins, []byte(pins(sdists)), 0o644); err != nil {
		return err
	}
	dl := []string{"download", "--quiet", "--no-deps", "--no-binary=:all:", "--python-version", t.Version, "--dest", sdistDir}
	dl = append(dl, jb.idx.Args()...)
	if hashes {
		dl = append(dl, "--require-hashes")
	}
	if err := jb.pip(ctx, "pip download (sdists)", t, false, append(dl, "-r", sdistPins)...); err != nil {
		return err
	}
	// 2. Their wheels, built in the build container for the target.
	if err := jb.containerWheels(ctx, t, sdistDir, wheelDir, names, ""); err != nil {
		return err
	}
	// 3. Everything else, as wheels for the target, exactly as resolved.
	if len(wheels) > 0 {
		wheelPins := filepath.Join(work, "wheels.txt")
		if err := os.WriteFile(wheelPins, []byte(pins(wheels)), 0o644); err != nil {
			return err
		}
		in := []string{"install", "--quiet", "--target", dir, "--no-compile", "--no-warn-script-location", "--no-warn-conflicts", "--no-deps", "--only-binary=:all:"}
		in = append(in, jb.targetArgs(t, rs)...)
		in = append(in, jb.idx.Args()...)
		if hashes {
			in = append(in, "--require-hashes")
		}
		if err := jb.pip(ctx, "pip install (wheels for "+t.String()+")", t, false, append(in, "-r", wheelPins)...); err != nil {
			return err
		}
	}
	// 4. The built wheels, into their own folder, then merged: pip --target skips
	// folders that already exist in the target (bin/, namespace packages).
	files, _ := filepath.Glob(filepath.Join(wheelDir, "*", "*.whl"))
	if len(files) == 0 {
		return fmt.Errorf("the build container produced no wheel for %s", strings.Join(names, ", "))
	}
	in := []string{"install", "--quiet", "--target", built, "--no-compile", "--no-warn-script-location", "--no-warn-conflicts", "--no-deps", "--no-index",
		"--only-binary=:all:", "--platform", t.LocalPlatform()}
	in = append(in, t.pipTargetArgs()...)
	if err := jb.pip(ctx, "pip install (wheels built in the container)", t, false, append(in, files...)...); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := mergeTree(built, dir); err != nil {
		return err
	}
	return os.RemoveAll(work)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// mergeTree moves src's content into dst. Folders merge; a file present in both
// must have the same content (a namespace package's shared __init__.py), else it is
// an error naming it.
func mergeTree(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		st, err := os.Lstat(d)
		switch {
		case os.IsNotExist(err):
			if err := os.Rename(s, d); err != nil {
				return err
			}
		case err != nil:
			return err
		case e.IsDir() && st.IsDir():
			if err := mergeTree(s, d); err != nil {
				return err
			}
		default:
			a, err1 := os.ReadFile(s)
			b, err2 := os.ReadFile(d)
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				return fmt.Errorf("%s is installed by two packages with different content", e.Name())
			}
		}
	}
	return nil
}

// maskWriter writes to a log with credentials replaced by ***.
type maskWriter struct {
	w       io.Writer
	secrets []string
	mu      sync.Mutex
}

func newMaskWriter(w io.Writer, secrets []string) *maskWriter {
	if w == nil {
		w = io.Discard
	}
	return &maskWriter{w: w, secrets: secrets}
}

func (m *maskWriter) mask(s string) string { return hostcmd.Mask(s, m.secrets) }

func (m *maskWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := io.WriteString(m.w, m.mask(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
