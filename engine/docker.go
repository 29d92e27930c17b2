package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Docker Engine embeds a BuildKit daemon and exposes it on its API socket: POST
// /grpc upgrades the HTTP connection to the BuildKit control API (h2c), POST
// /session to a client session, with the session's metadata as request headers.
// This is how buildx's "docker" driver talks to it; the two dialers below plug
// into client.WithContextDialer and client.WithSessionDialer.

// dockerHijack opens a connection to socket, sends an upgrade request for path
// and returns the raw connection once the engine switched protocols.
func dockerHijack(ctx context.Context, socket, path, proto string, meta map[string][]string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	// Bound the handshake by ctx; the returned connection has no deadline.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	req, err := http.NewRequest(http.MethodPost, "http://docker"+path, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	for k, vs := range meta {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("POST %s on %s: %w", path, socket, err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("POST %s on %s: %w", path, socket, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		nc.Close()
		return nil, fmt.Errorf("POST %s on %s: %s: %s", path, socket, resp.Status, strings.TrimSpace(string(body)))
	}
	if ctx.Err() != nil {
		nc.Close()
		return nil, ctx.Err()
	}
	_ = nc.SetDeadline(time.Time{})
	return &bufConn{Conn: nc, r: br}, nil
}

// bufConn reads first what the HTTP reader buffered past the response headers.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dockerPing checks that a Docker engine answers GET /_ping on socket.
func dockerPing(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), socket string) error {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s", resp.Status)
	}
	return nil
}
