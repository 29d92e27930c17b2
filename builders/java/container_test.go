package java

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
	"github.com/layerpack/layerpack/plan"
)

// lookPath finds only the named commands, at /fake/bin/NAME.
func lookPath(have ...string) func(string) (string, error) {
	return func(name string) (string, error) {
		if slices.Contains(have, name) {
			return "/fake/bin/" + name, nil
		}
		return "", exec.ErrNotFound
	}
}

func TestMode(t *testing.T) {
	jdk := t.TempDir()
	os.MkdirAll(filepath.Join(jdk, "bin"), 0o755)
	os.WriteFile(filepath.Join(jdk, "bin", "java"), nil, 0o755)
	cases := []struct {
		name, section string
		have          []string
		javaHome      string
		want          string
	}{
		{"auto with mvn and java", `artifacts = ["a:b:1"]`, []string{"mvn", "java"}, "", "host"},
		{"auto without mvn", `artifacts = ["a:b:1"]`, []string{"java"}, "", "container"},
		{"auto without java", `artifacts = ["a:b:1"]`, []string{"mvn"}, "", "container"},
		{"auto with JAVA_HOME", `artifacts = ["a:b:1"]`, []string{"mvn"}, jdk, "host"},
		{"auto with an empty JAVA_HOME", `artifacts = ["a:b:1"]`, []string{"mvn"}, t.TempDir(), "container"},
		{"host without mvn", "artifacts = [\"a:b:1\"]\nbuild = \"host\"", nil, "", "host"},
		{"container with mvn", "artifacts = [\"a:b:1\"]\nbuild = \"container\"", []string{"mvn", "java"}, "", "container"},
		{"gradle", `gradle = "build.gradle"`, nil, "", "host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := loadConfig(t, lambdatest.WriteProject(t, map[string]string{
				"layerpack.toml": "[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\n" + c.section + "\n",
				"build.gradle":   "",
			}))
			b := &Builder{LookPath: lookPath(c.have...), Getenv: func(k string) string {
				if k == "JAVA_HOME" {
					return c.javaHome
				}
				return ""
			}}
			if got := b.mode(cfg.Layers[0]); got != c.want {
				t.Errorf("mode %s, want %s", got, c.want)
			}
			if got := b.Engine(cfg.Layers[0], target(cfg, lambda.ARM64)).Use == builders.UsesEngine; got != (c.want == "container") {
				t.Errorf("uses the engine: %v", got)
			}
		})
	}
}

const (
	unitPassword = "lp-unit-SeCrEt-7c1e"
	unitToken    = "lp-unit-TOKEN-42d9"
)

// containerProject is a project with build = "container" (or auto without mvn),
// images per architecture, and a home folder whose settings.xml has a mirror, a
// server password and a ${env.} reference.
func containerProject(t *testing.T, section string, files map[string]string) (dir, home string) {
	t.Helper()
	all := map[string]string{
		"layerpack.toml":      "[images]\ndefault = \"rootfs://images/{arch}\"\n[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\n" + section + "\n",
		"images/x86_64/.keep": "", "images/arm64/.keep": "",
		"home/.m2/settings.xml": `<settings>
  <mirrors><mirror><id>corp</id><mirrorOf>central</mirrorOf><url>https://repo1.maven.org/maven2</url></mirror></mirrors>
  <servers><server><id>corp</id><username>lp</username><password>` + unitPassword + `</password></server>
    <server><id>other</id><password>${env.LP_UNIT_TOKEN}</password></server></servers>
</settings>
`,
		"home/.m2/settings-security.xml": "<settingsSecurity><master>{abc}</master></settingsSecurity>\n",
	}
	for k, v := range files {
		all[k] = v
	}
	dir = lambdatest.WriteProject(t, all)
	home = filepath.Join(dir, "home")
	t.Setenv("HOME", home)
	return dir, home
}

// unitBuilder runs without mvn on PATH (auto means container) and sees
// LP_UNIT_TOKEN in its environment.
func unitBuilder() *Builder {
	return &Builder{LookPath: lookPath(), Getenv: func(k string) string {
		if k == "LP_UNIT_TOKEN" {
			return unitToken
		}
		return ""
	}}
}

