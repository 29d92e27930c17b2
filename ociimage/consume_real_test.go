package ociimage

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/layerpack/layerpack/builders/files"
	"github.com/layerpack/layerpack/builders/native"
	"github.com/layerpack/layerpack/internal/registrytest"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
)

// The example's native layer, built by the real pipeline for both architectures,
// as an image: pushed to a real registry and pulled back by digest, pushed again
// without a blob, then used the way a user would: a BuildKit build of a function
// image from the test root filesystem with the layer image's /opt copied in
// (`COPY --from=<image> /opt /opt`), whose run step starts the layer's program
// with Lambda's PATH and LD_LIBRARY_PATH, for x86_64 and arm64 (QEMU). Once from
// the registry, once from the OCI layout folder.
func TestNativeLayerImageConsumed(t *testing.T) {
	env := lambdatest.Need(t)
	reg := registrytest.Start(t, registrytest.Options{})
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	dir := lambdatest.WriteProject(t, map[string]string{"layerpack.toml": `
[layer.greet]
description = "greets"
license_info = "MIT"
compatible_runtimes = ["provided.al2023"]
[layer.greet.native]
context = "greet"
packages = ["libjansson-dev"]
script = "make -j2 && make install PREFIX=/opt"
strip = true
`})
	if err := files.Copy(context.Background(), "../examples/native/greet", filepath.Join(dir, "greet"), 0); err != nil {
		t.Fatal(err)
	}
	arches := []lambda.Arch{lambda.X86_64, lambda.ARM64}
	res, log, err := lambdatest.Build(t, dir, native.New(), arches, env.Engine(t),
		lambdatest.BuildOptions{Timeout: 30 * time.Minute, Image: env.Image})
	if err != nil {
		t.Fatalf("building the native layer: %v\n%s", err, log)
	}
	var srcs []Source
	for _, a := range arches {
		srcs = append(srcs, Source{Arch: a, Zip: res[a].Path})
	}
	meta := Meta{Name: "greet", Description: "greets", License: "MIT", Runtimes: []string{"provided.al2023"}}
	img, err := WriteLayout(filepath.Join(t.TempDir(), "greet.oci"), srcs, meta, time.Unix(315532800, 0))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pr, err := Push(ctx, img.Dir, img.IndexDigest, reg.Host+"/layers/greet:1", PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Uploaded != 4 || reg.BlobUploads() != 4 {
		t.Errorf("push: %d uploads counted, %d in the registry log; want 4 (2 layers, 2 configs)", pr.Uploaded, reg.BlobUploads())
	}
	CheckRemote(t, ctx, img, pr.Ref, PushOptions{})
	again, err := Push(ctx, img.Dir, img.IndexDigest, reg.Host+"/layers/greet:1", PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Uploaded != 0 || reg.BlobUploads() != 4 {
		t.Errorf("second push uploaded: %d counted, registry log has %d uploads in all (want 4)", again.Uploaded, reg.BlobUploads())
	}

	bk, err := client.New(ctx, env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	for _, a := range arches {
		p := ocispecs.Platform{OS: "linux", Architecture: a.OCI()}
		want := map[lambda.Arch]string{lambda.X86_64: "x86_64", lambda.ARM64: "aarch64"}[a]
		t.Run(string(a)+"/registry", func(t *testing.T) {
			layer := llb.Image(pr.Ref, llb.Platform(p), llb.WithCustomName("layer image "+pr.Ref))
			out := runFunctionImage(t, ctx, bk, env.Rootfs[a], p, layer, nil)
			checkGreet(t, out, want)
			// The daemon asked this registry for the image (not something cached
			// under another name).
			pulled := regexp.MustCompile(`"(GET|HEAD) /v2/layers/greet/manifests/` + regexp.QuoteMeta(img.IndexDigest.String()) + ` HTTP/[0-9.]+" 200 .*buildkit`)
			if !pulled.MatchString(reg.Log()) {
				t.Errorf("the registry log shows no request of BuildKit for the index:\n%s", reg.Log())
			}
		})
		t.Run(string(a)+"/oci-layout", func(t *testing.T) {
			store, err := contentlocal.NewStore(img.Dir)
			if err != nil {
				t.Fatal(err)
			}
			// The daemon parses the reference as a name; only the digest selects.
			layer := llb.OCILayout("docker.io/library/greet-layer@"+img.IndexDigest.String(),
				llb.OCIStore("", "greet-layout"), llb.Platform(p))
			out := runFunctionImage(t, ctx, bk, env.Rootfs[a], p, layer, map[string]content.Store{"greet-layout": store})
			checkGreet(t, out, want)
		})
	}
}

func init() {
	// containerd's local content store warns about fsverity on every open.
	logrus.SetLevel(logrus.ErrorLevel)
}

func checkGreet(t *testing.T, out, arch string) {
	t.Helper()
	for _, want := range []string{"arch=" + arch + "\n", `{"hello":"lambda"}` + "\n", "extension ok\n", "libjansson-"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// runFunctionImage builds, with LLB, what this Dockerfile says, and returns what
// its RUN step printed:
//
//	FROM <test rootfs of the platform>
//	COPY --from=<layer> /opt /opt
//	ENV PATH=<Lambda's> LD_LIBRARY_PATH=<Lambda's>
//	RUN uname -m; greet lambda; ...
func runFunctionImage(t *testing.T, ctx context.Context, bk *client.Client, rootfs string, p ocispecs.Platform, layer llb.State, stores map[string]content.Store) string {
	t.Helper()
	name := "rootfs-" + p.Architecture
	base := llb.Scratch().File(llb.Copy(
		llb.Local(name, llb.SharedKeyHint("ociimage-test-"+rootfs), llb.ExcludePatterns([]string{"proc/*", "sys/*", "dev/*"})),
		"/", "/", &llb.CopyInfo{CopyDirContentsOnly: true}), llb.WithCustomName("rootfs "+rootfs))
	fn := base.File(llb.Copy(layer, "/opt", "/opt", &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}),
		llb.WithCustomName("COPY --from=layer /opt /opt"))
	script := `set -e
echo "arch=$(uname -m)"
greet lambda
test -x /opt/extensions/greet-extension && echo extension ok
ls /opt/lib
`
	run := fn.Platform(p).Run(
		llb.Args([]string{"/bin/sh", "-c", "(" + script + ") >/out/output 2>&1; echo $? >/out/status"}),
		llb.AddEnv("PATH", lambdatest.Path), llb.AddEnv("LD_LIBRARY_PATH", lambdatest.LDLibraryPath),
		llb.IgnoreCache, llb.WithCustomName("RUN greet ("+p.Architecture+")"))
	out := run.AddMount("/out", llb.Scratch())
	def, err := out.Marshal(ctx, llb.Platform(p))
	if err != nil {
		t.Fatal(err)
	}
	rfs, err := fsutil.NewFS(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	rfs, err = fsutil.NewFilterFS(rfs, &fsutil.FilterOpt{Map: func(_ string, st *fstypes.Stat) fsutil.MapResult {
		st.Uid, st.Gid = 0, 0
		return fsutil.MapResultKeep
	}})
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	ch := make(chan *client.SolveStatus)
	go func() {
		for range ch {
		}
	}()
	_, err = bk.Solve(ctx, def, client.SolveOpt{
		Exports:     []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: dest}},
		LocalMounts: map[string]fsutil.FS{name: rfs},
		OCIStores:   stores,
	}, ch)
	if err != nil {
		t.Fatalf("function image build (%s): %v", p.Architecture, err)
	}
	b, _ := os.ReadFile(filepath.Join(dest, "output"))
	st, _ := os.ReadFile(filepath.Join(dest, "status"))
	if s := strings.TrimSpace(string(st)); s != "0" {
		t.Fatalf("RUN step exited %s:\n%s", s, b)
	}
	t.Logf("%s: %s", p.Architecture, b)
	return string(b)
}
