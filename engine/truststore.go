package engine

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// HostCAStorePath is where the host's CA bundle, converted to a PKCS#12 trust
// store, appears in every step when Options.TrustHostCA is set. JVMs do not read
// PEM bundles (nor SSL_CERT_FILE): they need a key store.
const HostCAStorePath = hostCADir + "/" + hostCAStoreFile

const hostCAStoreFile = "host-ca.p12"

// javaTrustOptions point every JVM of a step at HostCAStorePath. The store has no
// password (see javaTrustStore), so none is given: a JVM reads it whatever
// javax.net.ssl.trustStorePassword says, even one an image sets.
const javaTrustOptions = "-Djavax.net.ssl.trustStore=" + HostCAStorePath + " -Djavax.net.ssl.trustStoreType=PKCS12"

// javaTrustStore converts a PEM bundle (read from file, named in errors) into a
// PKCS#12 trust store: one certBag per distinct certificate, in bundle order,
// each carrying Oracle's trusted-key-usage attribute, without which Java's
// PKCS12 loader ignores a certificate. It also returns the certificate count.
//
// The store is password-less: no MAC, nothing encrypted. That makes it
// deterministic (no random salt; BuildKit keys the CA folder by content, so the
// same bundle must give the same bytes) and readable by a JVM with no password
// or any password, whereas a MAC-protected store read without the right
// password looks empty to Java (the PKIX "trustAnchors parameter must be
// non-empty" error). The certificates are public; the store is only mounted
// read-only.
//
// Blocks that are not certificates or fail to parse are skipped (Java could not
// use a certificate Go cannot parse either); a bundle with no certificate is an
// error.
func javaTrustStore(file string, bundle []byte) ([]byte, int, error) {
	var entries []pkcs12.TrustStoreEntry
	seen := map[[sha256.Size]byte]bool{}
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(c.Raw)
		if seen[sum] {
			continue
		}
		seen[sum] = true
		// Java keys entries by their lower-cased alias: subjects repeat in
		// bundles (re-issued roots), so an alias made from the subject could
		// drop a certificate. Index and fingerprint are unique and ASCII.
		entries = append(entries, pkcs12.TrustStoreEntry{
			Cert:         c,
			FriendlyName: fmt.Sprintf("host-ca-%d-%x", len(entries), sum[:4]),
		})
	}
	if len(entries) == 0 {
		return nil, 0, fmt.Errorf("trust_host_ca: host CA bundle %s holds no readable PEM certificate", file)
	}
	p12, err := pkcs12.Passwordless.EncodeTrustStoreEntries(entries, "")
	if err != nil {
		return nil, 0, fmt.Errorf("trust_host_ca: host CA bundle %s: Java trust store: %w", file, err)
	}
	return p12, len(entries), nil
}