// playMaven is a fake engine hook that plays the step: it answers each pom (by
// the base name in the step's script) with the listed coordinates, written as
// dependency:list does, and puts a jar for each into the exported repo folder.
func playMaven(t *testing.T, answers map[string][]string) func(context.Context, *engine.Step) error {
	return func(_ context.Context, s *engine.Step) error {
		for pom, coords := range answers {
			if !strings.Contains(s.Script, "/"+pom+"'") {
				continue
			}
			var list strings.Builder
			list.WriteString("\nThe following files have been resolved:\n")
			for _, c := range coords {
				p := strings.Split(c, ":") // g:a:v[:classifier]
				file := p[1] + "-" + p[2]
				typ := "jar"
				if len(p) == 4 {
					file += "-" + p[3]
					typ = "jar:" + p[3]
				}
				rel := strings.ReplaceAll(p[0], ".", "/") + "/" + p[1] + "/" + p[2] + "/" + file + ".jar"
				fmt.Fprintf(&list, "   %s:%s:%s:%s:compile:%s/%s -- module x\n", p[0], p[1], typ, p[2], ctrRepo, rel)
				f := filepath.Join(s.Dest, "repo", filepath.FromSlash(rel))
				os.MkdirAll(filepath.Dir(f), 0o755)
				if err := os.WriteFile(f, []byte("jar "+c), 0o644); err != nil {
					return err
				}
			}
			return os.WriteFile(filepath.Join(s.Dest, "classpath.txt"), []byte(list.String()), 0o644)
		}
		t.Errorf("step for an unexpected pom: %s", s.Script)
		return errors.New("unexpected pom")
	}
}

func stageFiles(t *testing.T, stage string) map[string]string {
	t.Helper()
	got := map[string]string{}
	ents, err := os.ReadDir(filepath.Join(stage, "java", "lib"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(stage, "java", "lib", e.Name()))
		got[e.Name()] = string(b)
	}
	return got
}

// checkSecrets: the settings reach the step as secret files, the variable they
// refer to as a secret variable, and no credential is anywhere else in the step.
func checkSecrets(t *testing.T, s engine.Step, home string) {
	t.Helper()
	want := []engine.Secret{
		{ID: "layerpack-maven-settings", Source: filepath.Join(home, ".m2", "settings.xml"), Target: ctrUserSettings},
		{ID: "layerpack-maven-settings-security", Source: filepath.Join(home, ".m2", "settings-security.xml"), Target: ctrSecurity},
	}
	if len(s.Secrets) != 3 || !slices.Equal(s.Secrets[:2], want) {
		t.Fatalf("secrets %+v", s.Secrets)
	}
	tok := s.Secrets[2]
	if tok.ID != "layerpack-maven-env-LP_UNIT_TOKEN" || tok.Env != "LP_UNIT_TOKEN" || tok.Target != "" {
		t.Errorf("token secret %+v", tok)
	}
	if b, _ := os.ReadFile(tok.Source); string(b) != unitToken {
		t.Errorf("token secret file holds %q", b)
	}
	for _, a := range []string{"'-s' '" + ctrUserSettings + "'", "'-Dsettings.security=" + ctrSecurity + "'", "'--strict-checksums'", "'" + Plugin + ":list'", "'-Dmaven.repo.local=" + ctrRepo + "'"} {
		if !strings.Contains(s.Script, a) {
			t.Errorf("script lacks %s:\n%s", a, s.Script)
		}
	}
	if strings.Contains(s.Script, "-gs") {
		t.Error("global settings given, but this machine has no mvn")
	}
	for _, m := range s.Mounts {
		if strings.Contains(m.Source, ".m2") {
			t.Errorf("settings mounted as a plain mount: %+v", m)
		}
	}
	shown := fmt.Sprintf("%#v %#v %#v %s", s.Env, s.Mounts, s.Caches, s.Script)
	for _, secret := range []string{unitPassword, unitToken} {
		if strings.Contains(shown, secret) {
			t.Errorf("%s appears in the step's definition", secret)
		}
	}
	if !slices.Equal(s.Caches, []engine.Cache{{Key: "maven", Target: ctrRepo}}) {
		t.Errorf("caches %+v", s.Caches)
	}
	if s.Env["MAVEN_OPTS"] != "-XX:TieredStopAtLevel=1" || len(s.Env) != 1 {
		t.Errorf("env %v", s.Env)
	}
	if _, ok := s.Env["JAVA_TOOL_OPTIONS"]; ok {
		t.Error("the builder sets JAVA_TOOL_OPTIONS (the engine's trust store setting)")
	}
}

