package ruby

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/lambdatest"
)

// gemServer is a static gem index (`gem generate_index`) over HTTPS with a
// certificate of its own CA, behind HTTP basic auth. It has no compact index
// (/versions) and no dependency API, so Bundler reads the full index.
type gemServer struct {
	*httptest.Server
	caPEM []byte
	user  string
	pass  string

	mu       sync.Mutex
	gems     []string // .gem files served to authorised requests
	rejected int      // requests with missing or wrong credentials
}

func newGemServer(t *testing.T, index, user, pass string) *gemServer {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "layerpack test gem CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	s := &gemServer{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), user: user, pass: pass}
	files := http.FileServer(http.Dir(index))
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.user || p != s.pass {
			s.mu.Lock()
			s.rejected++
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="gems"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/gems/") {
			s.mu.Lock()
			s.gems = append(s.gems, strings.TrimPrefix(r.URL.Path, "/gems/"))
			s.mu.Unlock()
		}
		files.ServeHTTP(w, r)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the no-CA case's failed handshakes
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	// Any address of the host would do for BuildKit's host-network steps; the
	// loopback one keeps the server off the network.
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *gemServer) take() (gems []string, rejected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gems, rejected = s.gems, s.rejected
	s.gems, s.rejected = nil, 0
	slices.Sort(gems)
	return gems, rejected
}

