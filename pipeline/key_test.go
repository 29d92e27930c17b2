package pipeline

import (
	"context"
	"os"
	"path/filepath"
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
