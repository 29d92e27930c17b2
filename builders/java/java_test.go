package java

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
	"github.com/layerpack/layerpack/pipeline"
)

var fixtures = filepath.Join("..", "..", "testdata", "java")

func loadConfig(t *testing.T, dir string) *config.File {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func target(cfg *config.File, a lambda.Arch) builders.Target {
	return builders.Target{Arch: a, Runtimes: cfg.Layers[0].Runtimes}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, section string
		files         map[string]string
		want          string
	}{
		{"bad artifact part", `artifacts = ["a.b:c d:1.0"]`, nil,
			`layer.jl.java.artifacts[0]: "a.b:c d:1.0" has an empty or invalid part "c d"`},
		{"bad classifier key", `artifacts = ["a:b:1"]` + "\nclassifiers = { \"a-b\" = \"linux-{arch}\" }", nil,
			`layer.jl.java.classifiers: key "a-b" is not group:artifact`},
		{"repository not a URL", `artifacts = ["a:b:1"]` + "\nrepositories = [\"/srv/repo\"]", nil,
			`layer.jl.java.repositories[0]: "/srv/repo" is not a URL (https://... or file:///...)`},
		{"pom with repositories", `pom = "pom.xml"` + "\nrepositories = [\"https://repo.example.com/maven\"]", map[string]string{"pom.xml": "<project/>"},
			`layer.jl.java.repositories applies to artifacts; with a pom, declare the repositories in pom.xml`},
		{"gradle with classifiers", `gradle = "build.gradle"` + "\nclassifiers = { \"a:b\" = \"{arch}\" }", map[string]string{"build.gradle": ""},
			`layer.jl.java: repositories and classifiers apply to pom and artifacts; with Gradle, declare them in build.gradle`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"layerpack.toml": "[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\n" + c.section + "\n"}
			for k, v := range c.files {
				files[k] = v
			}
			cfg := loadConfig(t, lambdatest.WriteProject(t, files))
			_, err := New().Inputs(cfg.Layers[0], target(cfg, lambda.X86_64))
			if err == nil || err.Error() != c.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
}

func TestGradleMissing(t *testing.T) {
	dir := lambdatest.WriteProject(t, map[string]string{
		"layerpack.toml":   "[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\ngradle = \"app/build.gradle\"\n",
		"app/build.gradle": "plugins { id 'java' }\n",
	})
	cfg := loadConfig(t, dir)
	t.Setenv("PATH", t.TempDir()) // no gradle anywhere
	j := &builders.Job{Layer: cfg.Layers[0], Target: target(cfg, lambda.X86_64), Stage: t.TempDir(), Work: t.TempDir()}
	err := New().Build(context.Background(), j)
	want := "layer.jl.java.gradle: Gradle is not installed on this machine (no gradle on PATH and no executable gradlew next to build.gradle): install Gradle, or give a pom or artifacts, which Maven resolves"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestMvnMissing(t *testing.T) {
	dir := lambdatest.WriteProject(t, map[string]string{
		"layerpack.toml": "[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\nartifacts = [\"a:b:1\"]\nbuild = \"host\"\n",
	})
	cfg := loadConfig(t, dir)
	t.Setenv("PATH", t.TempDir())
	j := &builders.Job{Layer: cfg.Layers[0], Target: target(cfg, lambda.X86_64), Stage: t.TempDir(), Work: t.TempDir()}
	err := (&Builder{Repo: t.TempDir()}).Build(context.Background(), j)
	want := `mvn (Apache Maven) is not on PATH: with build = "host" layerpack resolves Java dependencies with Maven on this machine; install Maven 3.6.3 or later (apt-get install maven), or use build = "auto" or "container" to run Maven in the build image`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestStepsAndInputs(t *testing.T) {
	dir := lambdatest.WriteProject(t, map[string]string{
		"layerpack.toml": "[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\n" +
			"artifacts = [\"io.netty:netty-transport-native-epoll:4.1.100.Final\", \"com.example:tool:2.0:all\"]\n" +
			"repositories = [\"file:///srv/m2\", \"https://repo.example.com/maven\"]\n" +
			"classifiers = { \"io.netty:netty-transport-native-epoll\" = \"linux-{arch}\" }\n",
	})
	cfg := loadConfig(t, dir)
	b := &Builder{Mvn: "/nonexistent/mvn"}
	got := strings.Join(b.Steps(cfg.Layers[0], target(cfg, lambda.ARM64)), "\n")
	want := "resolve io.netty:netty-transport-native-epoll:4.1.100.Final, com.example:tool:2.0:all with their runtime dependencies, with Maven on the host (repositories: file:///srv/m2, https://repo.example.com/maven, then Maven Central)\n" +
		"take io.netty:netty-transport-native-epoll with classifier linux-aarch_64 for arm64\n" +
		"copy the jars unchanged into java/lib/ as artifactId-version[-classifier].jar (groupId- in front when two names collide)"
	if got != want {
		t.Errorf("steps:\n%s\nwant:\n%s", got, want)
	}
	ins, err := b.Inputs(cfg.Layers[0], target(cfg, lambda.ARM64))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range ins {
		if !strings.HasPrefix(in.Name, "maven-settings:") {
			names = append(names, in.Name)
		}
	}
	if w := []string{"repository[0]:file:///srv/m2", "resolver"}; !slices.Equal(names, w) {
		t.Errorf("inputs %q, want %q", names, w)
	}
}

func TestPomChain(t *testing.T) {
	dir := lambdatest.WriteProject(t, map[string]string{
		"pom.xml":          "<project><modelVersion>4.0.0</modelVersion></project>",
		"mid/pom.xml":      "<project><parent><groupId>a</groupId><artifactId>root</artifactId><version>1</version></parent></project>",
		"mid/app/pom.xml":  "<project><parent><relativePath>../pom.xml</relativePath></parent></project>",
		"solo/pom.xml":     "<project><parent><relativePath/></parent></project>",
		"other/x/pom.xml":  "<project><parent><relativePath>../../mid</relativePath></parent></project>",
		"layerpack.toml":   "",
		"unrelated/a.java": "",
	})
	rel := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			r, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(r))
		}
		return out
	}
	for pom, want := range map[string][]string{
		"mid/app/pom.xml": {"mid/app/pom.xml", "mid/pom.xml", "pom.xml"},
		"solo/pom.xml":    {"solo/pom.xml"},
		"other/x/pom.xml": {"other/x/pom.xml", "mid/pom.xml", "pom.xml"},
	} {
		if got := rel(pomChain(filepath.Join(dir, pom))); !slices.Equal(got, want) {
			t.Errorf("pomChain(%s) = %q, want %q", pom, got, want)
		}
	}
}

