// Package java is the builder for [layer.NAME.java]: the runtime classpath of a pom,
// of a list of artifacts or of a Gradle build (jars are platform-neutral; native
// code comes in classified jars, chosen per architecture), copied byte for byte
// into java/lib/ as artifactId-version[-classifier].jar.
//
// Maven does the resolving, so mirrors, servers and proxies of ~/.m2/settings.xml
// apply, with strict checksums. On the host (build = "host", or "auto" where mvn
// and Java are installed) it runs with a local repository of layerpack's own (in
// layerpack's cache folder, not ~/.m2/repository) so that artifacts installed by
// hand on this machine cannot stand in for the repositories' ones. In the build
// image (build = "container", or "auto" without them; container.go) the local
// repository is a BuildKit cache mount and the host's settings go in as secrets.
// Both give the same jars; Gradle builds resolve on the host only.
package java

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/lambda"
)

// Builder resolves Java dependencies with Maven (or Gradle) on the host.
type Builder struct {
	// Mvn is the Maven command ("" = mvn on PATH).
	Mvn string
	// Gradle is the Gradle command ("" = ./gradlew beside the build file, else
	// gradle on PATH).
	Gradle string
	// Repo is the local Maven repository ("" = <job's CacheDir>/maven/repository).
	Repo string
	// Getenv reads JAVA_HOME, MAVEN_OPTS and the variables Maven settings refer
	// to; nil is os.Getenv.
	Getenv func(string) string
	// Environ is the environment Maven and Gradle run with; nil is os.Environ.
	Environ func() []string
	// LookPath finds mvn and java for build = "auto"; nil is exec.LookPath.
	LookPath func(string) (string, error)

	mu   sync.Mutex
	memo map[string][]resolved // resolutions of this run, by memoKey
}

func New() *Builder { return &Builder{} }

func (*Builder) Name() string                 { return "java" }
func (*Builder) Applies(l *config.Layer) bool { return l.Java != nil }

// Engine: always when Maven runs in the build image (see mode), in the image of
// this machine's architecture whatever the target: jars do not depend on the CPU
// that resolved them, so the step runs natively instead of under QEMU.
func (b *Builder) Engine(l *config.Layer, t builders.Target) builders.EngineNeeds {
	if b.mode(l) != "container" {
		return builders.EngineNeeds{Use: builders.NoEngine}
	}
	arch := t.Arch
	if a, ok := hostArch(); ok {
		arch = a
	}
	rt := ""
	if len(l.CompatibleRuntimes) > 0 {
		rt = l.CompatibleRuntimes[0]
	}
	return builders.EngineNeeds{Use: builders.UsesEngine, Images: []builders.ImageNeed{{Runtime: rt, Arch: arch}}}
}

// Plugin is the Maven plugin that lists the resolved classpath; pinned, because its
// version is part of what decides the output.
const Plugin = "org.apache.maven.plugins:maven-dependency-plugin:3.7.1"

func (b *Builder) getenv(k string) string {
	if b.Getenv != nil {
		return b.Getenv(k)
	}
	return os.Getenv(k)
}

func (b *Builder) lookPath(name string) (string, error) {
	if b.LookPath != nil {
		return b.LookPath(name)
	}
	return exec.LookPath(name)
}

// Coord is one artifact: group:artifact:version[:classifier], type jar.
type Coord struct {
	Group, Artifact, Version, Classifier string
}

func (c Coord) String() string {
	s := c.Group + ":" + c.Artifact + ":" + c.Version
	if c.Classifier != "" {
		s += ":" + c.Classifier
	}
	return s
}

// GA is group:artifact, the key of the classifiers table.
func (c Coord) GA() string { return c.Group + ":" + c.Artifact }

// FileName is the jar's name in java/lib: artifactId-version[-classifier].jar, with
// the group in front (group-artifactId-...) when withGroup is set.
func (c Coord) FileName(withGroup bool) string {
	s := c.Artifact + "-" + c.Version
	if c.Classifier != "" {
		s += "-" + c.Classifier
	}
	if withGroup {
		s = c.Group + "-" + s
	}
	return s + ".jar"
}

// ClassifierArch is what {arch} becomes in a classifier: the names Maven artifacts
// use for the CPUs (os-maven-plugin's, as in netty's linux-x86_64 / linux-aarch_64).
func ClassifierArch(a lambda.Arch) string {
	if a == lambda.ARM64 {
		return "aarch_64"
	}
	return "x86_64"
}

// spec is the checked config section for one target.
type spec struct {
	key         string // "layer.NAME.java"
	pom         string // absolute
	gradle      string // absolute
	artifacts   []Coord
	classifiers map[string]string // group:artifact -> classifier with {arch} replaced
	repos       []string
}

