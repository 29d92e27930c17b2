package publish

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/layerpack/layerpack/internal/mototest"
	lam "github.com/layerpack/layerpack/lambda"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mototest.Close()
	os.Exit(code)
}

// moto returns the package's emulator, reset, with dummy credentials in the
// environment and AWS_ENDPOINT_URL pointing at it (the SDK reads it itself).
func moto(t *testing.T) *mototest.Server {
	t.Helper()
	s := mototest.Shared(t)
	for k, v := range mototest.Env(s, t.TempDir()) {
		t.Setenv(k, v)
	}
	return s
}

// counter is an HTTP transport that counts the API calls made through it.
type counter struct {
	mu     sync.Mutex
	calls  map[string]int // "METHOD path-kind"
	total  atomic.Int64
	writes atomic.Int64
	before func(*http.Request) // optional hook
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.before != nil {
		c.before(r)
	}
	c.total.Add(1)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.writes.Add(1)
	}
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[r.Method+" "+kind(r.URL.Path)]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[k]
}

func (c *counter) reset() {
	c.mu.Lock()
	c.calls = nil
	c.mu.Unlock()
	c.total.Store(0)
	c.writes.Store(0)
}

// kind names a Lambda layer path by its shape: versions, version, policy,
// policy-statement; anything else (S3) is "s3".
func kind(p string) string {
	if !strings.HasPrefix(p, "/2018-10-31/layers/") {
		return "s3"
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch len(parts) {
	case 4:
		return "versions"
	case 5:
		return "version"
	case 6:
		return "policy"
	}
	return "policy-statement"
}

// opener is publish.AWS with the counting transport, as the command uses it.
func opener(t *testing.T, c *counter) Opener {
	t.Helper()
	open, region, err := AWS(context.Background(), "", awsconfig.WithHTTPClient(&http.Client{Transport: c}))
	if err != nil {
		t.Fatal(err)
	}
	if region != "us-east-1" {
		t.Fatalf("SDK region = %q, want AWS_REGION's us-east-1", region)
	}
	return open
}

// lambdaClient is a plain client for checking the emulator's state.
func lambdaClient(t *testing.T, region string) *lambda.Client {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region))
	if err != nil {
		t.Fatal(err)
	}
	return lambda.NewFromConfig(cfg)
}

// versions lists the layer's version numbers, newest first.
func versions(t *testing.T, region, name string) []int64 {
	t.Helper()
	out, err := lambdaClient(t, region).ListLayerVersions(context.Background(), &lambda.ListLayerVersionsInput{LayerName: &name})
	if err != nil {
		t.Fatal(err)
	}
	var vs []int64
	for _, v := range out.LayerVersions {
		vs = append(vs, v.Version)
	}
	return vs
}

// makeZip writes a zip with one file and returns the Zip to publish.
func makeZip(t *testing.T, dir, layer, arch, content string) Zip {
	t.Helper()
	path := filepath.Join(dir, layer+"-"+arch+".zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bin/hello", Method: zip.Store, Modified: time.Unix(315532800, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(content))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := lam.FileCodeSha256(path)
	if err != nil {
		t.Fatal(err)
	}
	return Zip{Layer: layer, Arch: arch, Path: path, CodeSha256: sum, Size: int64(buf.Len()),
		Name: layer + "-" + arch, Runtimes: []string{"provided.al2023"}, Description: "hello tools"}
}

func runOK(t *testing.T, zips []Zip, o Options) []Result {
	t.Helper()
	var out strings.Builder
	o.Out = &out
	res, err := Run(context.Background(), zips, o)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}
