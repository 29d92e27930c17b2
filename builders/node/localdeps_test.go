package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/lambda"
)

// inputsKey hashes a builder's inputs the way the cache does (a fresh hasher:
// no memo of earlier contents).
func inputsKey(t *testing.T, b *Builder, l *config.Layer) string {
	t.Helper()
	in, err := b.Inputs(l, builders.Target{Arch: lambda.X86_64, Runtimes: l.Runtimes})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := c.NewHasher()
	var lines []string
	for _, i := range in {
		v := i.Value
		if i.Path != "" {
			if v, err = h.Path(i.Path); err != nil {
				t.Fatal(err)
			}
		}
		lines = append(lines, i.Name+"="+v)
	}
	return cache.Key(lines)
}

// A "file:../lib" folder dependency (npm resolves it against package.json) is
// installed by the host install, and its files are in the cache key: an edit
// under lib/ changes the key and the layer.
func TestLocalFolderDependency(t *testing.T) {
	needTool(t, "npm")
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"lib/package.json": `{"name":"lib","version":"1.0.0","main":"index.js"}`,
		"lib/index.js":     "module.exports = 1;\n",
		"app/package.json": `{"name":"app","version":"1.0.0","private":true,"dependencies":{"lib":"file:../lib"}}`,
	})
	app := filepath.Join(root, "app")
	run(t, app, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
	l := layer(app, config.Node{Build: "host"}, runtimes(t, "nodejs20.x"))
	b := New()
	build := func() string {
		j := newJob(t, l, lambda.X86_64, nil, &bytes.Buffer{})
		if err := b.Build(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		c, err := os.ReadFile(filepath.Join(j.Stage, "nodejs/node_modules/lib/index.js"))
		if err != nil {
			t.Fatalf("lib is not in the layer: %v\n%s", err, strings.Join(listFiles(t, j.Stage), "\n"))
		}
		return string(c)
	}
	key1 := inputsKey(t, b, l)
	if got := build(); got != "module.exports = 1;\n" {
		t.Errorf("lib/index.js = %q", got)
	}
	if inputsKey(t, b, l) != key1 {
		t.Error("the key changed without an edit")
	}
	writeFiles(t, root, map[string]string{"lib/index.js": "module.exports = 2;\n"})
	if inputsKey(t, b, l) == key1 {
		t.Error("an edit under lib/ left the cache key unchanged")
	}
	if got := build(); got != "module.exports = 2;\n" {
		t.Errorf("after the edit, lib/index.js = %q", got)
	}
}

// A "file:" dependency outside the config's folder is an error naming
// package.json and the dependency, from Inputs and Build alike.
func TestLocalDependencyOutsideConfigFolder(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"outside/lib/package.json": `{"name":"lib","version":"1.0.0"}`,
		"cfg/app/package.json":     `{"name":"app","dependencies":{"lib":"file:../../outside/lib"}}`,
		"cfg/app/package-lock.json": `{"lockfileVersion":3,"packages":{"":{"name":"app","dependencies":{"lib":"file:../../outside/lib"}},` +
			`"node_modules/lib":{"resolved":"../../outside/lib","link":true},"../../outside/lib":{"name":"lib","version":"1.0.0"}}}`,
	})
	l := layer(filepath.Join(root, "cfg", "app"), config.Node{Build: "host"}, runtimes(t, "nodejs20.x"))
	want := `app/package.json: dependency "lib" is "file:../../outside/lib", which leaves the config's folder ` + filepath.Join(root, "cfg")
	if _, err := New().Inputs(l, builders.Target{Arch: lambda.X86_64, Runtimes: l.Runtimes}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Inputs: %v\nwant: %s", err, want)
	}
	j := newJob(t, l, lambda.X86_64, nil, &bytes.Buffer{})
	if err := New().Build(context.Background(), j); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Build: %v\nwant: %s", err, want)
	}
	// Inside the folder it is fine.
	writeFiles(t, root, map[string]string{
		"cfg/lib/package.json": `{"name":"lib","version":"1.0.0"}`,
		"cfg/app/package.json": `{"name":"app","dependencies":{"lib":"file:../lib"}}`,
		"cfg/app/package-lock.json": `{"lockfileVersion":3,"packages":{"":{"name":"app","dependencies":{"lib":"file:../lib"}},` +
			`"node_modules/lib":{"resolved":"../lib","link":true},"../lib":{"name":"lib","version":"1.0.0"}}}`,
	})
	p, err := loadProject(l.Node.AbsDir, l.Node.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkLocalDeps(p, l.Node); err != nil {
		t.Errorf("inside: %v", err)
	}
}
