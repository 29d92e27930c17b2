package java

// Container mode (build = "container", or "auto" on a machine without Maven and
// Java): Maven runs in the build image. Jars do not depend on the CPU that
// resolved them, so the step runs as this machine's architecture, in the image
// configured for it, even for an arm64 layer: no emulation. The classifiers are
// still chosen for the target, so host and container modes give the same jars.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
)

// Paths inside the build container.
const (
	ctrRepo = "/layerpack/m2"   // the local repository: a persistent cache mount
	ctrPoms = "/layerpack/poms" // generated poms
	ctrOut  = "/layerpack/out"  // exported: classpath.txt and repo/ (the listed jars)
	ctrList = ctrOut + "/classpath.txt"
	// Maven's settings, as secret files: they may hold <servers> passwords.
	ctrUserSettings   = "/run/secrets/layerpack-maven-settings.xml"
	ctrGlobalSettings = "/run/secrets/layerpack-maven-global-settings.xml"
	ctrSecurity       = "/run/secrets/layerpack-maven-settings-security.xml"
)

// mavenCache is the cache key of the local repository. The engine keys caches by
// the step's architecture, which is always this machine's: one repository serves
// the layers of both architectures.
const mavenCache = "maven"

// Lines the step prints for the builder to find in a failed step's output.
const (
	errMarker = "layerpack-maven-error: "
	noMvnLine = "layerpack: no mvn on the build image's PATH"
)

// ctrPreamble checks for Maven and takes the repository lock: Maven 3.8 does not
// guard its local repository against two processes writing the same file, and the
// steps of a layer's two architectures may run at once on the same cache mount.
const ctrPreamble = `if ! command -v mvn >/dev/null 2>&1; then
  echo "` + noMvnLine + `" >&2
  exit 3
fi
mkdir -p ` + ctrOut + `/repo
if command -v flock >/dev/null 2>&1; then
  exec 9>` + ctrRepo + `/.layerpack.lock
  flock 9
fi
log=$(mktemp)
`

// ctrCopy copies every jar of the list out of the cache mount into the output,
// under its path in the repository (the list's lines end in ":/abs/file.jar",
// optionally followed by " -- module name").
const ctrCopy = `while IFS= read -r line; do
  case $line in *:/*) ;; *) continue ;; esac
  f=/${line#*:/}
  f=${f%% -- *}
  case $f in ` + ctrRepo + `/*.jar) ;; *) continue ;; esac
  rel=${f#` + ctrRepo + `/}
  mkdir -p "` + ctrOut + `/repo/${rel%/*}"
  cp "$f" "` + ctrOut + `/repo/$rel"
done < ` + ctrList + `
`

// ctrScript is the step: dependency:list on one pom, then the jars it lists. On
// failure Maven's whole output is printed, and its first error last, marked and
// without colour codes (Maven 3.8 writes some even with -B), so that it is among
// the lines a step error carries.
func ctrScript(mvnArgs []string) string {
	return ctrPreamble + `if ! mvn ` + shellJoin(mvnArgs) + ` >"$log" 2>&1; then
  cat "$log"
  echo "` + errMarker + `$(sed "s/$(printf '\033')\[[0-9;]*m//g" "$log" | grep -m 1 '^\[ERROR\] .' || true)" >&2
  exit 1
fi
cat "$log"
` + ctrCopy
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// mode is "host" or "container" for a layer: "auto" is host when this machine
// has Maven and Java, else container. Gradle always resolves on the host (the
// config refuses "container" with it).
func (b *Builder) mode(l *config.Layer) string {
	j := l.Java
	if j.Gradle != "" {
		return "host"
	}
	if j.Build == "host" || j.Build == "container" {
		return j.Build
	}
	if b.hostMaven() == nil {
		return "host"
	}
	return "container"
}

// hostMaven reports why Maven cannot run on this machine, or nil.
func (b *Builder) hostMaven() error {
	if _, err := b.mvnPath(); err != nil {
		return err
	}
	if b.Mvn != "" {
		return nil // a command given explicitly (tests) brings its own Java
	}
	if jh := b.getenv("JAVA_HOME"); jh != "" {
		if st, err := os.Stat(filepath.Join(jh, "bin", "java")); err == nil && st.Mode().IsRegular() {
			return nil
		}
	}
	if _, err := b.lookPath("java"); err != nil {
		return errors.New("java is not on PATH and JAVA_HOME names no JDK: Maven needs Java")
	}
	return nil
}

// hostArch is the architecture container steps run as: this machine's.
func hostArch() (lambda.Arch, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return lambda.X86_64, true
	case "arm64":
		return lambda.ARM64, true
	}
	return "", false
}

// stepImage is the build image plan chose for Maven's step and the architecture
// it runs as (see Builder.Engine); a job made by hand without StepArch runs as the
// target.
func stepImage(j *builders.Job) (string, lambda.Arch, error) {
	if j.StepArch != "" {
		return j.Image, j.StepArch, nil
	}
	return j.Image, j.Target.Arch, nil
}

