package ghactions

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/internal/testneed"
)

// The repository root, where action.yml is.
const root = ".."

// tool finds a program: the variable scripts/testenv.sh exports, else PATH.
func tool(t *testing.T, envVar, name string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	return testneed.Tool(t, name)
}

func actionlint(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	bin := tool(t, "LAYERPACK_TEST_ACTIONLINT", "actionlint")
	sc := tool(t, "LAYERPACK_TEST_SHELLCHECK", "shellcheck")
	cmd := exec.Command(bin, append([]string{"-shellcheck", sc, "-pyflakes="}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lintRepo is a scratch repository with the action at its root and the given
// workflows, which actionlint checks together with the local action they use.
func lintRepo(t *testing.T, workflows map[string]string) string {
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "action.yml"), filepath.Join(dir, "action.yml"))
	wf := filepath.Join(dir, ".github", "workflows")
	// actionlint finds the project by its .git folder.
	for _, d := range []string{wf, filepath.Join(dir, ".git")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range workflows {
		if err := os.WriteFile(filepath.Join(wf, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestActionlint lints the README's example workflow, the act test workflow (and
// with it action.yml's metadata, which actionlint reads for `uses: ./`), and the
// action's own scripts, with shellcheck, as a workflow made of its steps.
func TestActionlint(t *testing.T) {
	example := readFile(t, filepath.Join(root, "docs", "github-workflow-example.yml"))
	local := readFile(t, filepath.Join(root, "testdata", "action", "workflow.yml"))
	steps := compositeAsWorkflow(t, readFile(t, filepath.Join(root, "action.yml")))
	dir := lintRepo(t, map[string]string{"example.yml": example, "local.yml": local, "steps.yml": steps})
	if out, err := actionlint(t, dir); err != nil {
		t.Fatalf("actionlint: %v\n%s\n--- steps.yml:\n%s", err, out, steps)
	}

	// The checks bite: an input the action does not declare, and an unquoted
	// variable in a script (shellcheck).
	bad := strings.Replace(local, "config: proj/layerpack.toml", "config: proj/layerpack.toml\n          colour: blue", 1)
	badSteps := strings.Replace(steps, `"$LAYERPACK" build`, `cd $INPUT_OUT; "$LAYERPACK" build`, 1)
	dir = lintRepo(t, map[string]string{"local.yml": bad, "steps.yml": badSteps})
	out, err := actionlint(t, dir)
	if err == nil || !strings.Contains(out, `"colour"`) || !strings.Contains(out, "SC2086") {
		t.Fatalf("actionlint did not flag the unknown input and the unquoted variable (%v)\n%s", err, out)
	}
}

// TestActionScriptsTakeInputsFromEnv: no ${{ }} inside a run: script of action.yml,
// where an input's value would become shell code; values come through env:.
func TestActionScriptsTakeInputsFromEnv(t *testing.T) {
	lines := strings.Split(readFile(t, filepath.Join(root, "action.yml")), "\n")
	runs := 0
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(strings.TrimSpace(l), "run:") {
			continue
		}
		runs++
		indent := len(l) - len(strings.TrimLeft(l, " "))
		block := []string{l}
		for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent) {
			i++
			block = append(block, lines[i])
		}
		if s := strings.Join(block, "\n"); strings.Contains(s, "${{") {
			t.Errorf("action.yml:%d: a run: script expands ${{ }}; pass the value through env: instead:\n%s", i+1, s)
		}
	}
	if runs < 4 {
		t.Fatalf("found %d run: scripts in action.yml, want at least 4", runs)
	}
	if n := strings.Count(readFile(t, filepath.Join(root, "action.yml")), "shell: bash"); n != runs {
		t.Errorf("%d run: steps but %d shell: bash", runs, n)
	}
}

// compositeAsWorkflow turns action.yml into a reusable workflow with the same inputs
// and one job made of the action's steps, so actionlint checks the steps' scripts
// (it does not look inside a composite action's steps yet).
func compositeAsWorkflow(t *testing.T, action string) string {
	t.Helper()
	lines := strings.Split(action, "\n")
	var inputs []string
	section := ""
	var steps []string
	inputName := regexp.MustCompile(`^  ([a-z][a-z0-9-]*):\s*$`)
	for i, l := range lines {
		if len(l) > 0 && l[0] != ' ' && l[0] != '#' {
			section = strings.TrimSuffix(strings.Fields(l)[0], ":")
		}
		switch {
		case section == "inputs":
			if m := inputName.FindStringSubmatch(l); m != nil {
				inputs = append(inputs, m[1])
			}
		case section == "runs" && strings.TrimSpace(l) == "steps:":
			for _, s := range lines[i+1:] {
				steps = append(steps, "  "+s)
			}
		}
	}
	if len(inputs) == 0 || len(steps) == 0 {
		t.Fatalf("action.yml: no inputs or no runs.steps found")
	}
	var b strings.Builder
	b.WriteString("name: action-steps\non:\n  workflow_call:\n    inputs:\n")
	for _, in := range inputs {
		b.WriteString("      " + in + ":\n        type: string\n        required: false\n")
	}
	b.WriteString("jobs:\n  action:\n    runs-on: ubuntu-latest\n    steps:\n")
	b.WriteString(strings.Join(steps, "\n"))
	return b.String()
}

// TestREADMEExampleWorkflow keeps the README's example workflow the linted file.
func TestREADMEExampleWorkflow(t *testing.T) {
	example := readFile(t, filepath.Join(root, "docs", "github-workflow-example.yml"))
	readme := readFile(t, filepath.Join(root, "README.md"))
	if !strings.Contains(readme, "```yaml\n"+example+"```\n") {
		t.Fatal("README.md's example workflow differs from docs/github-workflow-example.yml: copy the file into the ```yaml block")
	}
}

// TestActionUnderAct runs testdata/action/workflow.yml with act on this machine
// (-self-hosted: no Docker): the local action builds layerpack from a copy of this
// repository with the machine's Go, builds a files-only layer for both architectures,
// and the next step reads the outputs.
func TestActionUnderAct(t *testing.T) {
	if testing.Short() {
		t.Skip("builds layerpack inside act")
	}
	act := tool(t, "LAYERPACK_TEST_ACT", "act")
	git := testneed.Tool(t, "git")
	goBin := testneed.Tool(t, "go")
	repo := t.TempDir()
	copyTree(t, root, repo)
	if err := os.MkdirAll(filepath.Join(repo, ".github", "workflows"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(root, "testdata", "action", "workflow.yml"), filepath.Join(repo, ".github", "workflows", "t.yml"))
	writeFile(t, filepath.Join(repo, "proj", "layerpack.toml"), "[layer.tools]\ncompatible_runtimes = [\"provided.al2023\"]\n[[layer.tools.files]]\nsrc = \"scripts\"\ndest = \"bin\"\nmode = \"0755\"\n")
	writeFile(t, filepath.Join(repo, "proj", "scripts", "hello"), "#!/bin/sh\necho hello\n")
	if _, err := os.Lstat(filepath.Join(repo, ".git")); err == nil {
		t.Fatal("the scratch repository has a .git before git init")
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.email=test@example.com", "-c", "user.name=test", "commit", "-qm", "test"}} {
		cmd := exec.Command(git, args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	// act's own folders (its copy of the checkout, the tool cache with the built
	// layerpack) go to a scratch XDG_CACHE_HOME; Go keeps the machine's caches.
	goenv := func(k string) string {
		out, err := exec.Command(goBin, "env", k).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	result := filepath.Join(t.TempDir(), "result")
	cmd := exec.Command(act, "push", "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
		"-W", ".github/workflows/t.yml", "--env", "RESULT_FILE="+result)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), "GOCACHE="+goenv("GOCACHE"),
		"GOMODCACHE="+goenv("GOMODCACHE"), "GOFLAGS=-buildvcs=false",
		"PATH="+filepath.Dir(goBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("act: %v\n%s", err, out)
	}
	got := readFile(t, result)
	const sha = "1MiIiC6IPTwd1s+j89K93lTltNwgI4X+OPEOvru2V9w="
	for _, want := range []string{
		"manifest=proj/dist/layerpack-manifest.json\n",
		"sha=" + sha + "\n",
		"zip=proj/dist/tools-x86_64.zip\n",
		"hash=" + sha + "  proj/dist/tools-x86_64.zip\n",
		`layers=[{"name":"tools","architecture":"x86_64","file":"tools-x86_64.zip","code_sha256":"` + sha + `"`,
		`again={"tools-arm64":"proj/dist2/tools-arm64.zip"}` + "\n",
		"same-program=yes\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the next step did not get %q; it wrote:\n%s", want, got)
		}
	}
	// act prints the job summary it read from $GITHUB_STEP_SUMMARY.
	for _, want := range []string{"### layerpack build", "| tools | arm64 | `" + sha + "` | 221 B | 21 B | built |"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("act's output lacks the summary line %q", want)
		}
	}
	if t.Failed() {
		t.Logf("act output:\n%s", out)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	writeFile(t, dst, readFile(t, src))
}

// copyTree copies the sources the action builds from (not .git, outputs or caches).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch rel {
		case ".git":
			// In a git worktree .git is a file naming the real repository: copied,
			// the scratch repository's git commands would commit to this branch.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case "dist", "bin", ".layerpack", ".github":
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		copyFile(t, p, filepath.Join(dst, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
