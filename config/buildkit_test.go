package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/lambda"
)

func TestBuildKitTLSAndCache(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"certs/ca.pem", "certs/cert.pem", "certs/key.pem", "arm/ca.pem", "arm/cert.pem", "arm/key.pem"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := `[buildkit]
addr = "tcp://buildkit.ci:1234"
tls_ca = "certs/ca.pem"
tls_cert = "certs/cert.pem"
tls_key = "` + filepath.Join(dir, "certs/key.pem") + `"
tls_server_name = "buildkit.internal"
cache_from = ["type=registry,ref=registry.ci/cache/layers"]
cache_to = ["type=registry,ref=registry.ci/cache/layers,mode=max"]
[buildkit.arm64]
addr = "tcp://arm.ci:1234"
tls_ca = "arm/ca.pem"
tls_cert = "arm/cert.pem"
tls_key = "arm/key.pem"
[layer.a]
compatible_runtimes = ["provided.al2023"]
[[layer.a.files]]
src = "certs"
`
	f, err := Parse("layerpack.toml", dir, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := BuildKit{
		Addr:      "tcp://buildkit.ci:1234",
		ArchAddr:  map[lambda.Arch]string{lambda.ARM64: "tcp://arm.ci:1234"},
		TLS:       TLS{CA: filepath.Join(dir, "certs/ca.pem"), Cert: filepath.Join(dir, "certs/cert.pem"), Key: filepath.Join(dir, "certs/key.pem"), ServerName: "buildkit.internal"},
		ArchTLS:   map[lambda.Arch]TLS{lambda.ARM64: {CA: filepath.Join(dir, "arm/ca.pem"), Cert: filepath.Join(dir, "arm/cert.pem"), Key: filepath.Join(dir, "arm/key.pem")}},
		CacheFrom: []string{"type=registry,ref=registry.ci/cache/layers"},
		CacheTo:   []string{"type=registry,ref=registry.ci/cache/layers,mode=max"},
	}
	if !reflect.DeepEqual(f.BuildKit, want) {
		t.Errorf("got  %+v\nwant %+v", f.BuildKit, want)
	}
}

func TestBuildKitTLSErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `[buildkit]
tls_ca = "missing.pem"
tls_cert = "cert.pem"
tls_verify = true
[buildkit.x86_64]
tls_key = "."
[layer.a]
compatible_runtimes = ["provided.al2023"]
[[layer.a.files]]
src = "cert.pem"
`
	_, err := Parse("l.toml", dir, []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"l.toml:2: buildkit.tls_ca: " + filepath.Join(dir, "missing.pem") + " does not exist or cannot be read",
		"l.toml:3: buildkit.tls_cert: needs tls_key beside it (a client certificate and its key)",
		"l.toml:4: buildkit.tls_verify: unknown key",
		"l.toml:6: buildkit.x86_64.tls_key: " + dir + " is not a file",
		"l.toml:6: buildkit.x86_64.tls_key: needs tls_cert beside it",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%s", want, err)
		}
	}
}