// mavenSettings are the host's Maven settings for a container step.
type mavenSettings struct {
	args    []string // -s, -gs, -Dsettings.security
	secrets []engine.Secret
	env     []string // names of the variables the settings refer to (${env.NAME}), given as secrets
}

var envRefRE = regexp.MustCompile(`\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)

// containerSettings gives the step what host Maven reads: the user's and the
// installation's settings.xml (mirrors, servers, proxies, profiles) and
// ~/.m2/settings-security.xml (the master password of encrypted ones), each as a
// secret file; and the environment variables they refer to, as secret
// variables. Settings the host does not have leave the image's own in effect.
func (b *Builder) containerSettings(j *builders.Job) (*mavenSettings, error) {
	ms := &mavenSettings{}
	user, global := b.userSettings(), b.globalSettings()
	refs := map[string]bool{}
	add := func(id, src, target, flag string) error { // flag: -s or -gs
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("reading Maven settings: %w", err)
		}
		for _, m := range envRefRE.FindAllStringSubmatch(string(data), -1) {
			refs[m[1]] = true
		}
		ms.args = append(ms.args, flag, target)
		ms.secrets = append(ms.secrets, engine.Secret{ID: id, Source: src, Target: target})
		return nil
	}
	if user != "" {
		if err := add("layerpack-maven-settings", user, ctrUserSettings, "-s"); err != nil {
			return nil, err
		}
	}
	if global != "" {
		if err := add("layerpack-maven-global-settings", global, ctrGlobalSettings, "-gs"); err != nil {
			return nil, err
		}
	}
	if sec := b.securitySettings(); sec != "" {
		ms.args = append(ms.args, "-Dsettings.security="+ctrSecurity)
		ms.secrets = append(ms.secrets, engine.Secret{ID: "layerpack-maven-settings-security", Source: sec, Target: ctrSecurity})
	}
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	dir := filepath.Join(j.Work, "secrets")
	for _, n := range names {
		v := b.getenv(n)
		if v == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		f := filepath.Join(dir, n)
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			return nil, err
		}
		ms.secrets = append(ms.secrets, engine.Secret{ID: "layerpack-maven-env-" + n, Source: f, Env: n})
		ms.env = append(ms.env, n)
	}
	return ms, nil
}

// ctrRun is the container side of one Build: each list call is one step.
type ctrRun struct {
	j        *builders.Job
	s        *spec
	image    string
	arch     lambda.Arch
	settings *mavenSettings
	n        int
}

func (b *Builder) newCtrRun(j *builders.Job, s *spec) (*ctrRun, error) {
	if j.Engine == nil {
		return nil, errors.New("no build engine for Maven in a container")
	}
	image, arch, err := stepImage(j)
	if err != nil {
		return nil, err
	}
	if image == "" {
		return nil, fmt.Errorf(`%s.build: Maven runs in the build image, and layer %s has none: set image or [images]`, s.key, j.Layer.Name)
	}
	ms, err := b.containerSettings(j)
	if err != nil {
		return nil, err
	}
	return &ctrRun{j: j, s: s, image: image, arch: arch, settings: ms}, nil
}

// list runs dependency:list on pom in the build container and returns the jars,
// exported into the job's folder.
func (r *ctrRun) list(ctx context.Context, pom, dir string) ([]resolved, error) {
	r.n++
	j := r.j
	var paths []string // host paths mounted at the same place in the container
	ctrPom, ctrDir := pom, dir
	if strings.HasPrefix(pom, j.Work+string(filepath.Separator)) {
		ctrPom, ctrDir = ctrPoms+"/"+filepath.Base(pom), ctrPoms
	} else {
		// A user's pom keeps its path: Maven reads its local parents by relative
		// paths, and ${project.basedir} in the pom's repositories must still work.
		paths = append(paths, pomChain(pom)...)
	}
	// file:// repositories, of the pom (generated ones list the config's, or the
	// user pom's) and of the config, are mounted where their URLs say.
	urls := append([]string(nil), r.s.repos...)
	for _, repo := range pomRepositories(pom) {
		urls = append(urls, repo.URL)
	}
	for _, u := range urls {
		if d, ok := fileURL(u); ok {
			paths = append(paths, filepath.Clean(d))
		}
	}
	var mounts []engine.Mount
	if ctrPom != pom {
		mounts = append(mounts, engine.Mount{Source: pom, Target: ctrPom})
	}
	for _, p := range outermost(paths) {
		mounts = append(mounts, engine.Mount{Source: p, Target: filepath.ToSlash(p)})
	}
	args := []string{"-B", "-q", "-N", "--strict-checksums", "-Dstyle.color=never",
		"-Dmaven.repo.local=" + ctrRepo}
	args = append(args, r.settings.args...)
	args = append(args, "-f", ctrPom, Plugin+":list", "-DoutputFile="+ctrList)
	args = append(args, listFlags...)
	dest := filepath.Join(j.Work, fmt.Sprintf("maven-out-%d", r.n))
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	step := j.Step(fmt.Sprintf("%s: mvn dependency:list %s (for %s)", j.Layer.Name, filepath.Base(pom), j.Target.Arch), r.arch, r.image, engine.Step{
		Script: ctrScript(args),
		Dir:    filepath.ToSlash(ctrDir),
		Env: map[string]string{
			// A short Maven run spends most of its time compiling Maven with the
			// JIT's second tier; the first alone halves it. Only the speed changes.
			"MAVEN_OPTS": "-XX:TieredStopAtLevel=1",
		},
		Mounts:  mounts,
		Caches:  []engine.Cache{{Key: mavenCache, Target: ctrRepo}},
		Secrets: r.settings.secrets,
		Output:  ctrOut,
		Dest:    dest,
	})
	if err := j.Engine.Run(ctx, step); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ctrError(err, r.image)
	}
	deps, err := readList(j, filepath.Join(dest, "classpath.txt"), " in the build container")
	if err != nil {
		return nil, err
	}
	for i, d := range deps {
		// The jar's path in the repository layout, group/path/artifact/...: the
		// script exported it there. (Found from the coordinates rather than by the
		// prefix, which the fake engine rewrites.)
		at := strings.LastIndex(d.File, "/"+strings.ReplaceAll(d.Group, ".", "/")+"/"+d.Artifact+"/")
		f := ""
		if at >= 0 {
			f = filepath.Join(dest, "repo", filepath.FromSlash(d.File[at+1:]))
		}
		if st, err := os.Stat(f); f == "" || err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s resolved to %s, outside Maven's local repository (a system-scoped dependency?): the build container cannot give it to the layer", d.Coord, d.File)
		}
		deps[i].File = f
	}
	return deps, nil
}

// outermost drops duplicates and paths inside another path of the list (already
// visible through its mount), sorted.
func outermost(paths []string) []string {
	sorted := append([]string(nil), paths...)
	sort.Strings(sorted)
	var out []string
	for _, p := range sorted {
		if _, err := os.Stat(p); err != nil {
			continue // Maven says what is missing, in its own words
		}
		inside := false
		for _, o := range out {
			if p == o || strings.HasPrefix(p, o+string(filepath.Separator)) {
				inside = true
				break
			}
		}
		if !inside {
			out = append(out, p)
		}
	}
	return out
}

var pkixRE = regexp.MustCompile(`PKIX path building failed|unable to find valid certification path|SSLHandshakeException|certificate_unknown`)

// ctrError explains a failed step: Maven's first error (marked by the script),
// a TLS trust failure, or an image without Maven.
func ctrError(err error, image string) error {
	var se *engine.StepError
	if !errors.As(err, &se) {
		return err
	}
	first := ""
	for _, l := range se.Lines {
		if l == noMvnLine {
			return fmt.Errorf(`the build image %s has no mvn on PATH: Maven in a container needs an image with Maven and a JDK (such as public.ecr.aws/sam/build-java21); set the layer's image or [images], or install Maven and a JDK on this machine and use build = "host"`, image)
		}
		if m, ok := strings.CutPrefix(l, errMarker); ok && strings.TrimSpace(m) != "" {
			first = strings.TrimSpace(m)
		}
	}
	trust := pkixRE.MatchString(first)
	for _, l := range se.Lines {
		trust = trust || pkixRE.MatchString(l)
	}
	if trust {
		detail := strings.TrimPrefix(helpRE.ReplaceAllString(first, ""), "[ERROR] ")
		if detail == "" {
			detail = "PKIX path building failed"
		}
		return fmt.Errorf("Maven in the build container does not trust the TLS certificate of a repository: the certificate authority that signed it is not in the image's Java trust store. Behind a TLS-intercepting proxy it is the host's: keep trust_host_ca on (the default; --no-trust-host-ca turns it off), which gives the step's JVM the host CA bundle as a trust store (mvn: %s)", detail)
	}
	if first == "" {
		return err
	}
	return mavenError(first, err)
}

// settingsDigest identifies a settings file for cache keys without its
// credentials: <servers> (ids, user names, passwords, keys, headers) and any
// <password> change no byte of a layer, and must not be in key material.
func settingsDigest(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := serversRE.ReplaceAllString(string(data), "<servers/>")
	s = passwordRE.ReplaceAllString(s, "<password/>")
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

var (
	serversRE  = regexp.MustCompile(`(?s)<servers\s*>.*?</servers\s*>`)
	passwordRE = regexp.MustCompile(`(?s)<password\s*>.*?</password\s*>`)
)
