package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/builders/python"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/plan"
)

// A Python layer built in containers for two Python versions runs steps in two
// images; the key must change when either image's digest does, not only the first.
func TestKeyHashesEveryImageDigest(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("six==1.16.0\n"), 0o644)
	toml := `[defaults]
architectures = ["x86_64"]
[images]
"python3.12" = "docker-image://example.test/py312:{arch}"
"python3.13" = "docker-image://example.test/py313:{arch}"
[layer.p]
compatible_runtimes = ["python3.12", "python3.13"]
[layer.p.python]
requirements = "requirements.txt"
build = "container"
`
	os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(toml), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := plan.Make(cfg, nil, nil, []builders.Builder{python.New()})
	if err != nil {
		t.Fatal(err)
	}
	it := &items[0]
	if len(it.Images) != 2 || it.Images[1].Runtime != "python3.13" || it.Images[1].Arch != lambda.X86_64 {
		t.Fatalf("images = %+v, want one per Python version", it.Images)
	}
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := func(d312, d313 string) string {
		t.Helper()
		eng := &engine.Fake{Digests: map[string]string{it.Images[0].Ref: d312, it.Images[1].Ref: d313}}
		o := &Options{Config: cfg, Engine: eng, Epoch: time.Unix(315532800, 0), Cache: c}
		k, err := Key(context.Background(), o, c.NewHasher(), it)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key("sha256:aaa", "sha256:bbb")
	if key("sha256:aaa", "sha256:bbb") != base {
		t.Fatal("key is not stable")
	}
	if key("sha256:aaa", "sha256:ccc") == base {
		t.Error("the second Python version's image digest changed and the key did not")
	}
	if key("sha256:ddd", "sha256:bbb") == base {
		t.Error("the first Python version's image digest changed and the key did not")
	}
}

// noDaemon is an engine whose every image lookup fails as with no daemon.
type noDaemon struct{ engine.Fake }

func (*noDaemon) ImageDigest(context.Context, string, lambda.Arch) (string, error) {
	return "", errors.New("no BuildKit daemon for x86_64 steps")
}

// A layer of wheels needs a daemon only for its bytecode: the error says so, and
// names the key that builds it without one.
func TestKeyNoDaemonSaysWhy(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("six==1.16.0\n"), 0o644)
	toml := "[layer.p]\ncompatible_runtimes = [\"python3.12\"]\narchitectures = [\"x86_64\"]\n[layer.p.python]\nrequirements = \"requirements.txt\"\n"
	os.WriteFile(filepath.Join(dir, "layerpack.toml"), []byte(toml), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "layerpack.toml"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := plan.Make(cfg, nil, nil, []builders.Builder{python.New()})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cache.Open(t.TempDir())
	o := &Options{Config: cfg, Engine: &noDaemon{}, Epoch: time.Unix(315532800, 0), Cache: c}
	_, err = Key(context.Background(), o, c.NewHasher(), &items[0])
	if err == nil || !strings.Contains(err.Error(), "layer.p.python: bytecode") || !strings.Contains(err.Error(), "compile = false") {
		t.Fatalf("Key: %v, want an error naming the bytecode and compile = false", err)
	}
}
