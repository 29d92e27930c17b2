package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/ociindex"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/layerpack/layerpack/lambda"
)

func TestParseCacheOptions(t *testing.T) {
	got, err := ParseCacheOptions("--cache-to", []string{"type=local,dest=/tmp/c,mode=max", `type=registry,"ref=example.com/cache:x,y"`})
	if err != nil {
		t.Fatal(err)
	}
	want := []client.CacheOptionsEntry{
		{Type: "local", Attrs: map[string]string{"dest": "/tmp/c", "mode": "max"}},
		{Type: "registry", Attrs: map[string]string{"ref": "example.com/cache:x,y"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got, err = ParseCacheOptions("--cache-from", []string{"type=local,src=rel"})
	if err != nil || !filepath.IsAbs(got[0].Attrs["src"]) {
		t.Errorf("relative src not made absolute: %+v, %v", got, err)
	}
	for spec, want := range map[string]string{
		"dest=/x":          `--cache-to "dest=/x": no type= (local, registry, s3, gha, azblob, inline)`,
		"type=local":       `--cache-to "type=local": type=local needs dest=DIR`,
		"type=local,/tmp/": `--cache-to "type=local,/tmp/": "/tmp/" is not key=value`,
	} {
		if _, err := ParseCacheOptions("--cache-to", []string{spec}); err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", spec, err, want)
		}
	}
}

func TestCacheFor(t *testing.T) {
	dir := t.TempDir()
	tag := stepCacheTag("compile", lambda.ARM64)
	if tag != stepCacheTag("compile", lambda.ARM64) || tag == stepCacheTag("compile", lambda.X86_64) {
		t.Fatal("stepCacheTag is not a function of name and arch")
	}
	imports := []client.CacheOptionsEntry{
		{Type: "local", Attrs: map[string]string{"src": dir}},
		{Type: "registry", Attrs: map[string]string{"ref": "r"}},
	}
	exports := []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"dest": dir}}}

	// No cache exported yet: the local import is dropped, not an error.
	im, ex := cacheFor(imports, exports, tag)
	if len(im) != 1 || im[0].Type != "registry" {
		t.Errorf("imports = %+v", im)
	}
	if ex[0].Attrs["tag"] != tag || exports[0].Attrs["tag"] != "" {
		t.Errorf("export tag = %q (original %q)", ex[0].Attrs["tag"], exports[0].Attrs["tag"])
	}

	// Once the folder has a cache for the tag, the import names its digest.
	d := digest.FromString("cache manifest")
	if err := ociindex.NewStoreIndex(dir).Put(ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageIndex, Digest: d, Size: 1}, ociindex.Tag(tag)); err != nil {
		t.Fatal(err)
	}
	im, _ = cacheFor(imports, exports, tag)
	if len(im) != 2 || im[0].Attrs["digest"] != d.String() || imports[0].Attrs["digest"] != "" {
		t.Errorf("imports = %+v (original %+v)", im, imports[0])
	}
	// Another step's tag finds nothing.
	im, _ = cacheFor(imports, exports, stepCacheTag("other", lambda.ARM64))
	if len(im) != 1 {
		t.Errorf("imports for another step = %+v", im)
	}
}

