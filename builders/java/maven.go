package java

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/internal/hostcmd"
)

// listFlags make dependency:list print the runtime classpath (compile and runtime
// scopes: no test, no provided), transitively, with absolute file names.
var listFlags = []string{
	"-DincludeScope=runtime",
	"-DexcludeTransitive=false",
	"-DoutputAbsoluteArtifactFilename=true",
	"-DoutputScope=true",
	"-DappendOutput=false",
	"-Dsort=true",
}

func (b *Builder) mvnPath() (string, error) {
	if b.Mvn != "" {
		return b.Mvn, nil
	}
	p, err := b.lookPath("mvn")
	if err != nil {
		return "", errors.New(`mvn (Apache Maven) is not on PATH: with build = "host" layerpack resolves Java dependencies with Maven on this machine; install Maven 3.6.3 or later (apt-get install maven), or use build = "auto" or "container" to run Maven in the build image`)
	}
	return p, nil
}

// resolveMaven lists the runtime classpath with Maven, then swaps in the classified
// jars the classifiers table asks for.
func (b *Builder) resolveMaven(ctx context.Context, j *builders.Job, s *spec) ([]resolved, error) {
	var list func(pom, dir string) ([]resolved, error)
	if b.mode(j.Layer) == "container" {
		r, err := b.newCtrRun(j, s)
		if err != nil {
			return nil, err
		}
		list = func(pom, dir string) ([]resolved, error) { return r.list(ctx, pom, dir) }
	} else {
		mvn, err := b.mvnPath()
		if err != nil {
			return nil, err
		}
		repo, err := b.repoDir(j)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(repo, 0o755); err != nil {
			return nil, err
		}
		// Maven 3.8 does not guard its local repository against two processes
		// writing the same file: the builds of both architectures take turns.
		unlock, err := lockFile(repo + ".lock")
		if err != nil {
			return nil, err
		}
		defer unlock()
		list = func(pom, dir string) ([]resolved, error) { return b.list(ctx, j, mvn, repo, pom, dir) }
	}

	pom, dir := s.pom, filepath.Dir(s.pom)
	repos := configRepositories(s.repos)
	if pom == "" {
		var top []Coord
		for _, a := range s.artifacts {
			if c, ok := s.classifiers[a.GA()]; ok && a.Classifier == "" {
				a.Classifier = c
			}
			top = append(top, a)
		}
		pom, dir = filepath.Join(j.Work, "artifacts-pom.xml"), j.Work
		if err := writePom(pom, "artifacts", top, repos, false); err != nil {
			return nil, err
		}
	} else {
		repos = pomRepositories(s.pom)
	}
	deps, err := list(pom, dir)
	if err != nil {
		return nil, err
	}

	// Classified jars of artifacts already on the classpath, at the same version.
	var swap []Coord
	drop := map[string]bool{}
	for _, ga := range slices.Sorted(maps.Keys(s.classifiers)) {
		c := s.classifiers[ga]
		var have []resolved
		for _, d := range deps {
			if d.GA() == ga {
				have = append(have, d)
			}
		}
		if len(have) == 0 {
			return nil, fmt.Errorf("%s.classifiers: %s is not on the runtime classpath, so no classifier can be chosen for it", s.key, ga)
		}
		for _, d := range have {
			if d.Classifier != c {
				want := have[0].Coord
				want.Classifier = c
				swap = append(swap, want)
				drop[ga] = true
				break
			}
		}
	}
	if len(swap) == 0 {
		return deps, nil
	}
	pom2 := filepath.Join(j.Work, "classifiers-pom.xml")
	if err := writePom(pom2, "classifiers", swap, repos, true); err != nil {
		return nil, err
	}
	classified, err := list(pom2, j.Work)
	if err != nil {
		return nil, err
	}
	var out []resolved
	for _, d := range deps {
		if !drop[d.GA()] {
			out = append(out, d)
		}
	}
	return append(out, classified...), nil
}

// list runs dependency:list on pom and reads the jars it resolved. The builds of a
// layer's two architectures often resolve the same pom: the second one takes the
// first one's answer (the caller holds the repository lock).
func (b *Builder) list(ctx context.Context, j *builders.Job, mvn, repo, pom, dir string) ([]resolved, error) {
	where := pom // a user's pom: its folder matters (${project.basedir}, parents)
	if strings.HasPrefix(pom, j.Work+string(filepath.Separator)) {
		where = "generated" // in the job's folder, which differs by architecture
	}
	key, err := memoKey(repo, pom, where)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	deps, ok := b.memo[key]
	b.mu.Unlock()
	if ok {
		return deps, nil
	}
	deps, err = b.runList(ctx, j, mvn, repo, pom, dir)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.memo == nil {
		b.memo = map[string][]resolved{}
	}
	b.memo[key] = deps
	b.mu.Unlock()
	return deps, nil
}

