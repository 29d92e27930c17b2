package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/layerpack/layerpack/lambda"
)

// TLS is how to reach a tcp:// daemon secured with TLS, the way buildkitd is
// deployed remotely (--tlscacert, --tlscert, --tlskey). Paths are host files
// (the caller makes config paths absolute). Only their paths are kept: the files
// are read when connecting, never logged, shown by plan or hashed into a key.
type TLS struct {
	CA         string // PEM CA bundle the daemon's certificate must chain to; "" = the system roots
	Cert, Key  string // client certificate and key (mutual TLS); both or neither
	ServerName string // name to check the daemon's certificate against; "" = the address's host
}

// IsZero reports whether nothing is set: the connection is plain gRPC.
func (t TLS) IsZero() bool { return t == TLS{} }

// TLSFromDir is buildctl's --tlsdir: ca.pem, cert.pem and key.pem in dir (the
// client pair only when present).
func TLSFromDir(dir string) TLS {
	t := TLS{CA: dir + "/ca.pem"}
	if _, err := os.Stat(dir + "/cert.pem"); err == nil {
		t.Cert, t.Key = dir+"/cert.pem", dir+"/key.pem"
	}
	return t
}

// check validates the settings without reading the key: what names where they
// come from ("[buildkit]", "--tlscert", ...).
func (t TLS) check(what string) error {
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("%s: a client certificate needs both tls_cert and tls_key (--tlscert and --tlskey)", what)
	}
	for _, f := range [][2]string{{"tls_ca", t.CA}, {"tls_cert", t.Cert}, {"tls_key", t.Key}} {
		if f[1] == "" {
			continue
		}
		fi, err := os.Stat(f[1])
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, f[0], err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s %s: %s is not a file", what, f[0], f[1])
		}
	}
	// Parse them now, so that a wrong file is a usage error before any build,
	// not a connection failure later. The key is read, never kept or shown.
	if _, err := t.config("localhost"); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// describe says, for plan, what kind of TLS a target uses (no file names).
func (t TLS) describe() string {
	switch {
	case t.IsZero():
		return ""
	case t.Cert != "":
		return "mTLS"
	}
	return "TLS"
}

// clientOpts are the BuildKit client options for t (as buildctl sets them).
func (t TLS) clientOpts() []client.ClientOpt {
	if t.IsZero() {
		return nil
	}
	var opts []client.ClientOpt
	if t.CA != "" {
		opts = append(opts, client.WithServerConfig(t.ServerName, t.CA))
	} else {
		opts = append(opts, client.WithServerConfigSystem(t.ServerName))
	}
	if t.Cert != "" {
		opts = append(opts, client.WithCredentials(t.Cert, t.Key))
	}
	return opts
}

// config is the crypto/tls configuration equal to clientOpts, for diagnosing a
// failed connection to host.
func (t TLS) config(host string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, NextProtos: []string{"h2"}}
	if t.ServerName != "" {
		cfg.ServerName = t.ServerName
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls_ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca %s: no PEM certificate in it", t.CA)
		}
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			// The error of crypto/tls never quotes the key's content.
			return nil, fmt.Errorf("tls_cert %s and tls_key: %w", t.Cert, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// What kind of failure a ConnectError is.
const (
	NoDaemon     = "no daemon"
	TLSFailed    = "TLS handshake failed"
	Unauthorized = "unauthorized"
)

// ConnectError says why a daemon at an address could not be used: no daemon
// answers there, the TLS handshake failed (and why), or the daemon refused us.
type ConnectError struct {
	Addr   string
	Kind   string // NoDaemon, TLSFailed or Unauthorized
	Detail string // what exactly, and what to change
	Err    error  // the underlying error, when there is one
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("BuildKit at %s: %s: %s", e.Addr, e.Kind, e.Detail)
}

func (e *ConnectError) Unwrap() error { return e.Err }

const tlsProbeTimeout = 5 * time.Second

// diagnose explains why connecting to t failed (err, from gRPC). gRPC's errors
// for a TLS problem are one opaque line ("error reading server preface: EOF"
// when a TLS daemon gets plain gRPC), so for tcp:// addresses it dials again
// itself and classifies what crypto/tls reports. Other errors pass unchanged.
func diagnose(ctx context.Context, t target, err error) error {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if st := se.GRPCStatus(); st.Code() == codes.Unauthenticated || st.Code() == codes.PermissionDenied {
			return &ConnectError{Addr: t.Addr, Kind: Unauthorized, Detail: "the daemon refused the request: " + st.Message(), Err: err}
		}
	}
	u, perr := url.Parse(t.Addr)
	if perr != nil || u.Scheme != "tcp" || u.Host == "" {
		return err
	}
	if cerr := probeTCP(ctx, t.Addr, u.Host, t.TLS); cerr != nil {
		return cerr
	}
	return err
}