func TestLogTailAndStepError(t *testing.T) {
	tail := newLogTail(3)
	exec, other := digest.FromString("exec"), digest.FromString("other")
	t0 := time.Unix(1700000000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tail.add(&client.SolveStatus{Logs: []*client.VertexLog{
		{Vertex: other, Stream: 1, Data: []byte("noise\n"), Timestamp: at(0)},
		{Vertex: exec, Stream: 2, Data: []byte("err1\n"), Timestamp: at(5)},
		{Vertex: exec, Stream: 1, Data: []byte("zero\none\ntwo\nthr"), Timestamp: at(1)}, // read earlier, delivered later
	}})
	tail.add(&client.SolveStatus{
		Vertexes: []*client.Vertex{{Digest: exec, Error: "process did not complete successfully: exit code: 2"}},
		Logs: []*client.VertexLog{
			{Vertex: exec, Stream: 1, Data: []byte("ee\n"), Timestamp: at(2)},
			{Vertex: exec, Stream: 2, Data: []byte("err2"), Timestamp: at(6)},
			{Vertex: other, Stream: 1, Data: []byte("late noise\n"), Timestamp: at(9)},
		},
	})
	if got, want := tail.failed(), []string{"three", "err1", "err2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failed() = %q, want %q", got, want)
	}
	// The daemon read stderr a moment before the stdout lines written before it:
	// the error line still comes last, and is not crowded out.
	tail2 := newLogTail(3)
	tail2.add(&client.SolveStatus{Logs: []*client.VertexLog{
		{Vertex: exec, Stream: 2, Data: []byte("the error\n"), Timestamp: at(100)},
		{Vertex: exec, Stream: 1, Data: []byte("a\nb\nc\nd\n"), Timestamp: at(101)},
	}})
	if got, want := tail2.failed(), []string{"c", "d", "the error"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failed() = %q, want %q", got, want)
	}

	s := &Step{Name: "compile hello", Arch: lambda.ARM64}
	err := newStepError(s, fmt.Errorf("failed to solve: %w", &gatewaypb.ExitError{ExitCode: 2}), tail)
	want := `step "compile hello" (arm64) failed with exit code 2; last lines of its output:
  | three
  | err1
  | err2`
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	var ee *gatewaypb.ExitError
	if !errors.As(err, &ee) {
		t.Error("StepError does not unwrap to BuildKit's error")
	}
	// Without a typed error the code is read from the message; without logs the
	// cause is BuildKit's message.
	err = newStepError(s, errors.New(`process "/bin/sh -e -c x" did not complete successfully: exit code: 127`), newLogTail(3))
	if err.ExitCode != 127 {
		t.Errorf("exit code = %d", err.ExitCode)
	}
	err = newStepError(s, errors.New("failed to compute cache key: rootfs: not found"), newLogTail(3))
	if want := `step "compile hello" (arm64) failed: failed to compute cache key: rootfs: not found`; err.Error() != want {
		t.Errorf("error = %s, want %s", err, want)
	}
}

// writeLayout writes an OCI layout with one image per arch under an index tagged tag.
func writeLayout(t *testing.T, dir, tag string, arches ...string) digest.Digest {
	t.Helper()
	blob := func(v any) ocispecs.Descriptor {
		dt, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(dt)
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, dt, 0o644); err != nil {
			t.Fatal(err)
		}
		return ocispecs.Descriptor{Digest: d, Size: int64(len(dt))}
	}
	var idx ocispecs.Index
	idx.SchemaVersion = 2
	for _, a := range arches {
		cfg := blob(ocispecs.Image{Platform: ocispecs.Platform{OS: "linux", Architecture: a}, Config: ocispecs.ImageConfig{Env: []string{"PATH=/opt/" + a + "/bin"}}})
		cfg.MediaType = ocispecs.MediaTypeImageConfig
		m := blob(ocispecs.Manifest{MediaType: ocispecs.MediaTypeImageManifest, Config: cfg})
		m.MediaType = ocispecs.MediaTypeImageManifest
		m.Platform = &ocispecs.Platform{OS: "linux", Architecture: a}
		idx.Manifests = append(idx.Manifests, m)
	}
	idx.MediaType = ocispecs.MediaTypeImageIndex
	top := blob(idx)
	top.MediaType = ocispecs.MediaTypeImageIndex
	top.Annotations = map[string]string{ocispecs.AnnotationRefName: tag}
	outer := ocispecs.Index{Manifests: []ocispecs.Descriptor{top}}
	outer.SchemaVersion = 2
	dt, _ := json.Marshal(outer)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), dt, 0o644); err != nil {
		t.Fatal(err)
	}
	return top.Digest
}

