package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/layerpack/layerpack/lambda"
)

// tlsServer is a TLS listener on loopback that wants a client certificate from
// p's CA and, like a gRPC server, speaks first after the handshake.
func tlsServer(t *testing.T, p *TestPKI) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	dt, _ := os.ReadFile(p.CA)
	pool.AppendCertsFromPEM(dt)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		NextProtos:   []string{"h2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_, _ = c.Write([]byte{0})
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String()
}

func TestProbeTCPClassifiesTLSFailures(t *testing.T) {
	p := NewTestPKI(t)
	hostport := tlsServer(t, p)
	addr := "tcp://" + hostport
	good := TLS{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey}
	cases := []struct {
		name string
		tls  TLS
		kind string
		want string
	}{
		{"good", good, "", ""},
		{"tlsdir", TLSFromDir(p.Dir), "", ""},
		{"wrong CA", TLS{CA: p.OtherCA, Cert: p.ClientCert, Key: p.ClientKey}, TLSFailed, "unknown CA: the daemon's certificate is not signed by tls_ca " + p.OtherCA},
		{"no client certificate", TLS{CA: p.CA}, TLSFailed, "bad client certificate: the daemon requires a client certificate and none was given"},
		{"client certificate of another CA", TLS{CA: p.CA, Cert: p.OtherClientCert, Key: p.OtherClientKey}, TLSFailed, "bad client certificate: the daemon refused " + p.OtherClientCert + ": it is not signed by a CA the daemon trusts"},
		{"wrong server name", TLS{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey, ServerName: "buildkit.example.com"}, TLSFailed,
			`name mismatch: the daemon's certificate is for localhost, 127.0.0.1, not "buildkit.example.com"`},
		{"no TLS settings", TLS{}, TLSFailed, "the daemon requires TLS and none is configured"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := probeTCP(context.Background(), addr, hostport, c.tls)
			if c.kind == "" {
				if err != nil {
					t.Fatalf("probe: %v", err)
				}
				return
			}
			var ce *ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *ConnectError", err, err)
			}
			if ce.Kind != c.kind || !strings.Contains(ce.Detail, c.want) {
				t.Errorf("got %s: %s\nwant %s: ...%s...", ce.Kind, ce.Detail, c.kind, c.want)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name the address", err)
			}
			for _, k := range []string{p.ClientKey, p.OtherClientKey} {
				if strings.Contains(err.Error(), k) {
					t.Errorf("error %q names the key file", err)
				}
			}
		})
	}
}

func TestProbeTCPNoDaemon(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostport := ln.Addr().String()
	ln.Close()
	err = probeTCP(context.Background(), "tcp://"+hostport, hostport, TLS{})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Kind != NoDaemon || !strings.Contains(ce.Detail, "connection refused: nothing listens on "+hostport) {
		t.Fatalf("got %v", err)
	}
}

// A plain (non-TLS) listener that closes on garbage, as a gRPC server does when
// the client preface is a TLS hello.
func TestProbeTCPPlainDaemonWithTLS(t *testing.T) {
	p := NewTestPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 64))
			c.Close()
		}
	}()
	err = probeTCP(context.Background(), "tcp://"+ln.Addr().String(), ln.Addr().String(), TLS{CA: p.CA})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Kind != TLSFailed || !strings.Contains(ce.Detail, "does it speak TLS?") {
		t.Fatalf("got %v", err)
	}
}

func TestTLSCheck(t *testing.T) {
	p := NewTestPKI(t)
	for _, c := range []struct {
		tls  TLS
		want string
	}{
		{TLS{CA: p.CA, Cert: p.ClientCert, Key: p.ClientKey}, ""},
		{TLS{CA: p.CA, Cert: p.ClientCert}, "needs both tls_cert and tls_key"},
		{TLS{CA: p.Dir + "/nope.pem"}, "tls_ca: stat " + p.Dir + "/nope.pem"},
		{TLS{CA: p.Dir}, "is not a file"},
		{TLS{CA: p.ClientKey}, "tls_ca " + p.ClientKey + ": no PEM certificate in it"},
		{TLS{CA: p.CA, Cert: p.ClientCert, Key: p.OtherClientKey}, "tls_cert " + p.ClientCert + " and tls_key: tls: private key does not match public key"},
	} {
		err := c.tls.check("TLS")
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", c.tls, err, c.want)
		}
	}
}