// probeTCP dials hostport and, with TLS settings, shakes hands as the client
// would; without them it checks whether the daemon wants TLS. It returns nil
// when it finds nothing wrong.
func probeTCP(ctx context.Context, addr, hostport string, t TLS) error {
	ctx, cancel := context.WithTimeout(ctx, tlsProbeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		detail := err.Error()
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			detail = "connection refused: nothing listens on " + hostport
		case errors.Is(err, context.DeadlineExceeded):
			detail = "no answer from " + hostport + " within " + tlsProbeTimeout.String()
		}
		return &ConnectError{Addr: addr, Kind: NoDaemon, Detail: detail, Err: err}
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(hostport)
	if t.IsZero() {
		// Does the daemon speak TLS? A handshake that gets a server hello says so.
		tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // only asks whether TLS is spoken
		if tc.HandshakeContext(ctx) == nil {
			return &ConnectError{Addr: addr, Kind: TLSFailed, Detail: "the daemon requires TLS and none is configured: " +
				"give its CA and a client certificate (tls_ca, tls_cert, tls_key in [buildkit] or [buildkit.<arch>]; --tlscacert, --tlscert, --tlskey or --tlsdir)"}
		}
		return nil
	}
	cfg, err := t.config(host)
	if err != nil {
		return &ConnectError{Addr: addr, Kind: TLSFailed, Detail: err.Error(), Err: err}
	}
	tc := tls.Client(nc, cfg)
	err = tc.HandshakeContext(ctx)
	if err == nil {
		// With TLS 1.3 the daemon judges the client certificate after the
		// client's side of the handshake is done: its verdict is the first
		// thing read. A gRPC server speaks first (SETTINGS), so a read returns
		// data when all is well.
		_ = tc.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = tc.Read(make([]byte, 1))
		if err == nil || isTimeout(err) {
			return nil
		}
	}
	return &ConnectError{Addr: addr, Kind: TLSFailed, Detail: tlsReason(err, t, cfg.ServerName), Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// tlsReason names what a handshake error means and what to change.
func tlsReason(err error, t TLS, serverName string) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &ua):
		ca := "the system roots"
		if t.CA != "" {
			ca = "tls_ca " + t.CA
		}
		return "unknown CA: the daemon's certificate is not signed by " + ca + " (" + err.Error() + ")"
	case errors.As(err, &he):
		names := strings.Join(he.Certificate.DNSNames, ", ")
		for _, ip := range he.Certificate.IPAddresses {
			names = strings.TrimPrefix(names+", "+ip.String(), ", ")
		}
		return fmt.Sprintf("name mismatch: the daemon's certificate is for %s, not %q; set tls_server_name (--tlsservername) to a name it holds", names, serverName)
	case errors.As(err, &ci):
		return "the daemon's certificate is not valid: " + err.Error()
	case errors.As(err, &rec):
		return "the daemon does not speak TLS (" + err.Error() + "); remove the tls_* settings for it"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "the daemon closed the connection during the handshake: does it speak TLS? (" + err.Error() + ")"
	}
	// A remote alert is a *net.OpError around crypto/tls's unexported alert type:
	// only its text says which one it is (RFC 8446 6.2 names).
	msg := err.Error()
	switch {
	case strings.Contains(msg, "remote error: tls: certificate required"):
		if t.Cert == "" {
			return "bad client certificate: the daemon requires a client certificate and none was given (tls_cert and tls_key, --tlscert and --tlskey)"
		}
		// Go's client sends no certificate when its issuer is not among the CAs
		// the daemon asks for.
		return "bad client certificate: the daemon refused " + t.Cert + ": it is not signed by a CA the daemon trusts (its --tlscacert), so none was sent"
	case strings.Contains(msg, "remote error: tls: bad certificate"), strings.Contains(msg, "remote error: tls: unknown certificate authority"),
		strings.Contains(msg, "remote error: tls: expired certificate"), strings.Contains(msg, "remote error: tls: revoked certificate"),
		strings.Contains(msg, "remote error: tls: unsupported certificate"):
		return "bad client certificate: the daemon refused " + t.Cert + " (" + msg + "); it must be signed by a CA the daemon trusts (its --tlscacert)"
	}
	return msg
}

// tlsFor returns the TLS settings for arch's explicit address: the
// architecture's own, else the global ones. TLS applies to tcp:// addresses only.
func tlsFor(opts *Options, arch lambda.Arch, addr string) TLS {
	if !strings.HasPrefix(addr, "tcp://") {
		return TLS{}
	}
	if t, ok := opts.ArchTLS[arch]; ok && !t.IsZero() {
		return t
	}
	return opts.TLS
}