func TestOCILayout(t *testing.T) {
	dir := t.TempDir()
	top := writeLayout(t, dir, "v1", "amd64", "arm64")
	desc, err := ociLayoutDesc(dir, "v1")
	if err != nil || desc.Digest != top {
		t.Fatalf("ociLayoutDesc = %v, %v; want %s", desc.Digest, err, top)
	}
	if desc, err := ociLayoutDesc(dir, ""); err != nil || desc.Digest != top {
		t.Errorf("the only image without a tag: %v, %v", desc.Digest, err)
	}
	if _, err := ociLayoutDesc(dir, "v2"); err == nil || !strings.Contains(err.Error(), `no image tagged "v2" in index.json (tags: v1)`) {
		t.Errorf("missing tag: %v", err)
	}
	cfg, err := ociImageConfig(dir, desc, "arm64")
	if err != nil || !strings.Contains(string(cfg), "/opt/arm64/bin") {
		t.Errorf("config for arm64 = %s, %v", cfg, err)
	}
	b, _ := Open(context.Background(), Options{Getenv: func(string) string { return "" }})
	got, err := b.ImageDigest(context.Background(), "oci-layout://"+dir+":v1", lambda.ARM64)
	if err != nil || got != top.String() {
		t.Errorf("ImageDigest = %s, %v", got, err)
	}

	only := t.TempDir()
	writeLayout(t, only, "latest", "amd64")
	desc, _ = ociLayoutDesc(only, "")
	if _, err := ociImageConfig(only, desc, "arm64"); err == nil || !strings.Contains(err.Error(), "no linux/arm64 image in index") {
		t.Errorf("missing platform: %v", err)
	}

	// A step on the layout compiles to an oci-layout source with the image's ENV.
	s := &Step{Name: "s", Arch: lambda.ARM64, Image: "oci-layout://" + dir + ":v1", Script: "true", Output: "/out", Dest: t.TempDir()}
	req, err := compile(context.Background(), s, mustParse(t, s.Image), compileOpts{})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, req.def)
	id := "layerpack-oci-" + shortHash(dir)
	if want := "oci-layout://docker.io/library/" + id + "@" + top.String(); len(d.source) != 1 || d.source[0] != want {
		t.Errorf("sources = %q, want %s", d.source, want)
	}
	if req.oci[id] != dir {
		t.Errorf("oci stores = %v", req.oci)
	}
	if !reflect.DeepEqual(d.exec.Meta.Env, []string{"PATH=/opt/arm64/bin"}) {
		t.Errorf("env = %q", d.exec.Meta.Env)
	}
}