var (
	idRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)
	// versionRE also takes Maven's ranges: [1.0,2.0), (,1.5]
	versionRE = regexp.MustCompile(`^[A-Za-z0-9_.\-\[\](),]+$`)
)

func load(l *config.Layer, t builders.Target) (*spec, error) {
	j := l.Java
	s := &spec{key: "layer." + l.Name + ".java", pom: j.AbsPom, gradle: j.AbsGradle, repos: j.Repositories,
		classifiers: map[string]string{}}
	for i, a := range j.Artifacts {
		p := strings.Split(a, ":")
		if len(p) < 3 || len(p) > 4 {
			return nil, fmt.Errorf("%s.artifacts[%d]: %q is not group:artifact:version[:classifier]", s.key, i, a)
		}
		for k, f := range p {
			re := idRE
			if k == 2 {
				re = versionRE
			}
			if !re.MatchString(f) {
				return nil, fmt.Errorf("%s.artifacts[%d]: %q has an empty or invalid part %q", s.key, i, a, f)
			}
		}
		c := Coord{Group: p[0], Artifact: p[1], Version: p[2]}
		if len(p) == 4 {
			c.Classifier = p[3]
		}
		s.artifacts = append(s.artifacts, c)
	}
	for _, ga := range slices.Sorted(maps.Keys(j.Classifiers)) {
		p := strings.Split(ga, ":")
		if len(p) != 2 || !idRE.MatchString(p[0]) || !idRE.MatchString(p[1]) {
			return nil, fmt.Errorf("%s.classifiers: key %q is not group:artifact", s.key, ga)
		}
		c := strings.ReplaceAll(j.Classifiers[ga], "{arch}", ClassifierArch(t.Arch))
		if !idRE.MatchString(c) {
			return nil, fmt.Errorf("%s.classifiers: %q for %s is not a valid classifier", s.key, j.Classifiers[ga], ga)
		}
		s.classifiers[ga] = c
	}
	for i, r := range s.repos {
		if !strings.Contains(r, "://") {
			return nil, fmt.Errorf("%s.repositories[%d]: %q is not a URL (https://... or file:///...)", s.key, i, r)
		}
	}
	if s.pom != "" && len(s.repos) > 0 {
		return nil, fmt.Errorf("%s.repositories applies to artifacts; with a pom, declare the repositories in %s", s.key, filepath.Base(s.pom))
	}
	if s.gradle != "" && (len(s.repos) > 0 || len(s.classifiers) > 0) {
		return nil, fmt.Errorf("%s: repositories and classifiers apply to pom and artifacts; with Gradle, declare them in %s", s.key, filepath.Base(s.gradle))
	}
	return s, nil
}

func (b *Builder) Inputs(l *config.Layer, t builders.Target) ([]builders.Input, error) {
	s, err := load(l, t)
	if err != nil {
		return nil, err
	}
	var in []builders.Input
	switch {
	case s.pom != "":
		for i, p := range pomChain(s.pom) {
			name := "pom:" + l.Java.Pom
			if i > 0 {
				name = "parent-pom:" + p
			}
			in = append(in, builders.Input{Name: name, Path: p})
		}
	case s.gradle != "":
		in = append(in, builders.Input{Name: "gradle:" + l.Java.Gradle, Path: s.gradle})
		for _, f := range gradleFiles(s.gradle) {
			in = append(in, builders.Input{Name: "gradle-file:" + f, Path: f})
		}
	}
	// Repositories on this machine can change under the same URL: their content is
	// an input. Remote repositories are trusted not to change a released artifact.
	for i, r := range s.repos {
		if dir, ok := fileURL(r); ok {
			in = append(in, builders.Input{Name: fmt.Sprintf("repository[%d]:%s", i, r), Path: dir})
		}
	}
	// Without their credentials: a rotated password changes no jar.
	for _, f := range b.settingsFiles() {
		d, err := settingsDigest(f)
		if err != nil {
			return nil, fmt.Errorf("reading Maven settings: %w", err)
		}
		in = append(in, builders.Input{Name: "maven-settings:" + f, Value: d})
	}
	in = append(in, builders.Input{Name: "resolver", Value: Plugin + " " + strings.Join(listFlags, " ")})
	return in, nil
}

// fileURL returns the folder of a file:// URL.
func fileURL(u string) (string, bool) {
	p, ok := strings.CutPrefix(u, "file://")
	if !ok || !strings.HasPrefix(p, "/") {
		return "", false
	}
	return filepath.FromSlash(p), true
}

// settingsFiles are the Maven settings that exist: the user's (mirrors, servers,
// proxies) and the installation's.
func (b *Builder) settingsFiles() []string {
	var have []string
	for _, f := range []string{b.userSettings(), b.globalSettings()} {
		if f != "" {
			have = append(have, f)
		}
	}
	return have
}

