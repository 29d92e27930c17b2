package ociimage

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/layerpack/layerpack/lambda"
)

// The in-process registry of go-containerregistry; the real one (distribution) is
// in registry_real_test.go.
func TestPushPullInProcess(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r := writeSample(t, t.TempDir())
	ctx := context.Background()
	opts := PushOptions{Keychain: authn.NewMultiKeychain()}
	ref := host + "/layers/hello:v1"
	res, err := Push(ctx, r.Dir, r.IndexDigest, ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	// 2 layers + 2 configs; manifests are not blobs.
	if res.Uploaded != 4 || res.Present != 0 {
		t.Errorf("first push: uploaded %d, present %d; want 4, 0", res.Uploaded, res.Present)
	}
	if res.Ref != host+"/layers/hello@"+r.IndexDigest.String() {
		t.Errorf("ref = %s", res.Ref)
	}
	CheckRemote(t, ctx, r, res.Ref, opts)
	again, err := Push(ctx, r.Dir, r.IndexDigest, ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Uploaded != 0 || again.Present == 0 {
		t.Errorf("second push: uploaded %d, present %d; want 0, > 0", again.Uploaded, again.Present)
	}
	// Another image whose x86_64 zip is the same: only the arm64 layer and config
	// are new.
	dir := t.TempDir()
	amd := makeZip(t, dir, "hello-x86_64.zip", sample)
	arm := makeZip(t, dir, "hello-arm64.zip", append(append([]zent(nil), sample...), zent{"arm", "changed\n", 0o644}))
	r2, err := WriteLayout(filepath.Join(dir, "hello.oci"), []Source{{Arch: lambda.X86_64, Zip: amd}, {Arch: lambda.ARM64, Zip: arm}}, sampleMeta, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Manifests[0].Digest != r.Manifests[0].Digest {
		t.Fatal("the x86_64 image changed")
	}
	third, err := Push(ctx, r2.Dir, r2.IndexDigest, host+"/layers/hello:v2", opts)
	if err != nil {
		t.Fatal(err)
	}
	if third.Uploaded != 2 {
		t.Errorf("push of an image sharing x86_64: uploaded %d blobs, want 2", third.Uploaded)
	}
	CheckRemote(t, ctx, r2, third.Ref, opts)
}

// CheckRemote pulls the index by digest and compares every manifest and blob with
// the layout's bytes.
func CheckRemote(t *testing.T, ctx context.Context, r *Result, ref string, o PushOptions) {
	t.Helper()
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(d, RemoteOptions(ctx, o)...)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != string(readBlob(t, r.Dir, r.IndexDigest)) {
		t.Fatalf("pulled index differs from the layout's")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(r.Manifests) {
		t.Fatalf("pulled %d manifests, want %d", len(im.Manifests), len(r.Manifests))
	}
	for i, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		mraw, _ := img.RawManifest()
		if m.Digest.String() != r.Manifests[i].Digest.String() || string(mraw) != string(readBlob(t, r.Dir, r.Manifests[i].Digest)) {
			t.Errorf("manifest %d differs", i)
		}
		craw, _ := img.RawConfigFile()
		cn, _ := img.ConfigName()
		if string(craw) != string(readBlob(t, r.Dir, digest.Digest(cn.String()))) {
			t.Errorf("config %d differs", i)
		}
		ls, _ := img.Layers()
		if len(ls) != 1 {
			t.Fatalf("image %d has %d layers", i, len(ls))
		}
		rc, err := ls[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != string(readBlob(t, r.Dir, r.Manifests[i].LayerDigest)) {
			t.Errorf("layer %d differs", i)
		}
	}
}

// Plain HTTP to a registry that is not on this machine needs --insecure; the error
// names the registry and the reference.
func TestPlainHTTPRefusedOffLoopback(t *testing.T) {
	r := writeSample(t, t.TempDir())
	var sawHTTP bool
	// HTTPS "fails" at once, so go-containerregistry falls back to HTTP (it does
	// for private addresses), which the guard must stop before anything is sent.
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Scheme == "http" {
			sawHTTP = true
		}
		return nil, errors.New("no network in this test")
	})
	_, err := Push(context.Background(), r.Dir, r.IndexDigest, "10.1.2.3:5000/layers/hello:v1", PushOptions{Transport: base, Keychain: authn.NewMultiKeychain()})
	if err == nil {
		t.Fatal("push succeeded")
	}
	for _, want := range []string{"registry 10.1.2.3:5000", "10.1.2.3:5000/layers/hello:v1", "plain HTTP to 10.1.2.3:5000 refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if sawHTTP {
		t.Error("a plain HTTP request reached the transport")
	}
}

func TestIsLoopback(t *testing.T) {
	for h, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true, "127.3.4.5": true,
		"10.0.0.1:5000": false, "example.com": false, "localhost.example.com:5000": false,
	} {
		if IsLoopback(h) != want {
			t.Errorf("IsLoopback(%q) = %v", h, !want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
