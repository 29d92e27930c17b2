package plan

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/builders/files"
	"github.com/layerpack/layerpack/builders/native"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/lambda"
)

func load(t *testing.T, src string) *config.File {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	os.MkdirAll(filepath.Join(dir, "images", "real-arm64"), 0o755)
	os.Symlink("real-arm64", filepath.Join(dir, "images", "arm64"))
	cfg, err := config.Parse("l.toml", dir, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const src = `
[images]
default = "rootfs://images/{arch}"
[layer.b]
compatible_runtimes = ["provided.al2023"]
architectures = ["arm64"]
[layer.b.native]
context = "src"
script = "true"
[layer.a]
compatible_runtimes = ["nodejs20.x"]
architectures = ["arm64", "x86_64"]
[[layer.a.files]]
src = "src"
`

var all = []builders.Builder{native.New(), files.New()}

func TestMake(t *testing.T) {
	cfg := load(t, src)
	items, err := Make(cfg, nil, nil, all)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.File)
	}
	// Layers by name, architectures in canonical order whatever the config says.
	if want := []string{"a-x86_64.zip", "a-arm64.zip", "b-arm64.zip"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("items = %v, want %v", got, want)
	}
	if items[0].Image != "" || items[0].NeedsEngine() {
		t.Errorf("a layer of files needs no image: %+v", items[0])
	}
	// The symlinked rootfs folder is resolved, so BuildKit syncs one copy.
	real, _ := filepath.EvalSymlinks(filepath.Join(cfg.Dir, "images", "real-arm64"))
	if items[2].Image != "rootfs://"+real || !items[2].NeedsEngine() {
		t.Errorf("image = %q, want rootfs://%s", items[2].Image, real)
	}
}

func TestMakeSelection(t *testing.T) {
	cfg := load(t, src)
	items, err := Make(cfg, []string{"a"}, []lambda.Arch{lambda.ARM64}, all)
	if err != nil || len(items) != 1 || items[0].File != "a-arm64.zip" {
		t.Fatalf("items = %+v, %v", items, err)
	}
	if _, err := Make(cfg, []string{"nope"}, nil, all); err == nil || err.Error() != `unknown layer "nope" in l.toml (layers: a, b)` {
		t.Errorf("err = %v", err)
	}
	if _, err := Make(cfg, []string{"b"}, []lambda.Arch{lambda.X86_64}, all); err == nil || err.Error() != `layer "b" is built for arm64 only, not for x86_64` {
		t.Errorf("err = %v", err)
	}
}

// nativeSteps wraps a builder whose container steps run as x86_64 whatever the
// target (as Java's Maven step does on an x86_64 machine).
type nativeSteps struct{ builders.Builder }

func (n nativeSteps) Engine(l *config.Layer, t builders.Target) builders.EngineNeeds {
	e := n.Builder.Engine(l, t)
	e.Images = []builders.ImageNeed{{Runtime: l.CompatibleRuntimes[0], Arch: lambda.X86_64}}
	return e
}

// The image of an item whose steps run natively is the one configured for the
// step's architecture, not the target's: it is what the cache key must hash.
func TestMakeStepArch(t *testing.T) {
	cfg := load(t, src)
	os.MkdirAll(filepath.Join(cfg.Dir, "images", "x86_64"), 0o755)
	items, err := Make(cfg, []string{"b"}, nil, []builders.Builder{nativeSteps{native.New()}})
	if err != nil {
		t.Fatal(err)
	}
	it := items[0]
	if it.Target.Arch != lambda.ARM64 || it.StepArch != lambda.X86_64 {
		t.Fatalf("target %s, step arch %s: want arm64 built by x86_64 steps", it.Target.Arch, it.StepArch)
	}
	if want := "rootfs://" + filepath.Join(cfg.Dir, "images", "x86_64"); it.Image != want {
		t.Errorf("image = %q, want %q (the step architecture's)", it.Image, want)
	}

	items, err = Make(cfg, []string{"b"}, nil, all)
	if err != nil {
		t.Fatal(err)
	}
	if items[0].StepArch != lambda.ARM64 {
		t.Errorf("step arch = %s, want the target's, arm64", items[0].StepArch)
	}
}