// userSettings is ~/.m2/settings.xml if it exists, else "".
func (b *Builder) userSettings() string {
	return m2File("settings.xml")
}

// securitySettings is ~/.m2/settings-security.xml (the master password of
// encrypted passwords) if it exists, else "".
func (b *Builder) securitySettings() string {
	return m2File("settings-security.xml")
}

func m2File(name string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return regularFile(filepath.Join(home, ".m2", name))
}

// globalSettings is ${maven.home}/conf/settings.xml of the host's mvn, if both
// exist, else "".
func (b *Builder) globalSettings() string {
	mvn, err := b.mvnPath()
	if err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(mvn)
	if err != nil {
		return ""
	}
	return regularFile(filepath.Join(filepath.Dir(filepath.Dir(real)), "conf", "settings.xml"))
}

func regularFile(p string) string {
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	return ""
}

func (b *Builder) Steps(l *config.Layer, t builders.Target) []string {
	s, err := load(l, t)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var steps []string
	where := "with Maven on the host"
	if b.mode(l) == "container" {
		where = "with Maven in the build image"
		if a, ok := hostArch(); ok {
			where += " for " + a.Platform() + ", this machine's architecture (jars do not depend on it)"
		}
	}
	switch {
	case s.pom != "":
		steps = append(steps, fmt.Sprintf("resolve the runtime classpath of %s %s (compile and runtime scopes, transitive)", l.Java.Pom, where))
	case s.gradle != "":
		steps = append(steps, fmt.Sprintf("resolve the runtimeClasspath configuration of %s with Gradle on the host", l.Java.Gradle))
	default:
		var as []string
		for _, a := range s.artifacts {
			as = append(as, a.String())
		}
		line := "resolve " + strings.Join(as, ", ") + " with their runtime dependencies, " + where
		if len(s.repos) > 0 {
			line += " (repositories: " + strings.Join(s.repos, ", ") + ", then Maven Central)"
		}
		steps = append(steps, line)
	}
	for _, ga := range slices.Sorted(maps.Keys(s.classifiers)) {
		steps = append(steps, fmt.Sprintf("take %s with classifier %s for %s", ga, s.classifiers[ga], t.Arch))
	}
	if b.mode(l) == "container" {
		steps = append(steps, "local Maven repository: the build cache mount \""+mavenCache+"\"; strict checksums")
		for _, f := range []struct{ path, what string }{
			{b.userSettings(), "user settings (-s)"},
			{b.globalSettings(), "global settings (-gs)"},
			{b.securitySettings(), "settings-security.xml"},
		} {
			if f.path != "" {
				steps = append(steps, fmt.Sprintf("Maven %s: %s, given to the step as a secret file (servers' credentials stay out of layers, keys and logs)", f.what, f.path))
			}
		}
	}
	steps = append(steps, "copy the jars unchanged into java/lib/ as artifactId-version[-classifier].jar (groupId- in front when two names collide)")
	return steps
}

func (b *Builder) Build(ctx context.Context, j *builders.Job) error {
	s, err := load(j.Layer, j.Target)
	if err != nil {
		return err
	}
	var deps []resolved
	if s.gradle != "" {
		deps, err = b.resolveGradle(ctx, j, s)
	} else {
		deps, err = b.resolveMaven(ctx, j, s)
	}
	if err != nil {
		return err
	}
	return install(deps, filepath.Join(j.Stage, "java", "lib"))
}

// resolved is one jar of the classpath and where the resolver left it.
type resolved struct {
	Coord
	File string
}

// install copies the jars into dir, byte for byte, under stable names.
func install(deps []resolved, dir string) error {
	if len(deps) == 0 {
		return fmt.Errorf("the resolved runtime classpath is empty: nothing to put in java/lib")
	}
	count := map[string]int{}
	for _, d := range deps {
		count[d.FileName(false)]++
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	seen := map[string]string{}
	for _, d := range deps {
		name := d.FileName(count[d.FileName(false)] > 1)
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("%s and %s would both be java/lib/%s", prev, d.Coord, name)
		}
		seen[name] = d.Coord.String()
		if err := copyFile(d.File, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("copying %s: %w", d.Coord, err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// repoDir is the local Maven repository.
func (b *Builder) repoDir(j *builders.Job) (string, error) {
	if b.Repo != "" {
		return b.Repo, nil
	}
	if j.CacheDir == "" {
		return "", fmt.Errorf("layer %s: no cache folder for the Maven repository (the job has no CacheDir)", j.Layer.Name)
	}
	return filepath.Join(j.CacheDir, "maven", "repository"), nil
}