// memoKey identifies a resolution: the local repository and the content of the pom
// and of its local parents.
func memoKey(repo, pom, where string) (string, error) {
	h := sha256.New()
	io.WriteString(h, repo+"\x00"+where+"\x00")
	for _, p := range pomChain(pom) {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (b *Builder) runList(ctx context.Context, j *builders.Job, mvn, repo, pom, dir string) ([]resolved, error) {
	outFile := filepath.Join(j.Work, "classpath-"+strings.TrimSuffix(filepath.Base(pom), ".xml")+".txt")
	args := []string{"-B", "-q", "-N", "--strict-checksums", "-Dstyle.color=never", "-Dmaven.repo.local=" + repo}
	// The settings Inputs hashed are the ones used, named explicitly: Maven finds
	// ~/.m2 by the JVM's user.home, which need not be $HOME.
	if f := b.userSettings(); f != "" {
		args = append(args, "-s", f)
	}
	if f := b.securitySettings(); f != "" {
		args = append(args, "-Dsettings.security="+f)
	}
	args = append(args, "-f", pom, Plugin+":list", "-DoutputFile="+outFile)
	args = append(args, listFlags...)
	env := b.toolEnv()
	if b.getenv("MAVEN_OPTS") == "" {
		// A short Maven run spends most of its time compiling Maven with the JIT's
		// second tier; the first alone halves it. Only the speed changes.
		env = append(env, "MAVEN_OPTS=-XX:TieredStopAtLevel=1")
	}
	out, err := hostcmd.Run(ctx, hostcmd.Cmd{What: "mvn", Path: mvn, Args: args, Dir: dir, Env: env})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if j.Log != nil {
			io.WriteString(j.Log, out)
		}
		return nil, mavenError(out, exitOf(err))
	}
	return readList(j, outFile, "")
}

// readList reads the classpath the dependency plugin wrote to file; where says
// where Maven ran, for errors. Entries that are not jars are logged and left out.
func readList(j *builders.Job, file, where string) ([]resolved, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the classpath Maven listed%s: %w", where, err)
	}
	deps, skipped, err := parseList(string(data))
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		if j.Log != nil {
			fmt.Fprintf(j.Log, "layerpack: %s: %s is not a jar; left out of java/lib\n", j.Layer.Name, s)
		}
	}
	return deps, nil
}

// toolEnv is the environment for Maven and Gradle: the host's, without
// SOURCE_DATE_EPOCH (it means nothing to resolving, and Maven 3.8 fails with an
// internal NumberFormatException when it is set but empty).
func (b *Builder) toolEnv() []string {
	environ := os.Environ
	if b.Environ != nil {
		environ = b.Environ
	}
	var env []string
	for _, kv := range environ() {
		if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
			env = append(env, kv)
		}
	}
	return env
}

// parseList reads dependency:list's output file:
//
//	The following files have been resolved:
//	   group:artifact:type[:classifier]:version:scope:/abs/file.jar -- module name
func parseList(s string) (deps []resolved, skipped []string, err error) {
	for _, line := range strings.Split(stripANSI(s), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "none" || strings.HasPrefix(line, "The following files have been resolved") {
			continue
		}
		if i := strings.Index(line, " -- "); i >= 0 {
			line = line[:i]
		}
		i := strings.Index(line, ":/")
		if i < 0 {
			return nil, nil, fmt.Errorf("unexpected line in Maven's dependency list: %q", line)
		}
		f, file := strings.Split(line[:i], ":"), line[i+1:]
		var c Coord
		switch len(f) {
		case 5: // g:a:type:version:scope
			c = Coord{Group: f[0], Artifact: f[1], Version: f[3]}
		case 6: // g:a:type:classifier:version:scope
			c = Coord{Group: f[0], Artifact: f[1], Classifier: f[3], Version: f[4]}
		default:
			return nil, nil, fmt.Errorf("unexpected line in Maven's dependency list: %q", line)
		}
		if !strings.HasSuffix(file, ".jar") {
			skipped = append(skipped, c.String()+" ("+f[2]+")")
			continue
		}
		deps = append(deps, resolved{Coord: c, File: file})
	}
	return deps, skipped, nil
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

func stripANSI(s string) string { return ansiRE.ReplaceAllString(s, "") }

var (
	notFoundRE = regexp.MustCompile(`Could not find artifact (\S+) in (.+)$`)
	rangeRE    = regexp.MustCompile(`No versions available for (\S+) within specified range`)
	pluginRE   = regexp.MustCompile(`Plugin ` + regexp.QuoteMeta(Plugin) + ` or one of its dependencies could not be resolved`)
	helpRE     = regexp.MustCompile(`\s*-> \[Help \d+\]$`)
)

// mavenError explains Maven's first error line.
func mavenError(out string, runErr error) error {
	var first string
	for _, l := range strings.Split(stripANSI(out), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(l), "[ERROR] "); ok && strings.TrimSpace(m) != "" {
			first = helpRE.ReplaceAllString(strings.TrimSpace(m), "")
			break
		}
	}
	if first == "" {
		return fmt.Errorf("mvn failed (%v) without an error message; its output ends:%s", runErr, tail(out, 10))
	}
	// First: a plugin that cannot be resolved is also "Could not find artifact".
	if pluginRE.MatchString(first) {
		return fmt.Errorf("Maven could not get %s, which layerpack runs to list the classpath: check access to Maven Central or to the mirror in ~/.m2/settings.xml (mvn: %s)", Plugin, first)
	}
	if m := notFoundRE.FindStringSubmatch(first); m != nil {
		return fmt.Errorf("artifact %s was not found in the repositories (Maven tried %s first): check its group, artifact and version", m[1], m[2])
	}
	if m := rangeRE.FindStringSubmatch(first); m != nil {
		ga, rng := m[1], ""
		if i := strings.LastIndex(m[1], ":"); i > 0 {
			ga, rng = m[1][:i], m[1][i+1:]
		}
		return fmt.Errorf("no version of %s in the repositories matches %s", ga, rng)
	}
	return fmt.Errorf("mvn: %s", first)
}

