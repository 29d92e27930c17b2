package ociimage

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/internal/registrytest"
)

// Against distribution's registry (docker-registry), the one most private
// registries run.
func TestRealRegistryPushPull(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the machine's
	r := writeSample(t, t.TempDir())
	ctx := context.Background()
	res, err := Push(ctx, r.Dir, r.IndexDigest, reg.Host+"/layers/hello:1", PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != 4 || reg.BlobUploads() != 4 {
		t.Errorf("first push: %d uploads counted, %d in the registry log; want 4\n%s", res.Uploaded, reg.BlobUploads(), reg.Log())
	}
	CheckRemote(t, ctx, r, res.Ref, PushOptions{})
	again, err := Push(ctx, r.Dir, r.IndexDigest, reg.Host+"/layers/hello:1", PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Uploaded != 0 || reg.BlobUploads() != 4 {
		t.Errorf("second push uploaded blobs: counted %d, registry log has %d uploads in all", again.Uploaded, reg.BlobUploads())
	}
}

// Credentials come from the Docker config (authn.DefaultKeychain); a registry that
// refuses them gives an error naming the registry and the reference.
func TestRealRegistryCredentials(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{Users: map[string]string{"ci": "s3cret-token"}})
	r := writeSample(t, t.TempDir())
	ctx := context.Background()
	ref := reg.Host + "/private/hello:1"
	dockerConfig := func(user, pass string) {
		dir := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, auth)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", dir)
	}

	t.Setenv("DOCKER_CONFIG", t.TempDir())
	_, err := Push(ctx, r.Dir, r.IndexDigest, ref, PushOptions{})
	checkRefused(t, "no credentials", err, reg.Host, ref)

	dockerConfig("ci", "wrong")
	_, err = Push(ctx, r.Dir, r.IndexDigest, ref, PushOptions{})
	checkRefused(t, "wrong password", err, reg.Host, ref)
	if err != nil && strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}

	dockerConfig("ci", "s3cret-token")
	res, err := Push(ctx, r.Dir, r.IndexDigest, ref, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != 4 {
		t.Errorf("uploaded %d blobs, want 4", res.Uploaded)
	}
	CheckRemote(t, ctx, r, res.Ref, PushOptions{})
}

func checkRefused(t *testing.T, what string, err error, host, ref string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: push succeeded", what)
	}
	for _, want := range []string{"registry " + host, ref, "credentials missing or refused", "401 Unauthorized"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q lacks %q", what, err, want)
		}
	}
}
