package ociimage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// PushOptions configure Push.
type PushOptions struct {
	// Insecure allows plain HTTP to a registry that is not on a loopback address
	// (loopback registries may always use it).
	Insecure bool
	// Keychain finds credentials; nil is authn.DefaultKeychain (the Docker config
	// and its credential helpers, such as docker-credential-ecr-login).
	Keychain authn.Keychain
	// Transport is the HTTP transport underneath; nil is http.DefaultTransport.
	Transport http.RoundTripper
}

// PushResult says what a push did.
type PushResult struct {
	Ref      string `json:"ref"`      // repository@<index digest>
	Tag      string `json:"tag"`      // the reference as given
	Uploaded int    `json:"uploaded"` // blobs sent
	Present  int    `json:"present"`  // blobs and manifests the registry already had (not sent)
}

// ParseRef parses a registry reference; insecure lets any host use plain HTTP.
func ParseRef(ref string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", ref, err)
	}
	return r, nil
}

// Push uploads the image index written at layoutDir to ref (a tag; a bare
// repository gets "latest"). Blobs the registry already has are not sent
// (go-containerregistry asks first); the counts say how many were.
func Push(ctx context.Context, layoutDir string, index digest.Digest, ref string, o PushOptions) (*PushResult, error) {
	r, err := ParseRef(ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	reg := r.Context().RegistryStr()
	fail := func(err error) (*PushResult, error) {
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return nil, fmt.Errorf("pushing %s to registry %s: credentials missing or refused (docker login %s, or a credential helper in the Docker config): %w", r.Name(), reg, reg, err)
		}
		return nil, fmt.Errorf("pushing %s to registry %s: %w", r.Name(), reg, err)
	}
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		return fail(err)
	}
	h, err := ggcr.NewHash(index.String())
	if err != nil {
		return fail(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return fail(err)
	}
	idx, err := ii.ImageIndex(h)
	if err != nil {
		return fail(fmt.Errorf("%s has no index %s: %w", layoutDir, index, err))
	}
	ct := &countingTransport{base: o.Transport, insecure: o.Insecure}
	if ct.base == nil {
		ct.base = http.DefaultTransport
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(ct)); err != nil {
		return fail(err)
	}
	return &PushResult{
		Ref: r.Context().Name() + "@" + index.String(), Tag: r.Name(),
		Uploaded: int(ct.uploaded.Load()), Present: int(ct.present.Load()),
	}, nil
}

// Remote options for reading back what Push wrote (tests, and users who check).
func RemoteOptions(ctx context.Context, o PushOptions) []remote.Option {
	ct := &countingTransport{base: o.Transport, insecure: o.Insecure}
	if ct.base == nil {
		ct.base = http.DefaultTransport
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(ct)}
}

// countingTransport refuses plain HTTP to hosts that are not loopback unless
// insecure (go-containerregistry falls back to HTTP for private addresses by
// itself), and counts blob uploads (the PUT that commits one) and blobs found
// present (a HEAD answered 200).
type countingTransport struct {
	base     http.RoundTripper
	insecure bool
	uploaded atomic.Int64
	present  atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !t.insecure && !IsLoopback(req.URL.Host) {
		return nil, fmt.Errorf("plain HTTP to %s refused: it is not a loopback address (pass --insecure to allow it)", req.URL.Host)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	p := req.URL.Path
	switch {
	case req.Method == http.MethodPut && strings.Contains(p, "/blobs/uploads/") && resp.StatusCode/100 == 2:
		t.uploaded.Add(1)
	case req.Method == http.MethodPost && strings.Contains(p, "/blobs/uploads/") && resp.StatusCode == http.StatusCreated:
		// A cross-repository mount: the registry had the blob.
		t.present.Add(1)
	case req.Method == http.MethodHead && (strings.Contains(p, "/blobs/") || strings.Contains(p, "/manifests/")) && resp.StatusCode == http.StatusOK:
		t.present.Add(1)
	}
	return resp, nil
}

// IsLoopback reports whether host[:port] names this machine.
func IsLoopback(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}