func TestTLSForArch(t *testing.T) {
	global := TLS{CA: "/g/ca.pem"}
	arm := TLS{CA: "/a/ca.pem", Cert: "/a/cert.pem", Key: "/a/key.pem"}
	opts := &Options{TLS: global, ArchTLS: map[lambda.Arch]TLS{lambda.ARM64: arm}}
	if got := tlsFor(opts, lambda.ARM64, "tcp://arm:1234"); got != arm {
		t.Errorf("arm64: %+v", got)
	}
	if got := tlsFor(opts, lambda.X86_64, "tcp://x86:1234"); got != global {
		t.Errorf("x86_64: %+v", got)
	}
	if got := tlsFor(opts, lambda.X86_64, "unix:///run/buildkit/buildkitd.sock"); !got.IsZero() {
		t.Errorf("unix: %+v", got)
	}
	// The explicit target carries its TLS, and the same address with other TLS
	// settings is another connection.
	ta, _ := explicitTarget(&Options{Addr: "tcp://h:1", TLS: global}, func(string) string { return "" }, lambda.X86_64)
	tb, _ := explicitTarget(&Options{Addr: "tcp://h:1"}, func(string) string { return "" }, lambda.X86_64)
	if ta.TLS != global || ta.slotKey() == tb.slotKey() {
		t.Errorf("targets %+v %+v", ta, tb)
	}
	if s := ta.String(); s != "tcp://h:1 (TLS)" {
		t.Errorf("String = %q", s)
	}
	opts = &Options{ArchAddr: map[lambda.Arch]string{lambda.ARM64: "tcp://h:1"}, ArchTLS: map[lambda.Arch]TLS{lambda.ARM64: arm}}
	ta, _ = explicitTarget(opts, func(string) string { return "" }, lambda.ARM64)
	if s := ta.String(); s != "tcp://h:1 (mTLS)" {
		t.Errorf("String = %q", s)
	}
}

// A daemon (or a proxy in front of it) that answers but refuses the request is
// "unauthorized", not a missing daemon; other errors pass unchanged.
func TestDiagnoseUnauthorized(t *testing.T) {
	tg := target{Addr: "tcp://buildkit.ci:1234"}
	for _, code := range []codes.Code{codes.Unauthenticated, codes.PermissionDenied} {
		err := diagnose(context.Background(), tg, fmt.Errorf("failed to list workers: %w", status.Error(code, "client certificate revoked")))
		var ce *ConnectError
		if !errors.As(err, &ce) || ce.Kind != Unauthorized ||
			err.Error() != "BuildKit at tcp://buildkit.ci:1234: unauthorized: the daemon refused the request: client certificate revoked" {
			t.Errorf("%s: %v", code, err)
		}
	}
	other := errors.New("something else")
	if err := diagnose(context.Background(), target{Addr: "unix:///nope.sock"}, other); err != other {
		t.Errorf("unix error changed: %v", err)
	}
}

// A daemon that answers but fails the TLS handshake (or refuses us) is reported
// as that, naming where the address came from; only "no daemon" is a
// NoDaemonError. Either way nothing else is tried.
func TestDiscoverExplicitConnectErrors(t *testing.T) {
	addr := "tcp://buildkit.ci:1234"
	for _, c := range []struct {
		err      error
		noDaemon bool
		want     string
	}{
		{&ConnectError{Addr: addr, Kind: TLSFailed, Detail: "unknown CA: ..."}, false,
			"[buildkit.arm64] addr tcp://buildkit.ci:1234: BuildKit at tcp://buildkit.ci:1234: TLS handshake failed: unknown CA: ..."},
		{&ConnectError{Addr: addr, Kind: Unauthorized, Detail: "the daemon refused the request: no"}, false,
			"BuildKit at tcp://buildkit.ci:1234: unauthorized: the daemon refused the request: no"},
		{&ConnectError{Addr: addr, Kind: NoDaemon, Detail: "connection refused: nothing listens on buildkit.ci:1234"}, true,
			"  - [buildkit.arm64] addr tcp://buildkit.ci:1234: BuildKit at tcp://buildkit.ci:1234: no daemon: connection refused"},
	} {
		m := &fakeMachine{buildkit: map[string]error{addr: c.err}, buildkitd: "/usr/bin/buildkitd"}
		opts := &Options{ArchAddr: map[lambda.Arch]string{lambda.ARM64: addr}, CacheDir: t.TempDir()}
		_, err := discover(context.Background(), m.sys(), opts, lambda.ARM64)
		var nd *NoDaemonError
		if err == nil || errors.As(err, &nd) != c.noDaemon || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v", c.err, err)
		}
		if len(m.log) != 1 {
			t.Errorf("%v: tried more than the address: %v", c.err, m.log)
		}
	}
}