// exitOf is the command's own failure (an exit status) without the output
// hostcmd adds: mavenError reports the output its own way.
func exitOf(err error) error {
	var ce *hostcmd.Error
	if errors.As(err, &ce) {
		return ce.Err
	}
	return err
}

func tail(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(stripANSI(s), "\n") {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return "\n  | " + strings.Join(keep, "\n  | ")
}

// writePom writes a throwaway pom (packaging pom: nothing to build) that depends on
// deps. With direct, each dependency comes without its own dependencies.
func writePom(path, name string, deps []Coord, repos []repository, direct bool) error {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by layerpack to resolve a layer's classpath; not kept. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>layerpack.generated</groupId>
  <artifactId>` + name + `</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
`)
	if len(repos) > 0 {
		b.WriteString("  <repositories>\n")
		for _, r := range repos {
			fmt.Fprintf(&b, "    <repository>\n      <id>%s</id>\n      <url>%s</url>\n    </repository>\n", xmlEscape(r.ID), xmlEscape(r.URL))
		}
		b.WriteString("  </repositories>\n")
	}
	b.WriteString("  <dependencies>\n")
	for _, d := range deps {
		fmt.Fprintf(&b, "    <dependency>\n      <groupId>%s</groupId>\n      <artifactId>%s</artifactId>\n      <version>%s</version>\n",
			xmlEscape(d.Group), xmlEscape(d.Artifact), xmlEscape(d.Version))
		if d.Classifier != "" {
			fmt.Fprintf(&b, "      <classifier>%s</classifier>\n", xmlEscape(d.Classifier))
		}
		if direct {
			b.WriteString("      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>\n")
		}
		b.WriteString("    </dependency>\n")
	}
	b.WriteString("  </dependencies>\n</project>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// pomFile is the part of a pom the builder reads.
type pomFile struct {
	Parent *struct {
		RelativePath *string `xml:"relativePath"`
	} `xml:"parent"`
	Repositories []repository `xml:"repositories>repository"`
}

func readPom(path string) (*pomFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p pomFile
	if err := xml.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// repository is a remote repository of a generated pom. Its id matters: servers
// in settings.xml (credentials) are matched by id.
type repository struct {
	ID  string `xml:"id"`
	URL string `xml:"url"`
}

// configRepositories are the repositories of the config section; the N-th has the
// id layerpack-N.
func configRepositories(urls []string) []repository {
	var out []repository
	for i, u := range urls {
		out = append(out, repository{ID: fmt.Sprintf("layerpack-%d", i+1), URL: u})
	}
	return out
}

// pomRepositories are the repositories a pom declares itself, with the pom's folder
// put in for ${project.basedir} (a generated pom lives elsewhere).
func pomRepositories(path string) []repository {
	p, err := readPom(path)
	if err != nil {
		return nil
	}
	dir := filepath.Dir(path)
	expand := strings.NewReplacer("${project.basedir}", dir, "${basedir}", dir)
	var out []repository
	for _, r := range p.Repositories {
		r.ID, r.URL = strings.TrimSpace(r.ID), expand.Replace(strings.TrimSpace(r.URL))
		if r.URL != "" {
			out = append(out, r)
		}
	}
	return out
}

// pomChain is the pom and the local parent poms Maven reads with it (relativePath,
// by default ../pom.xml), which are inputs of the build as much as the pom itself.
func pomChain(pom string) []string {
	chain := []string{pom}
	for cur := pom; len(chain) < 20; {
		p, err := readPom(cur)
		if err != nil || p.Parent == nil {
			break
		}
		rel := "../pom.xml"
		if p.Parent.RelativePath != nil {
			rel = strings.TrimSpace(*p.Parent.RelativePath)
		}
		if rel == "" {
			break
		}
		next := filepath.Join(filepath.Dir(cur), filepath.FromSlash(rel))
		if st, err := os.Stat(next); err == nil && st.IsDir() {
			next = filepath.Join(next, "pom.xml")
		}
		if st, err := os.Stat(next); err != nil || !st.Mode().IsRegular() {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	return chain
}

// lockFile takes an exclusive lock on path, waiting for other holders.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking the Maven repository: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the Maven repository: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
