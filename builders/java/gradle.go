package java

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/internal/hostcmd"
)

// initScript adds a task that writes the resolved runtimeClasspath of the root
// project, one artifact a line: group:name:version:classifier:extension<TAB>file.
const initScript = `rootProject {
    tasks.register("layerpackClasspath") {
        doLast {
            def lines = []
            configurations.getByName("runtimeClasspath").resolvedConfiguration.resolvedArtifacts.each { a ->
                def id = a.moduleVersion.id
                lines << "${id.group}:${id.name}:${id.version}:${a.classifier ?: ''}:${a.extension}\t${a.file.absolutePath}"
            }
            new File(System.getenv("LAYERPACK_CLASSPATH_OUT")).text = lines.sort().join("\n") + "\n"
        }
    }
}
`

// gradleCommand is ./gradlew beside the build file when there is one, else gradle.
func (b *Builder) gradleCommand(s *spec) (string, error) {
	if b.Gradle != "" {
		return b.Gradle, nil
	}
	w := filepath.Join(filepath.Dir(s.gradle), "gradlew")
	if st, err := os.Stat(w); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
		return w, nil
	}
	if p, err := exec.LookPath("gradle"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s.gradle: Gradle is not installed on this machine (no gradle on PATH and no executable gradlew next to %s): install Gradle, or give a pom or artifacts, which Maven resolves",
		s.key, filepath.Base(s.gradle))
}

// gradleFiles are the files beside a Gradle build that change what it resolves.
func gradleFiles(build string) []string {
	dir := filepath.Dir(build)
	var out []string
	for _, n := range []string{"settings.gradle", "settings.gradle.kts", "gradle.properties", "gradle.lockfile",
		filepath.Join("gradle", "libs.versions.toml"), filepath.Join("gradle", "wrapper", "gradle-wrapper.properties")} {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

func (b *Builder) resolveGradle(ctx context.Context, j *builders.Job, s *spec) ([]resolved, error) {
	gradle, err := b.gradleCommand(s)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(s.gradle)
	if base != "build.gradle" && base != "build.gradle.kts" {
		return nil, fmt.Errorf("%s.gradle: %q: the build file must be build.gradle or build.gradle.kts (Gradle finds it by its folder)", s.key, base)
	}
	init := filepath.Join(j.Work, "layerpack-init.gradle")
	if err := os.WriteFile(init, []byte(initScript), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(j.Work, "gradle-classpath.txt")
	text, err := hostcmd.Run(ctx, hostcmd.Cmd{What: "gradle", Path: gradle,
		Args: []string{"--no-daemon", "-q", "--project-dir", filepath.Dir(s.gradle), "--init-script", init, "layerpackClasspath"},
		Dir:  filepath.Dir(s.gradle), Env: append(b.toolEnv(), "LAYERPACK_CLASSPATH_OUT="+out)})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("gradle failed (%v); its output ends:%s", exitOf(err), tail(text, 15))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("reading the classpath Gradle listed: %w", err)
	}
	var deps []resolved
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		id, file, ok := strings.Cut(line, "\t")
		f := strings.Split(id, ":")
		if !ok || len(f) != 5 {
			return nil, fmt.Errorf("unexpected line in Gradle's classpath: %q", line)
		}
		if f[4] != "jar" {
			if j.Log != nil {
				fmt.Fprintf(j.Log, "layerpack: %s: %s is not a jar; left out of java/lib\n", j.Layer.Name, id)
			}
			continue
		}
		deps = append(deps, resolved{Coord: Coord{Group: f[0], Artifact: f[1], Version: f[2], Classifier: f[3]}, File: file})
	}
	return deps, nil
}