// layerpackBinary builds the command, so the test sees what a user sees:
// flags, the engine's CA handling, plan output and error messages.
func layerpackBinary(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "layerpack")
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/layerpack")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// A Gemfile whose source is a name no server has, host Bundler's mirror setting
// pointing it at a local HTTPS gem server, and the credentials for that server
// in a BUNDLE_<HOST> variable: bundle install in the build container reaches
// the server through the mirror with the credentials, trusting its CA only as
// the host's CA bundle; the credentials appear in nothing layerpack writes or
// prints. arm64 (QEMU) runs the success case only.
func TestRegistryBuildKit(t *testing.T) {
	env := lambdatest.Need(t)
	for _, c := range []string{"gem", "bundle"} {
		if _, err := exec.LookPath(c); err != nil {
			testneed.Missing(t, fmt.Sprintf("needs %s on the host to make the gem index (apt-get install ruby bundler)", c))
		}
	}
	start := time.Now()
	root := t.TempDir()
	index := filepath.Join(root, "index")
	if out, err := exec.Command("sh", filepath.Join(fixtures, "build-gems.sh"), filepath.Join(index, "gems")).CombinedOutput(); err != nil {
		t.Fatalf("build-gems.sh: %v\n%s", err, out)
	}
	if out, err := exec.Command("gem", "generate_index", "--silent", "-d", index).CombinedOutput(); err != nil {
		t.Fatalf("gem generate_index: %v\n%s", err, out)
	}
	tokenBytes := make([]byte, 12)
	rand.Read(tokenBytes)
	token := "LPTOKEN" + hex.EncodeToString(tokenBytes)
	wrong := "LPWRONG" + token[7:19]
	srv := newGemServer(t, index, "layerpack", token)
	mirror := srv.URL + "/"
	bin := layerpackBinary(t)
	t.Logf("gem index, server and layerpack binary: %s", time.Since(start).Round(time.Millisecond))

	proj := filepath.Join(root, "project")
	home := filepath.Join(root, "home")
	tmp := filepath.Join(root, "tmp")
	for _, d := range []string{filepath.Join(proj, "app"), filepath.Join(proj, "images"), home, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"Gemfile", "Gemfile.lock"} {
		b, err := os.ReadFile(filepath.Join(fixtures, "registry", f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(proj, "app", f), string(b))
	}
	for _, a := range lambda.Arches {
		if err := os.Symlink(env.Rootfs[a], filepath.Join(proj, "images", string(a))); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(proj, "layerpack.toml"), `[layer.gems]
compatible_runtimes = ["ruby3.3"]
architectures = ["x86_64", "arm64"]
image = "rootfs://images/{arch}"
[layer.gems.ruby]
gemfile = "app/Gemfile"
`)
	caFile := filepath.Join(root, "test-ca.pem")
	write(t, caFile, string(srv.caPEM))
	base := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + tmp,
		"XDG_CACHE_HOME=" + filepath.Join(root, "cache"), "BUILDKIT_HOST=" + env.Addr,
		"SSL_CERT_FILE=" + caFile, TestABIEnv + "=3.1.0",
	}
	// The mirror, written by host Bundler itself into the user config.
	cfgCmd := exec.Command("bundle", "config", "set", "--global", "mirror.https://gems.layerpack.test", mirror)
	cfgCmd.Dir, cfgCmd.Env = proj, base
	if out, err := cfgCmd.CombinedOutput(); err != nil {
		t.Fatalf("bundle config: %v\n%s", err, out)
	}
	creds := "BUNDLE_127__0__0__1=layerpack:" + token

	var outputs bytes.Buffer // everything layerpack printed
	run := func(extraEnv []string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = proj, append(slices.Clone(base), extraEnv...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		begin := time.Now()
		err := cmd.Run()
		t.Logf("layerpack %s: %s", strings.Join(args, " "), time.Since(begin).Round(time.Millisecond))
		outputs.Write(out.Bytes())
		return out.String(), err
	}

	t.Run("plan", func(t *testing.T) {
		out, err := run([]string{creds}, "plan")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{
			"gem source https://gems.layerpack.test/: mirror " + mirror + " (BUNDLE_MIRROR__HTTPS://GEMS__LAYERPACK__TEST/ in " + filepath.Join(home, ".bundle", "config") + ")",
			"credentials for 127.0.0.1 from the BUNDLE_127__0__0__1 environment variable (a build secret, not shown)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("plan lacks %q:\n%s", want, out)
			}
		}
		js, err := run([]string{creds}, "plan", "--json")
		if err != nil {
			t.Fatalf("%v\n%s", err, js)
		}
		var items []struct {
			Steps []string `json:"steps"`
		}
		if err := json.Unmarshal([]byte(js), &items); err != nil || len(items) != 2 {
			t.Fatalf("plan --json: %v\n%s", err, js)
		}
		if !slices.ContainsFunc(items[0].Steps, func(s string) bool { return strings.Contains(s, "mirror "+mirror) }) {
			t.Errorf("plan --json steps lack the mirror: %q", items[0].Steps)
		}
	})

	t.Run("no host CA", func(t *testing.T) {
		out, err := run([]string{creds}, "build", "--arch", "x86_64", "--no-cache", "--progress", "quiet", "--no-trust-host-ca")
		want := "layer gems (x86_64): ruby builder: bundle install could not verify the TLS certificate of " + mirror +
			": the build container was not given the host's CA bundle (--no-trust-host-ca, or [buildkit] trust_host_ca = false)"
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("err %v, output:\n%s\nwant it to contain:\n%s", err, out, want)
		}
		if gems, _ := srv.take(); len(gems) != 0 {
			t.Errorf("gems fetched without trusting the server: %q", gems)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		out, err := run([]string{"BUNDLE_127__0__0__1=layerpack:" + wrong}, "build", "--arch", "x86_64", "--no-cache", "--progress", "quiet")
		want := "layer gems (x86_64): ruby builder: the gem server " + strings.TrimPrefix(srv.URL, "https://") +
			` refused the credentials from the BUNDLE_127__0__0__1 environment variable (HTTP 401, Bundler: "Bad username or password")`
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("err %v, output:\n%s\nwant it to contain:\n%s", err, out, want)
		}
		if _, rejected := srv.take(); rejected == 0 {
			t.Errorf("the server saw no request with the wrong credentials: was the mirror used?")
		}
	})

	t.Run("both architectures", func(t *testing.T) {
		out, err := run([]string{creds}, "build", "--no-cache", "--progress", "plain")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// The lockfile says BUNDLED WITH 2.3.15, the image has 2.3.7: the image's
		// Bundler must not fetch the other one into the layer (BUNDLER_VERSION).
		if strings.Contains(out, "lockfile was generated with") {
			t.Errorf("Bundler tried to switch to the lockfile's version:\n%s", out)
		}
		gems, rejected := srv.take()
		wantGems := []string{"lp_plat-2.0.0-aarch64-linux.gem", "lp_plat-2.0.0-x86_64-linux.gem", "lp_pure-1.2.0.gem", "lp_pure-1.2.0.gem"}
		if !slices.Equal(gems, wantGems) || rejected != 0 {
			t.Errorf("the server sent %q (and rejected %d requests), want %q", gems, rejected, wantGems)
		}
		for _, a := range lambda.Arches {
			zipPath := filepath.Join(proj, "dist", "gems-"+string(a)+".zip")
			dir := filepath.Join(root, "unzipped", string(a))
			if err := lambdatest.Unzip(zipPath, dir); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{
				"ruby/gems/3.3.0/specifications/lp_pure-1.2.0.gemspec",
				"ruby/gems/3.3.0/specifications/lp_plat-2.0.0-" + a.GNU() + "-linux.gemspec",
				"ruby/gems/3.3.0/gems/lp_plat-2.0.0-" + a.GNU() + "-linux/lib/lp_plat/platform.txt",
			} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s: %v", a, err)
				}
			}
		}
		got := env.Run(t, lambda.X86_64, filepath.Join(proj, "dist", "gems-x86_64.zip"),
			`GEM_PATH=/opt/ruby/gems/3.3.0 ruby -e 'require "lp_plat"; require "lp_pure"; puts LpPlat::BUILT_FOR'`, nil)
		if got != "x86_64-linux\n" {
			t.Errorf("the layer printed %q", got)
		}
	})

	// The token is nowhere: not in what layerpack printed, not in any file under
	// the test's folder (project, dist, unzipped layers, manifest, layerpack's
	// cache with its work folders, TMPDIR, HOME).
	for _, secret := range []string{token, wrong} {
		if bytes.Contains(outputs.Bytes(), []byte(secret)) {
			t.Errorf("layerpack printed the credential %s", secret)
		}
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, secret := range []string{token, wrong} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains the credential %s", p, secret)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("total: %s", time.Since(start).Round(time.Millisecond))
}