func TestParseList(t *testing.T) {
	out := "\x1b[0m\nThe following files have been resolved:\n" +
		"   com.fasterxml.jackson.core:jackson-databind:jar:2.17.2:compile:/r/jackson-databind-2.17.2.jar -- module com.fasterxml.jackson.databind\n" +
		"   io.netty:netty-transport-native-epoll:jar:linux-x86_64:4.1.100.Final:runtime:/r/epoll.jar\n" +
		"   org.example:bom-like:pom:1.0:compile:/r/bom-like-1.0.pom\n\n"
	deps, skipped, err := parseList(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []resolved{
		{Coord{"com.fasterxml.jackson.core", "jackson-databind", "2.17.2", ""}, "/r/jackson-databind-2.17.2.jar"},
		{Coord{"io.netty", "netty-transport-native-epoll", "4.1.100.Final", "linux-x86_64"}, "/r/epoll.jar"},
	}
	if !slices.Equal(deps, want) {
		t.Errorf("deps %+v\nwant %+v", deps, want)
	}
	if !slices.Equal(skipped, []string{"org.example:bom-like:1.0 (pom)"}) {
		t.Errorf("skipped %q", skipped)
	}
	if _, _, err := parseList("The following files have been resolved:\n   none\n"); err != nil {
		t.Error(err)
	}
}

func TestMavenError(t *testing.T) {
	cases := []struct{ out, want string }{
		{"\x1b[0m[ERROR] Failed to execute goal on project layer: Could not resolve dependencies for project dev.layerpack.test:layer:jar:1.0: Could not find artifact dev.layerpack.test:lp-nope:jar:1.0 in lp-test (file:///tmp/jr/repo) -> [Help 1]\n[ERROR] \n[ERROR] To see the full stack trace",
			"artifact dev.layerpack.test:lp-nope:jar:1.0 was not found in the repositories (Maven tried lp-test (file:///tmp/jr/repo) first): check its group, artifact and version"},
		{"[ERROR] Failed to execute goal on project layer: Could not resolve dependencies for project x:y:jar:1.0: Failed to collect dependencies at dev.layerpack.test:lp-app:jar:[2.0,): No versions available for dev.layerpack.test:lp-app:jar:[2.0,) within specified range -> [Help 1]",
			"no version of dev.layerpack.test:lp-app:jar in the repositories matches [2.0,)"},
		{"[ERROR] Plugin " + Plugin + " or one of its dependencies could not be resolved: Failed to read artifact descriptor -> [Help 1]",
			"Maven could not get " + Plugin + ", which layerpack runs to list the classpath: check access to Maven Central or to the mirror in ~/.m2/settings.xml (mvn: Plugin " + Plugin + " or one of its dependencies could not be resolved: Failed to read artifact descriptor)"},
		{"[ERROR] Non-parseable POM /x/pom.xml: end tag name </dependency> must match start tag name <version> (position: TEXT seen ...</version>\\n    </dependency>... @12:17)  @ line 12, column 17 -> [Help 2]",
			"mvn: Non-parseable POM /x/pom.xml: end tag name </dependency> must match start tag name <version> (position: TEXT seen ...</version>\\n    </dependency>... @12:17)  @ line 12, column 17"},
	}
	for _, c := range cases {
		if err := mavenError(c.out, errors.New("exit status 1")); err.Error() != c.want {
			t.Errorf("got:\n%v\nwant:\n%s", err, c.want)
		}
	}
}

func TestInstallNames(t *testing.T) {
	src := t.TempDir()
	mk := func(name, content string) string {
		p := filepath.Join(src, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	deps := []resolved{
		{Coord{"org.a", "util", "1.0", ""}, mk("a", "A")},
		{Coord{"org.b", "util", "1.0", ""}, mk("b", "B")},
		{Coord{"org.c", "core", "2.0", "linux-x86_64"}, mk("c", "C")},
	}
	dst := filepath.Join(t.TempDir(), "java", "lib")
	if err := install(deps, dst); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	ents, _ := os.ReadDir(dst)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dst, e.Name()))
		st, _ := e.Info()
		got[e.Name()] = fmt.Sprintf("%s %v", b, st.Mode().Perm())
	}
	want := map[string]string{
		"org.a-util-1.0.jar":        "A -rw-r--r--",
		"org.b-util-1.0.jar":        "B -rw-r--r--",
		"core-2.0-linux-x86_64.jar": "C -rw-r--r--",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if err := install(nil, dst); err == nil || err.Error() != "the resolved runtime classpath is empty: nothing to put in java/lib" {
		t.Errorf("empty: %v", err)
	}
}

// ---- tests that run Maven ----

var (
	centralOnce sync.Once
	centralErr  error
	sharedRepo  string // the plugin is downloaded into it once per test run
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedRepo != "" {
		os.RemoveAll(sharedRepo)
		os.RemoveAll(sharedRepo + "-fixtures")
		os.Remove(sharedRepo + ".lock")
	}
	os.Exit(code)
}

// needMaven skips when mvn, javac, jar or the C compilers are missing, or when
// Maven Central (where maven-dependency-plugin comes from) cannot be reached.
func needMaven(t *testing.T) {
	t.Helper()
	for _, c := range []string{"mvn", "javac", "jar", "java", "gcc", "aarch64-linux-gnu-gcc", "sha1sum"} {
		if _, err := exec.LookPath(c); err != nil {
			testneed.Missing(t, fmt.Sprintf("needs %s on the host (scripts/testenv.sh setup installs the cross compiler; apt-get install maven openjdk-17-jdk-headless)", c))
		}
	}
	centralOnce.Do(func() {
		c := &http.Client{Timeout: 15 * time.Second}
		resp, err := c.Head("https://repo.maven.apache.org/maven2/org/apache/maven/plugins/maven-dependency-plugin/maven-metadata.xml")
		if err != nil {
			centralErr = err
			return
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			centralErr = fmt.Errorf("HTTP %s", resp.Status)
		}
		if sharedRepo, err = os.MkdirTemp("", "layerpack-java-test-m2-"); err != nil {
			centralErr = err
		}
	})
	if centralErr != nil {
		testneed.Missing(t, fmt.Sprintf("Maven Central is not reachable (%v): these tests need it for %s", centralErr, Plugin))
	}
}

var (
	repoOnce sync.Once
	repoDir  string
	repoErr  error
)

// testRepo makes the file:// repository of testdata/java (mkrepo.sh), once per
// test run, and returns its folder and the folder of the load test's Main class.
func testRepo(t *testing.T) (repo, mainClasses string) {
	t.Helper()
	repoOnce.Do(func() {
		dir := filepath.Join(sharedRepo, "..", filepath.Base(sharedRepo)+"-fixtures")
		out, err := exec.Command("sh", filepath.Join(fixtures, "mkrepo.sh"), filepath.Join(dir, "repo")).CombinedOutput()
		if err != nil {
			repoErr = fmt.Errorf("mkrepo.sh: %v\n%s", err, out)
		}
		repoDir = dir
	})
	if repoErr != nil {
		t.Fatal(repoErr)
	}
	return filepath.Join(repoDir, "repo"), filepath.Join(repoDir, "main-classes")
}

// forget removes the test artifacts from the shared local repository, so every
// build resolves them from the file:// repository again (only the plugin stays).
func forget(t *testing.T) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(sharedRepo, "dev", "layerpack")); err != nil {
		t.Fatal(err)
	}
}