func TestRootfsFingerprint(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/lib/os-release", "ID=debian\nVERSION_ID=12\n")
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(root, "etc-os-release")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if err := os.Rename(filepath.Join(root, "etc-os-release"), filepath.Join(root, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	write("var/lib/dpkg/status", "Package: gcc\nVersion: 12\n")
	write("usr/bin/big", strings.Repeat("x", 1000)) // not part of the fingerprint

	f1, err := rootfsFingerprint(root)
	if err != nil || !strings.HasPrefix(f1, "sha256:") {
		t.Fatalf("fingerprint = %s, %v", f1, err)
	}
	write("usr/bin/big", "changed")
	if f, _ := rootfsFingerprint(root); f != f1 {
		t.Error("a file outside the package databases changed the fingerprint")
	}
	write("var/lib/dpkg/status", "Package: gcc\nVersion: 13\n")
	f2, _ := rootfsFingerprint(root)
	if f2 == f1 {
		t.Error("an upgrade did not change the fingerprint")
	}
	write("usr/lib/os-release", "ID=debian\nVERSION_ID=13\n") // through etc/os-release -> ../usr/lib/os-release
	if f, _ := rootfsFingerprint(root); f == f2 {
		t.Error("a new release (behind a symlink) did not change the fingerprint")
	}
	// An absolute link resolves inside the root, not on the host.
	os.Remove(filepath.Join(root, "etc/os-release"))
	if err := os.Symlink("/usr/lib/os-release", filepath.Join(root, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	if p, err := resolveInRoot(root, "etc/os-release"); err != nil || p != filepath.Join(root, "usr/lib/os-release") {
		t.Errorf("resolveInRoot = %s, %v", p, err)
	}
	if err := os.Symlink("../../../../../../etc/passwd", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if p, err := resolveInRoot(root, "escape"); err == nil {
		t.Errorf("resolveInRoot left the root: %s", p)
	}

	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "a"), []byte("a"), 0o644)
	if f, err := rootfsFingerprint(empty); err != nil || f == "" {
		t.Errorf("fallback fingerprint = %s, %v", f, err)
	}
	if _, err := rootfsFingerprint(filepath.Join(empty, "missing")); err == nil {
		t.Error("no error for a missing folder")
	}
}

// TestDockerHijack plays a Docker engine on a unix socket: /_ping, then the
// upgrade of /grpc and /session, and checks that bytes flow after the switch.
func TestDockerHijack(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan *http.Request, 4)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func(nc net.Conn) {
				defer nc.Close()
				br := bufio.NewReader(nc)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				seen <- req
				switch {
				case req.Method == http.MethodGet && req.URL.Path == "/_ping":
					io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
				case req.Method == http.MethodPost && req.Header.Get("Upgrade") == "h2c" && (req.URL.Path == "/grpc" || req.URL.Path == "/session"):
					// Switch, and send a first byte in the same write as the headers:
					// the client must not lose what its reader buffered.
					io.WriteString(nc, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n>")
					io.Copy(nc, br) // echo
				default:
					io.WriteString(nc, "HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\n\r\npage not found")
				}
			}(nc)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	if err := dockerPing(ctx, d.DialContext, sock); err != nil {
		t.Fatalf("ping: %v", err)
	}
	<-seen

	c, err := dockerHijack(ctx, sock, "/session", "h2c", map[string][]string{"X-Docker-Expose-Session-Uuid": {"abc"}})
	if err != nil {
		t.Fatal(err)
	}
	req := <-seen
	if req.Header.Get("X-Docker-Expose-Session-Uuid") != "abc" || req.Header.Get("Connection") != "Upgrade" {
		t.Errorf("headers = %v", req.Header)
	}
	io.WriteString(c, "hello")
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != ">hello" {
		t.Errorf("read %q, %v", buf, err)
	}
	c.Close()

	if _, err := dockerHijack(ctx, sock, "/nothing", "h2c", nil); err == nil || !strings.Contains(err.Error(), "404 Not Found: page not found") {
		t.Errorf("err = %v", err)
	}
	if _, err := dockerHijack(ctx, filepath.Join(t.TempDir(), "none.sock"), "/grpc", "h2c", nil); err == nil {
		t.Error("no error without a socket")
	}
}

func TestFakeExec(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "in.txt"), []byte("input"), 0o644)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cr3t"), 0o600)
	dest := filepath.Join(dir, "dest")
	f := &Fake{Exec: true}
	defer f.Close()
	s := &Step{
		Name: "copy", Arch: lambda.X86_64, Image: "rootfs:///unused",
		Script: `mkdir -p /out/python
cp /src/in.txt /out/python/
test "$(cat /run/secrets/t)" = s3cr3t
test "$TOKEN" = s3cr3t
echo "$SOURCE_DATE_EPOCH $GREETING" > /out/env
echo cached >> /root/.cache/pip/file`,
		Env:             map[string]string{"GREETING": "hi from /out"},
		Mounts:          []Mount{{Source: src, Target: "/src"}},
		Secrets:         []Secret{{ID: "t", Source: secret, Target: "/run/secrets/t", Env: "TOKEN"}},
		Caches:          []Cache{{Key: "pip", Target: "/root/.cache/pip"}},
		Output:          "/out",
		Dest:            dest,
		SourceDateEpoch: 1700000000,
	}
	if err := f.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if dt, _ := os.ReadFile(filepath.Join(dest, "python/in.txt")); string(dt) != "input" {
		t.Errorf("python/in.txt = %q", dt)
	}
	env, _ := os.ReadFile(filepath.Join(dest, "env"))
	if !strings.HasPrefix(string(env), "1700000000 hi from ") || strings.Contains(string(env), " /out") {
		t.Errorf("env = %q (Env values are rewritten too)", env)
	}
	if steps := f.Steps(); len(steps) != 1 || steps[0].Name != "copy" {
		t.Errorf("steps = %+v", steps)
	}

	s.Script = "echo first; echo the reason >&2; exit 3"
	err := f.Run(context.Background(), s)
	var se *StepError
	if !errors.As(err, &se) || se.ExitCode != 3 || !strings.Contains(err.Error(), "the reason") {
		t.Errorf("err = %v", err)
	}
}

func TestFakeHook(t *testing.T) {
	f := &Fake{Hook: func(_ context.Context, s *Step) error {
		return os.WriteFile(filepath.Join(s.Dest, "x"), []byte(s.Name), 0o644)
	}}
	dest := t.TempDir()
	if err := f.Run(context.Background(), &Step{Name: "n", Dest: dest}); err != nil {
		t.Fatal(err)
	}
	if dt, _ := os.ReadFile(filepath.Join(dest, "x")); string(dt) != "n" {
		t.Errorf("x = %q", dt)
	}
	d1, _ := f.ImageDigest(context.Background(), "img", lambda.X86_64)
	d2, _ := f.ImageDigest(context.Background(), "img", lambda.ARM64)
	if d1 == d2 || !strings.HasPrefix(d1, "sha256:") {
		t.Errorf("digests %s %s", d1, d2)
	}
	f.Digests = map[string]string{"img": "sha256:fixed"}
	if d, _ := f.ImageDigest(context.Background(), "img", lambda.X86_64); d != "sha256:fixed" {
		t.Errorf("digest = %s", d)
	}
	f.Close()
	if !f.Closed() || f.Run(context.Background(), &Step{}) == nil {
		t.Error("Run after Close")
	}
}
