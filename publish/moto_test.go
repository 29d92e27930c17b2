package publish

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/layerpack/layerpack/internal/testneed"
	lam "github.com/layerpack/layerpack/lambda"
)

// motoServer is moto's AWS emulator, one process for the package, started on the
// first test that needs it and reset before each test.
type motoServer struct {
	cmd  *exec.Cmd
	addr string // http://127.0.0.1:PORT
}

var (
	motoOnce sync.Once
	motoMain *motoServer
	motoErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if motoMain != nil {
		motoMain.stop()
	}
	os.Exit(code)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startMoto starts moto_server on port (0: a free one) and waits until it answers.
func startMoto(bin string, port int) (*motoServer, error) {
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	// The server must not see the tests' client settings (an empty AWS_CA_BUNDLE
	// breaks its own boto calls).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &motoServer{cmd: cmd, addr: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// A reset also answers only once the server is up; a fresh server answers
		// its first Lambda call with a 500 without it.
		resp, err := http.Post(s.addr+"/moto-api/reset", "", nil)
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("moto_server did not answer on %s within 30s: %s", s.addr, logBuf.String())
}

func (s *motoServer) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func (s *motoServer) reset(t *testing.T) {
	t.Helper()
	resp, err := http.Post(s.addr+"/moto-api/reset", "", nil)
	if err != nil {
		t.Fatalf("resetting moto: %v", err)
	}
	resp.Body.Close()
}

// moto returns the package's emulator, reset, with dummy credentials in the
// environment and AWS_ENDPOINT_URL pointing at it (the SDK reads it itself).
func moto(t *testing.T) *motoServer {
	t.Helper()
	bin := testneed.Env(t, "LAYERPACK_TEST_MOTO_SERVER")
	motoOnce.Do(func() { motoMain, motoErr = startMoto(bin, 0) })
	if motoErr != nil {
		t.Fatal(motoErr)
	}
	motoMain.reset(t)
	awsEnv(t, motoMain.addr)
	return motoMain
}

func awsEnv(t *testing.T, endpoint string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": "us-east-1", "AWS_PROFILE": "", "AWS_ENDPOINT_URL": endpoint,
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CA_BUNDLE": "", // the emulator is plain HTTP
	} {
		t.Setenv(k, v)
	}
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

var _ = aws.String