// buildZips runs the whole pipeline (builder, zip, verify) with a fresh zip cache,
// into dir/dist, on the host only.
func buildZips(t *testing.T, dir string, arches ...lambda.Arch) (map[lambda.Arch]*pipeline.Result, error) {
	t.Helper()
	forget(t)
	res, _, err := lambdatest.Build(t, dir, &Builder{Repo: sharedRepo}, arches, nil, lambdatest.BuildOptions{OutDir: filepath.Join(dir, "dist")})
	return res, err
}

func layerPom(t *testing.T, repo string) string {
	b, err := os.ReadFile(filepath.Join(fixtures, "poms", "layer.pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "@REPO@", "file://"+repo)
}

func zipNames(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	m := map[string][]byte{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		if f.Method != zip.Store {
			t.Errorf("%s is compressed in the zip; jars are stored", f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		m[f.Name] = b
	}
	return m
}

// A pom with a transitive dependency, test- and provided-scoped ones that must
// stay out, and a native jar whose classifier follows the architecture.
func TestMavenPom(t *testing.T) {
	needMaven(t)
	repo, mainClasses := testRepo(t)
	dir := lambdatest.WriteProject(t, map[string]string{
		"layerpack.toml": "[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\npom = \"app/pom.xml\"\n" +
			"classifiers = { \"dev.layerpack.test:lp-native\" = \"{arch}\" }\n",
		"app/pom.xml": layerPom(t, repo),
	})
	start := time.Now()
	res, err := buildZips(t, dir, lambda.X86_64, lambda.ARM64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("both architectures: %s", time.Since(start).Round(time.Millisecond))
	g := filepath.Join(repo, "dev", "layerpack", "test")
	for _, a := range lambda.Arches {
		r := res[a]
		cls := ClassifierArch(r.Item.Target.Arch)
		files := zipNames(t, r.Path)
		want := map[string]string{
			"java/lib/lp-app-1.0.jar":                filepath.Join(g, "lp-app", "1.0", "lp-app-1.0.jar"),
			"java/lib/lp-core-1.0.jar":               filepath.Join(g, "lp-core", "1.0", "lp-core-1.0.jar"),
			"java/lib/lp-native-1.0-" + cls + ".jar": filepath.Join(g, "lp-native", "1.0", "lp-native-1.0-"+cls+".jar"),
		}
		var names []string
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		if len(names) != len(want) {
			t.Errorf("%s: the zip has %q", r.Item.Target.Arch, names)
		}
		for n, src := range want {
			orig, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(files[n], orig) {
				t.Errorf("%s: %s is not byte for byte the repository's jar", r.Item.Target.Arch, n)
			}
		}
		// The load test: Java on the host (the Debian test images have no JDK).
		lib := t.TempDir()
		if err := lambdatest.Unzip(r.Path, lib); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("java", "-cp", filepath.Join(lib, "java", "lib", "*")+":"+mainClasses, "dev.layerpack.test.main.Main", "native").CombinedOutput()
		if err != nil {
			t.Fatalf("java: %v\n%s", err, out)
		}
		if string(out) != "hello from core, app\nnative/libhello.so true\n" {
			t.Errorf("%s: Main printed %q", r.Item.Target.Arch, out)
		}
	}

	// Determinism: again from a clean zip cache and without the test artifacts in
	// the local repository.
	again, err := buildZips(t, dir, lambda.X86_64)
	if err != nil {
		t.Fatal(err)
	}
	if again[lambda.X86_64].CodeSha256 != res[lambda.X86_64].CodeSha256 {
		t.Errorf("two builds differ: %s and %s", res[lambda.X86_64].CodeSha256, again[lambda.X86_64].CodeSha256)
	}
}

// The native jar of the wrong CPU is caught by the ELF check inside the jar.
func TestWrongClassifier(t *testing.T) {
	needMaven(t)
	repo, _ := testRepo(t)
	dir := lambdatest.WriteProject(t, map[string]string{
		"layerpack.toml": "[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\n" +
			"artifacts = [\"dev.layerpack.test:lp-native:1.0\"]\nrepositories = [\"file://" + repo + "\"]\n" +
			"classifiers = { \"dev.layerpack.test:lp-native\" = \"aarch_64\" }\n",
	})
	_, err := buildZips(t, dir, lambda.X86_64)
	want := `layer jl (x86_64): the layer has 1 error: elf-machine: "java/lib/lp-native-1.0-aarch_64.jar!/native/libhello.so" is aarch64 (EM_AARCH64) but the layer is for x86_64`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "jl-x86_64.zip")); err == nil {
		t.Error("the rejected zip was written")
	}
}

func TestMavenErrors(t *testing.T) {
	needMaven(t)
	repo, _ := testRepo(t)
	cases := []struct{ name, artifacts, want string }{
		{"unknown artifact", `"dev.layerpack.test:lp-nope:1.0"`,
			"layer jl (x86_64): java builder: artifact dev.layerpack.test:lp-nope:jar:1.0 was not found in the repositories (Maven tried layerpack-1 (file://" + repo + ") first): check its group, artifact and version"},
		{"unresolvable version", `"dev.layerpack.test:lp-app:[2.0,)"`,
			"layer jl (x86_64): java builder: no version of dev.layerpack.test:lp-app:jar in the repositories matches [2.0,)"},
		{"classifier for something else", `"dev.layerpack.test:lp-core:1.0"` + "]\nclassifiers = { \"org.other:x\" = \"{arch}\" }\n#[",
			"layer jl (x86_64): java builder: layer.jl.java.classifiers: org.other:x is not on the runtime classpath, so no classifier can be chosen for it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := lambdatest.WriteProject(t, map[string]string{
				"layerpack.toml": "[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\n" +
					"repositories = [\"file://" + repo + "\"]\nartifacts = [" + c.artifacts + "]\n",
			})
			_, err := buildZips(t, dir, lambda.X86_64)
			if err == nil || err.Error() != c.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
}

// The real repository: jackson-databind and its two dependencies, loaded by a class
// compiled against the layer.
func TestMavenCentral(t *testing.T) {
	needMaven(t)
	dir := lambdatest.WriteProject(t, map[string]string{
		"layerpack.toml": "[layer.jackson]\ncompatible_runtimes = [\"java21\"]\narchitectures = [\"x86_64\"]\n[layer.jackson.java]\n" +
			"artifacts = [\"com.fasterxml.jackson.core:jackson-databind:2.17.2\"]\n",
		"src/J.java": "public class J { public static void main(String[] a) throws Exception {\n" +
			"  System.out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(java.util.Map.of(\"layer\", \"ok\")));\n} }\n",
	})
	res, err := buildZips(t, dir, lambda.X86_64)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range zipNames(t, res[lambda.X86_64].Path) {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"java/lib/jackson-annotations-2.17.2.jar", "java/lib/jackson-core-2.17.2.jar", "java/lib/jackson-databind-2.17.2.jar"}
	if !slices.Equal(names, want) {
		t.Errorf("zip has %q, want %q", names, want)
	}
	lib := t.TempDir()
	if err := lambdatest.Unzip(res[lambda.X86_64].Path, lib); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(lib, "java", "lib", "*")
	classes := t.TempDir()
	if out, err := exec.Command("javac", "-cp", cp, "-d", classes, filepath.Join(dir, "src", "J.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	out, err := exec.Command("java", "-cp", cp+":"+classes, "J").CombinedOutput()
	if err != nil || string(out) != "{\"layer\":\"ok\"}\n" {
		t.Errorf("java: %v: %q", err, out)
	}
}
