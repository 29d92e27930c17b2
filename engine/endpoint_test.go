package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/connhelper"

	"github.com/layerpack/layerpack/lambda"
)

func TestCheckAddr(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"unix:///run/buildkit/buildkitd.sock", ""},
		{"tcp://127.0.0.1:1234", ""},
		{"ssh://build@arm-host", ""},
		{"ssh://build@arm-host:2222/run/buildkit/buildkitd.sock", ""},
		{"docker-container://buildx_buildkit_builder0", ""},
		{"docker-container://buildkitd?context=remote", ""},
		{"podman-container://buildkitd", ""},
		{"kube-pod://buildkitd-0?namespace=ci&context=prod", ""},
		{"tcp://127.0.0.1", "tcp:// needs HOST:PORT"},
		{"unix://", "needs a socket path"},
		{"127.0.0.1:1234", `"127.0.0.1:1234" is not an address (want unix://, tcp://`},
		{"/run/buildkit/buildkitd.sock", "has no scheme"},
		{"foo://x", "unknown scheme foo:// (want unix://, tcp://, ssh://, docker-container://, podman-container://, kube-pod://)"},
		{"ssh://user:secret@host", "plain-text password is not supported"},
		{"ssh://host?x=1", "extra query after the host"},
		{"kube-pod://?namespace=ci", "url lacks pod name"},
		{"kube-pod://Bad_Pod", "unsupported pod name"},
		{"docker-container://", "url lacks container name"},
	} {
		err := checkAddr(c.addr)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("checkAddr(%q) = %v, want %q", c.addr, err, c.want)
		}
	}
}

func TestHelpersRegistered(t *testing.T) {
	for _, addr := range []string{"ssh://h", "docker-container://c", "podman-container://c", "kube-pod://p"} {
		h, err := connhelper.GetConnectionHelper(addr)
		if err != nil || h == nil || h.ContextDialer == nil {
			t.Errorf("%s: helper %v, %v", addr, h, err)
		}
	}
	// Plain addresses have no helper: gRPC dials them itself.
	for _, addr := range []string{"tcp://h:1", "unix:///s"} {
		if h, _ := connhelper.GetConnectionHelper(addr); h != nil {
			t.Errorf("%s has a helper", addr)
		}
	}
}

func TestDescribeAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"ssh://build@arm-host:2222/run/buildkit/buildkitd.sock": "ssh://build@arm-host:2222/run/buildkit/buildkitd.sock [ssh to build@arm-host port 2222, socket /run/buildkit/buildkitd.sock]",
		"ssh://arm-host": "ssh://arm-host [ssh to arm-host]",
		"docker-container://buildkitd?context=remote":   "docker-container://buildkitd?context=remote [docker container buildkitd, context remote]",
		"podman-container://buildkitd":                  "podman-container://buildkitd [podman container buildkitd]",
		"kube-pod://buildkitd-0?namespace=ci&context=k": "kube-pod://buildkitd-0?namespace=ci&context=k [kube-pod buildkitd-0, namespace ci, context k]",
		"tcp://h:1": "tcp://h:1",
	} {
		if got := describeAddr(addr); got != want {
			t.Errorf("describeAddr(%q)\n got %q\nwant %q", addr, got, want)
		}
	}
}

// Plan's endpoint line shows the scheme and target of a helper address, and
// TLS without file names; Open refuses bad addresses and TLS settings.
func TestOpenEndpoints(t *testing.T) {
	p := NewTestPKI(t)
	b, err := Open(context.Background(), Options{
		Addr:     "tcp://10.0.0.5:1234",
		TLS:      TLS{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey},
		ArchAddr: map[lambda.Arch]string{lambda.ARM64: "kube-pod://buildkitd-arm-0?namespace=ci"},
		Getenv:   func(string) string { return "" },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.Describe(lambda.X86_64); got != "tcp://10.0.0.5:1234 (mTLS) (linux/amd64)" {
		t.Errorf("x86_64: %q", got)
	}
	if got := b.Describe(lambda.ARM64); got != "kube-pod://buildkitd-arm-0?namespace=ci [kube-pod buildkitd-arm-0, namespace ci] (linux/arm64)" {
		t.Errorf("arm64: %q", got)
	}
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{Addr: "tcpp://x:1"}, `buildkit address "tcpp://x:1": unknown scheme tcpp://`},
		{Options{ArchAddr: map[lambda.Arch]string{lambda.ARM64: "ssh://"}}, `[buildkit.arm64] addr "ssh://": no host specified`},
		{Options{Addr: "tcp://x:1", TLS: TLS{Cert: p.ClientCert}}, "TLS settings ([buildkit] tls_*, --tls* flags): a client certificate needs both tls_cert and tls_key"},
		{Options{ArchAddr: map[lambda.Arch]string{lambda.ARM64: "ssh://h"}, ArchTLS: map[lambda.Arch]TLS{lambda.ARM64: {CA: p.CA}}},
			`[buildkit.arm64] TLS: tls_* settings need a tcp:// addr for arm64 (addr is "ssh://h")`},
	} {
		c.opts.Getenv = func(string) string { return "" }
		_, err := Open(context.Background(), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want %q", c.opts, err, c.want)
		}
	}
}