// Artifacts with a classifier per target: one step, run as this machine's
// architecture in its image, whatever the target.
func TestContainerArtifacts(t *testing.T) {
	host, ok := hostArch()
	if !ok {
		t.Skip("not an x86_64 or arm64 machine")
	}
	dir, home := containerProject(t,
		`artifacts = ["com.fasterxml.jackson.core:jackson-annotations:2.17.2", "io.netty:netty-transport-native-epoll:4.1.115.Final"]`+"\n"+
			`classifiers = { "io.netty:netty-transport-native-epoll" = "linux-{arch}" }`, nil)
	cfg := loadConfig(t, dir)
	for _, arch := range lambda.Arches {
		t.Run(string(arch), func(t *testing.T) {
			cls := "linux-" + ClassifierArch(arch)
			var pom string
			fake := &engine.Fake{Hook: func(ctx context.Context, s *engine.Step) error {
				for _, m := range s.Mounts {
					if m.Target == ctrPoms+"/artifacts-pom.xml" {
						b, _ := os.ReadFile(m.Source)
						pom = string(b)
					}
				}
				return playMaven(t, map[string][]string{"artifacts-pom.xml": {
					"com.fasterxml.jackson.core:jackson-annotations:2.17.2",
					"io.netty:netty-common:4.1.115.Final",
					"io.netty:netty-transport-native-epoll:4.1.115.Final:" + cls,
				}})(ctx, s)
			}}
			b := unitBuilder()
			items, err := plan.Make(cfg, nil, []lambda.Arch{arch}, []builders.Builder{b})
			if err != nil {
				t.Fatal(err)
			}
			it := items[0]
			if !it.NeedsEngine() {
				t.Fatal("no engine needed")
			}
			j := &builders.Job{Layer: it.Layer, Target: it.Target, Stage: t.TempDir(), Work: t.TempDir(), CacheDir: t.TempDir(),
				Engine: fake, Images: it.Images, Image: it.Image, StepArch: it.StepArch, SourceDateEpoch: 315532800, NoCache: true}
			if err := b.Build(context.Background(), j); err != nil {
				t.Fatal(err)
			}
			steps := fake.Steps()
			if len(steps) != 1 {
				t.Fatalf("%d steps", len(steps))
			}
			s := steps[0]
			if s.Arch != host {
				t.Errorf("the step runs as %s, not this machine's %s", s.Arch, host)
			}
			images, _ := filepath.EvalSymlinks(filepath.Join(dir, "images"))
			if want := "rootfs://" + filepath.Join(images, string(host)); s.Image != want {
				t.Errorf("image %s, want %s (the target's is %s)", s.Image, want, it.Image)
			}
			if !strings.Contains(pom, "<classifier>"+cls+"</classifier>") || strings.Count(pom, "<classifier>") != 1 {
				t.Errorf("generated pom:\n%s", pom)
			}
			if len(s.Mounts) != 1 || s.Mounts[0].Target != ctrPoms+"/artifacts-pom.xml" || s.Dir != ctrPoms {
				t.Errorf("mounts %+v, dir %s", s.Mounts, s.Dir)
			}
			if !s.NoCache || s.SourceDateEpoch != 315532800 || s.Output != ctrOut {
				t.Errorf("step %+v", s)
			}
			checkSecrets(t, s, home)
			got := stageFiles(t, j.Stage)
			want := map[string]string{
				"jackson-annotations-2.17.2.jar":                             "jar com.fasterxml.jackson.core:jackson-annotations:2.17.2",
				"netty-common-4.1.115.Final.jar":                             "jar io.netty:netty-common:4.1.115.Final",
				"netty-transport-native-epoll-4.1.115.Final-" + cls + ".jar": "jar io.netty:netty-transport-native-epoll:4.1.115.Final:" + cls,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("java/lib:\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// A user's pom: mounted where it is with its local parent and its file://
// repository; the classifier swap is a second step.
func TestContainerPom(t *testing.T) {
	dir, _ := containerProject(t, "pom = \"app/pom.xml\"\nclassifiers = { \"dev.layerpack.test:lp-native\" = \"{arch}\" }", map[string]string{
		"pom.xml":      "<project><modelVersion>4.0.0</modelVersion></project>",
		"app/pom.xml":  "<project><parent><groupId>a</groupId><artifactId>p</artifactId><version>1</version></parent><repositories><repository><id>r</id><url>file://${project.basedir}/../repo</url></repository></repositories></project>",
		"repo/.keep":   "",
		"other/a.java": "",
	})
	cfg := loadConfig(t, dir)
	fake := &engine.Fake{Hook: playMaven(t, map[string][]string{
		"pom.xml":             {"dev.layerpack.test:lp-core:1.0", "dev.layerpack.test:lp-native:1.0"},
		"classifiers-pom.xml": {"dev.layerpack.test:lp-native:1.0:aarch_64"},
	})}
	b := unitBuilder()
	j := &builders.Job{Layer: cfg.Layers[0], Target: target(cfg, lambda.ARM64), Stage: t.TempDir(), Work: t.TempDir(), CacheDir: t.TempDir(),
		Engine: fake, Image: "rootfs://" + filepath.Join(dir, "images", "arm64")}
	if err := b.Build(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	steps := fake.Steps()
	if len(steps) != 2 {
		t.Fatalf("%d steps", len(steps))
	}
	same := func(p string) engine.Mount { return engine.Mount{Source: p, Target: p} }
	wantMounts := []engine.Mount{same(filepath.Join(dir, "app", "pom.xml")), same(filepath.Join(dir, "pom.xml")), same(filepath.Join(dir, "repo"))}
	if !slices.Equal(steps[0].Mounts, wantMounts) || steps[0].Dir != filepath.Join(dir, "app") {
		t.Errorf("first step: mounts %+v dir %s", steps[0].Mounts, steps[0].Dir)
	}
	if !strings.Contains(steps[0].Script, "'-f' '"+filepath.Join(dir, "app", "pom.xml")+"'") {
		t.Errorf("first step's script:\n%s", steps[0].Script)
	}
	if m := steps[1].Mounts; len(m) != 2 || m[0].Target != ctrPoms+"/classifiers-pom.xml" || m[1] != same(filepath.Join(dir, "repo")) {
		t.Errorf("second step's mounts %+v", m)
	}
	got := stageFiles(t, j.Stage)
	if w := "map[lp-core-1.0.jar:jar dev.layerpack.test:lp-core:1.0 lp-native-1.0-aarch_64.jar:jar dev.layerpack.test:lp-native:1.0:aarch_64]"; fmt.Sprint(got) != w {
		t.Errorf("java/lib %v", got)
	}
}

func TestContainerPlanAndInputs(t *testing.T) {
	dir, home := containerProject(t, `artifacts = ["a:b:1"]`, nil)
	cfg := loadConfig(t, dir)
	b := unitBuilder()
	steps := strings.Join(b.Steps(cfg.Layers[0], target(cfg, lambda.ARM64)), "\n")
	host, _ := hostArch()
	for _, want := range []string{
		"resolve a:b:1 with their runtime dependencies, with Maven in the build image for " + host.Platform() + ", this machine's architecture (jars do not depend on it)",
		"Maven user settings (-s): " + filepath.Join(home, ".m2", "settings.xml") + ", given to the step as a secret file",
		`local Maven repository: the build cache mount "maven"`,
	} {
		if !strings.Contains(steps, want) {
			t.Errorf("steps lack %q:\n%s", want, steps)
		}
	}
	ins, err := b.Inputs(cfg.Layers[0], target(cfg, lambda.ARM64))
	if err != nil {
		t.Fatal(err)
	}
	var settings string
	for _, in := range ins {
		if strings.Contains(in.Name+in.Value, unitPassword) || strings.Contains(steps, unitPassword) {
			t.Errorf("the password is in %+v", in)
		}
		if strings.HasPrefix(in.Name, "maven-settings:") {
			settings = in.Value
		}
	}
	if !strings.HasPrefix(settings, "sha256:") {
		t.Fatalf("settings input %q", settings)
	}
	// A new password keeps the key; a new mirror changes it.
	f := filepath.Join(home, ".m2", "settings.xml")
	orig, _ := os.ReadFile(f)
	os.WriteFile(f, []byte(strings.ReplaceAll(string(orig), unitPassword, "rotated")), 0o644)
	if d, _ := settingsDigest(f); d != settings {
		t.Error("a new password changes the settings' digest")
	}
	os.WriteFile(f, []byte(strings.ReplaceAll(string(orig), "repo1.maven.org", "mirror.example.com")), 0o644)
	if d, _ := settingsDigest(f); d == settings {
		t.Error("a new mirror keeps the settings' digest")
	}
}

func TestCtrError(t *testing.T) {
	step := func(lines ...string) error {
		return &engine.StepError{Step: "jl: mvn", Arch: lambda.X86_64, ExitCode: 1, Lines: lines, Err: errors.New("exit code: 1")}
	}
	pkix := "[ERROR] Plugin " + Plugin + " or one of its dependencies could not be resolved: Failed to read artifact descriptor for org.apache.maven.plugins:maven-dependency-plugin:jar:3.7.1: Could not transfer artifact org.apache.maven.plugins:maven-dependency-plugin:pom:3.7.1 from/to central (https://repo.maven.apache.org/maven2): PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid certification path to requested target -> [Help 1]"
	cases := []struct {
		err  error
		want string
	}{
		{step("Picked up JAVA_TOOL_OPTIONS: x", pkix, errMarker+pkix),
			"Maven in the build container does not trust the TLS certificate of a repository: the certificate authority that signed it is not in the image's Java trust store. Behind a TLS-intercepting proxy it is the host's: keep trust_host_ca on (the default; --no-trust-host-ca turns it off), which gives the step's JVM the host CA bundle as a trust store (mvn: " + strings.TrimSuffix(strings.TrimPrefix(pkix, "[ERROR] "), " -> [Help 1]") + ")"},
		{step(noMvnLine), `the build image rootfs:///img has no mvn on PATH: Maven in a container needs an image with Maven and a JDK (such as public.ecr.aws/sam/build-java21); set the layer's image or [images], or install Maven and a JDK on this machine and use build = "host"`},
		{step("[ERROR] Failed ...: Could not find artifact a:b:jar:1 in central (https://repo1.maven.org/maven2) -> [Help 1]", errMarker+"[ERROR] Failed ...: Could not find artifact a:b:jar:1 in central (https://repo1.maven.org/maven2) -> [Help 1]"),
			"artifact a:b:jar:1 was not found in the repositories (Maven tried central (https://repo1.maven.org/maven2) first): check its group, artifact and version"},
		{step(errMarker + "[ERROR] Plugin " + Plugin + " or one of its dependencies could not be resolved: Could not find artifact org.apache.maven.plugins:maven-dependency-plugin:jar:3.7.1 in bad (https://x.example/m2) -> [Help 1]"),
			"Maven could not get " + Plugin + ", which layerpack runs to list the classpath: check access to Maven Central or to the mirror in ~/.m2/settings.xml (mvn: Plugin " + Plugin + " or one of its dependencies could not be resolved: Could not find artifact org.apache.maven.plugins:maven-dependency-plugin:jar:3.7.1 in bad (https://x.example/m2))"},
		{step("something else", errMarker), `step "jl: mvn" (x86_64) failed with exit code 1; last lines of its output:` + "\n  | something else\n  | " + errMarker},
		{errors.New("daemon gone"), "daemon gone"},
	}
	for _, c := range cases {
		if got := ctrError(c.err, "rootfs:///img"); got.Error() != c.want {
			t.Errorf("got:\n%v\nwant:\n%s", got, c.want)
		}
	}
}

// The step's script, run on the host by the fake engine (paths rewritten), with
// the host's Maven: the same jars, byte for byte, as host mode, so the same
// CodeSha256.
func TestContainerScriptOnHost(t *testing.T) {
	needMaven(t)
	repo, _ := testRepo(t)
	t.Setenv("HOME", t.TempDir()) // no settings.xml
	cfgText := "[images]\ndefault = \"rootfs:///nonexistent\"\n[layer.jl]\ncompatible_runtimes = [\"java21\"]\n[layer.jl.java]\npom = \"app/pom.xml\"\n" +
		"classifiers = { \"dev.layerpack.test:lp-native\" = \"{arch}\" }\n"
	sums := map[string][]string{}
	for _, mode := range []string{"host", "container"} {
		dir := lambdatest.WriteProject(t, map[string]string{
			"layerpack.toml": cfgText + "build = \"" + mode + "\"\n",
			"app/pom.xml":    layerPom(t, repo),
		})
		forget(t)
		fake := &engine.Fake{Exec: true}
		defer fake.Close()
		start := time.Now()
		res, _, err := lambdatest.Build(t, dir, &Builder{Repo: sharedRepo}, nil, fake, lambdatest.BuildOptions{OutDir: filepath.Join(dir, "dist")})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		t.Logf("%s mode, both architectures: %s", mode, time.Since(start).Round(time.Millisecond))
		for _, a := range lambda.Arches {
			if r := res[a]; r != nil {
				sums[mode] = append(sums[mode], string(a)+" "+r.CodeSha256)
			}
		}
		if n := len(fake.Steps()); (mode == "host") != (n == 0) {
			t.Errorf("%s mode ran %d container steps", mode, n)
		}
	}
	if !slices.Equal(sums["host"], sums["container"]) || len(sums["host"]) != 2 {
		t.Errorf("host %q, container %q", sums["host"], sums["container"])
	}
}
