package engine

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/layerpack/layerpack/internal/testneed"
)

// selfSignedPEM makes a CA certificate named cn, as PEM.
func selfSignedPEM(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func derOf(t *testing.T, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	return b.Bytes
}

// keytoolList lists a PKCS#12 store with the JDK's keytool: its entry count and
// aliases. It skips when keytool is not on PATH.
func keytoolList(t *testing.T, store []byte) (int, []string) {
	t.Helper()
	kt, err := exec.LookPath("keytool")
	if err != nil {
		testneed.Missing(t, "keytool not on PATH")
	}
	f := filepath.Join(t.TempDir(), "store.p12")
	if err := os.WriteFile(f, store, 0o644); err != nil {
		t.Fatal(err)
	}
	// The store has no password; keytool -list wants one and any will do.
	out, err := exec.Command(kt, "-list", "-keystore", f, "-storetype", "PKCS12", "-storepass", "changeit").CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Your keystore contains (\d+) entr`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("keytool -list printed no count:\n%s", out)
	}
	var aliases []string
	for _, l := range strings.Split(string(out), "\n") {
		if a, _, ok := strings.Cut(l, ", "); ok && strings.HasSuffix(strings.TrimSpace(l), "trustedCertEntry,") {
			aliases = append(aliases, a)
		}
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n, aliases
}

func TestJavaTrustStore(t *testing.T) {
	a, b, c := selfSignedPEM(t, "Test CA A"), selfSignedPEM(t, "Test CA B"), selfSignedPEM(t, "Test CA A")
	garbage := "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
	key := "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
	// Comments, a block that is not a certificate, one that does not parse, a
	// duplicate, and two certificates with the same subject (c has a's name).
	bundle := slices.Concat([]byte("# host bundle\n"), a, []byte(garbage), b, []byte(key), a, []byte("\n# Test CA A, again\n"), c)

	start := time.Now()
	store, n, err := javaTrustStore("bundle.pem", bundle)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d certificates, %d bytes, %v", n, len(store), time.Since(start))
	if n != 3 {
		t.Errorf("count = %d, want 3 (a, b, c; garbage, key and the duplicate skipped)", n)
	}
	again, _, err := javaTrustStore("bundle.pem", bundle)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(store, again) {
		t.Error("the same bundle gave two different stores: BuildKit would see a new CA folder every run")
	}

	// Decoding checks every certBag carries Java's trusted-key-usage attribute.
	certs, err := pkcs12.DecodeTrustStore(store, "")
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for _, c := range certs {
		got = append(got, c.Raw)
	}
	if want := [][]byte{derOf(t, a), derOf(t, b), derOf(t, c)}; !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("store holds %d certificates, not a, b, c in bundle order", len(got))
	}

	// The JDK reads it: every certificate is a trusted entry, under its own
	// alias (two same-subject certificates must not collapse into one).
	count, aliases := keytoolList(t, store)
	if count != 3 || len(aliases) != 3 {
		t.Errorf("keytool lists %d entries, %d trusted (%q), want 3", count, len(aliases), aliases)
	}
}

func TestJavaTrustStoreEmpty(t *testing.T) {
	for name, bundle := range map[string]string{
		"empty":       "",
		"garbage":     "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
		"not PEM":     "hello\n",
		"only a key":  "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
		"broken PEM":  "-----BEGIN CERTIFICATE-----\n!!!\n",
		"binary junk": "\x00\xff\x30\x82",
	} {
		_, _, err := javaTrustStore("/etc/ssl/mine.pem", []byte(bundle))
		if err == nil || !strings.Contains(err.Error(), "/etc/ssl/mine.pem") {
			t.Errorf("%s bundle: err = %v, want an error naming the file", name, err)
		}
	}
}

// TestJavaTrustStoreHostBundle converts this machine's bundle, for scale.
func TestJavaTrustStoreHostBundle(t *testing.T) {
	dt, err := os.ReadFile(DefaultHostCABundle)
	if err != nil {
		testneed.Missing(t, err.Error())
	}
	start := time.Now()
	store, n, err := javaTrustStore(DefaultHostCABundle, dt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes of PEM -> %d certificates, %d-byte store in %v", DefaultHostCABundle, len(dt), n, len(store), time.Since(start))
	certs, err := pkcs12.DecodeTrustStore(store, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != n {
		t.Errorf("store decodes to %d certificates, want %d", len(certs), n)
	}
	if count, _ := keytoolList(t, store); count != n {
		t.Errorf("keytool lists %d entries, want %d", count, n)
	}
}

// hostCAFolder writes the bundle and its store once; an unusable bundle is an
// error naming it.
func TestHostCAFolder(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.pem")
	pemData := selfSignedPEM(t, "Folder CA")
	if err := os.WriteFile(bundle, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), Options{TrustHostCA: true, HostCABundle: bundle, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ca, err := b.hostCAFolder()
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(ca)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{hostCAStoreFile, hostCAFile}; !slices.Equal(names, want) { // sorted
		t.Errorf("CA folder holds %q, want %q", names, want)
	}
	if got, _ := os.ReadFile(filepath.Join(ca, hostCAFile)); !bytes.Equal(got, pemData) {
		t.Error("the bundle in the CA folder differs from the host's")
	}
	want, _, _ := javaTrustStore(bundle, pemData)
	if got, _ := os.ReadFile(filepath.Join(ca, hostCAStoreFile)); !bytes.Equal(got, want) {
		t.Error("the store in the CA folder is not the bundle's")
	}
	// Made once: a changed bundle does not change this run's folder.
	if err := os.WriteFile(bundle, selfSignedPEM(t, "Other CA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := b.hostCAFolder(); err != nil || again != ca {
		t.Errorf("second hostCAFolder = %q, %v; want %q", again, err, ca)
	}
	if got, _ := os.ReadFile(filepath.Join(ca, hostCAStoreFile)); !bytes.Equal(got, want) {
		t.Error("the store was made again")
	}

	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(context.Background(), Options{TrustHostCA: true, HostCABundle: empty, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if _, err := b2.hostCAFolder(); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty bundle: err = %v, want one naming %s", err, empty)
	}
}

// TestJavaTrustStoreWithJDK runs a Java program fetching from Maven Central
// with the trust store given the way steps get it (JAVA_TOOL_OPTIONS): it must
// succeed with a store made from the host bundle (which holds the CA of any
// TLS-intercepting proxy in the way) and fail the PKIX check with a store of
// one unrelated CA. It needs java (JDK 11+ runs a source file) and the network.
func TestJavaTrustStoreWithJDK(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		testneed.Missing(t, "java not on PATH")
	}
	hostBundle := os.Getenv("SSL_CERT_FILE")
	if hostBundle == "" {
		hostBundle = DefaultHostCABundle
	}
	dt, err := os.ReadFile(hostBundle)
	if err != nil {
		testneed.Missing(t, fmt.Sprintf("no host CA bundle: %v", err))
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "Fetch.java")
	if err := os.WriteFile(src, []byte(fetchJava), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name string, bundle []byte) string {
		store, _, err := javaTrustStore(name, bundle)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name+".p12")
		if err := os.WriteFile(f, store, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	host := write("host", dt)
	other := write("other", selfSignedPEM(t, "Unrelated CA"))

	// A metadata file that exists: the proxy answers 404 for folder listings.
	const url = "https://repo.maven.apache.org/maven2/junit/junit/maven-metadata.xml"
	run := func(toolOptions string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, java, src, url)
		// The step's own options, with the store at its host path, and no other
		// options from the host's environment.
		cmd.Env = []string{"JAVA_TOOL_OPTIONS=" + toolOptions}
		for _, e := range os.Environ() {
			if k, _, _ := strings.Cut(e, "="); k != "JAVA_TOOL_OPTIONS" && k != "JDK_JAVA_OPTIONS" && k != "_JAVA_OPTIONS" {
				cmd.Env = append(cmd.Env, e)
			}
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("java Fetch.java with %s: %v, %v\n%s", toolOptions, time.Since(start).Round(time.Millisecond), err, firstResult(string(out)))
		return string(out), err
	}
	opts := func(store string) string { return strings.ReplaceAll(javaTrustOptions, HostCAStorePath, store) }

	if out, err := run(opts(host)); err != nil || !strings.Contains(out, "status 200") {
		t.Errorf("fetch with the host bundle's store: %v\n%s", err, out)
	}
	// An image that sets the conventional password: the password-less store
	// still reads.
	if out, err := run("-Djavax.net.ssl.trustStorePassword=changeit " + opts(host)); err != nil || !strings.Contains(out, "status 200") {
		t.Errorf("fetch with a trustStorePassword set: %v\n%s", err, out)
	}
	out, err := run(opts(other))
	if err == nil || !strings.Contains(out, "PKIX path building failed") {
		t.Errorf("fetch with a store lacking the proxy's CA: %v, want a PKIX error:\n%s", err, out)
	}
}

// firstResult is the status line or the exception's first line of Fetch.java.
func firstResult(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "status ") || strings.Contains(l, "Exception") {
			return l
		}
	}
	return out
}

// fetchJava prints the HTTP status of args[0], or fails with the TLS error.
const fetchJava = `import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpClient c = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30)).build();
        HttpRequest r = HttpRequest.newBuilder(URI.create(args[0])).timeout(Duration.ofSeconds(60)).build();
        System.out.println("status " + c.send(r, HttpResponse.BodyHandlers.discarding()).statusCode());
    }
}
`
