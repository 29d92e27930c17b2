package initconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/config"
)

func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "my app")
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Each kind of project gives a config that config.Load accepts, with the runtime
// its own files name.
func TestEachKindLoads(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		kinds   string // the builder tables, in order
		runtime []string
	}{
		{"requirements", map[string]string{"requirements.txt": "six==1.16.0\n", ".python-version": "3.13.1\n"}, "python", []string{"python3.13"}},
		{"pyproject+uv", map[string]string{"pyproject.toml": "[project]\nname = \"x\"\nrequires-python = \">=3.11\"\n", "uv.lock": ""}, "python", []string{"python3.11"}},
		{"python default", map[string]string{"requirements.txt": ""}, "python", []string{DefaultPython}},
		{"node engines", map[string]string{"package.json": `{"engines": {"node": ">=20"}}`, "package-lock.json": "{}"}, "node", []string{"nodejs20.x"}},
		{"node nvmrc wins", map[string]string{"package.json": `{"engines": {"node": ">=20"}}`, "package-lock.json": "{}", ".nvmrc": "v22.11.0\n"}, "node", []string{"nodejs22.x"}},
		{"ruby", map[string]string{"Gemfile": "source 'https://rubygems.org'\n", "Gemfile.lock": "GEM\n\nRUBY VERSION\n   ruby 3.2.2p53\n", ".ruby-version": "3.4.1"}, "ruby", []string{"ruby3.4"}},
		{"ruby lock", map[string]string{"Gemfile": "", "Gemfile.lock": "GEM\n\nRUBY VERSION\n   ruby 3.2.2p53\n"}, "ruby", []string{"ruby3.2"}},
		{"maven release", map[string]string{"pom.xml": "<project><properties><maven.compiler.release>17</maven.compiler.release></properties></project>"}, "java", []string{"java17"}},
		{"maven source 1.8", map[string]string{"pom.xml": "<project><properties><maven.compiler.source>1.8</maven.compiler.source></properties></project>"}, "java", []string{"java8.al2"}},
		{"maven 23", map[string]string{"pom.xml": "<project><properties><maven.compiler.release>23</maven.compiler.release></properties></project>"}, "java", []string{"java25"}},
		{"gradle", map[string]string{"build.gradle.kts": ""}, "java", []string{DefaultJava}},
		{"make", map[string]string{"Makefile": "all:\n"}, "native", []string{DefaultNative}},
		{"cmake", map[string]string{"CMakeLists.txt": ""}, "native", []string{DefaultNative}},
		{"python and native", map[string]string{"requirements.txt": "", "Makefile": ""}, "native python", []string{DefaultNative, DefaultPython}}, // config sorts layers by name
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, tc.files)
			ls, err := Detect(dir)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "layerpack.toml")
			if err := Write(path, Render(ls)); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				b, _ := os.ReadFile(path)
				t.Fatalf("config.Load: %v\n%s", err, b)
			}
			var kinds []string
			for i, l := range cfg.Layers {
				switch {
				case l.Python != nil:
					kinds = append(kinds, "python")
				case l.Node != nil:
					kinds = append(kinds, "node")
				case l.Ruby != nil:
					kinds = append(kinds, "ruby")
				case l.Java != nil:
					kinds = append(kinds, "java")
				case l.Native != nil:
					kinds = append(kinds, "native")
				}
				if strings.Join(l.CompatibleRuntimes, ",") != tc.runtime[i] {
					t.Errorf("layer %s: runtimes %v, want %s", l.Name, l.CompatibleRuntimes, tc.runtime[i])
				}
				if got := cfg.ArchList(l); len(got) != 2 {
					t.Errorf("layer %s: architectures %v", l.Name, got)
				}
			}
			if strings.Join(kinds, " ") != tc.kinds {
				t.Errorf("kinds %v, want %s", kinds, tc.kinds)
			}
			// Layer names come from the folder ("my app" -> "my-app").
			if !strings.HasPrefix(cfg.Layers[0].Name, "my-app") {
				t.Errorf("layer name %q", cfg.Layers[0].Name)
			}
		})
	}
}

// Every key line, set or commented out, says what it does.
func TestEveryKeyHasAComment(t *testing.T) {
	dir := project(t, map[string]string{"requirements.txt": "", "package.json": "{}", "yarn.lock": "", "Gemfile": "", "Gemfile.lock": "", "pom.xml": "<project/>", "Makefile": ""})
	ls, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 5 {
		t.Fatalf("found %d kinds, want 5", len(ls))
	}
	for _, line := range strings.Split(string(Render(ls)), "\n") {
		l := strings.TrimPrefix(line, "# ")
		if strings.Contains(l, " = ") && !strings.HasPrefix(line, "#") && !strings.Contains(l, "  # ") {
			t.Errorf("no comment: %q", line)
		}
	}
}

func TestNeverOverwrites(t *testing.T) {
	dir := project(t, map[string]string{"requirements.txt": "", "layerpack.toml": "# mine\n"})
	ls, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "layerpack.toml")
	err = Write(path, Render(ls))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Write over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "# mine\n" {
		t.Fatalf("the file changed: %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".layerpack.toml.tmp-*"))
	if len(left) > 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestNothingFound(t *testing.T) {
	_, err := Detect(project(t, map[string]string{"README.md": "hi"}))
	if !errors.Is(err, ErrNothing) || !strings.Contains(err.Error(), "requirements.txt") {
		t.Fatalf("err = %v", err)
	}
}
