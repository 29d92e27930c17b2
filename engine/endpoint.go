package engine

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/moby/buildkit/client/connhelper"
	"github.com/moby/buildkit/client/connhelper/dockercontainer"
	"github.com/moby/buildkit/client/connhelper/kubepod"
	"github.com/moby/buildkit/client/connhelper/podmancontainer"
	"github.com/moby/buildkit/client/connhelper/ssh"

	"github.com/layerpack/layerpack/lambda"
)

// The connection helpers BuildKit's client ships register their schemes when
// imported (the packages above, used for describing addresses, do it): an
// address such as ssh://user@host runs `ssh ... buildctl dial-stdio` and speaks
// gRPC over its standard streams, as buildctl and buildx do.
//
//	ssh://[USER@]HOST[:PORT][/SOCKET]              ssh to HOST; buildctl on its PATH
//	docker-container://CONTAINER[?context=CTX]     docker exec -i CONTAINER buildctl dial-stdio
//	podman-container://CONTAINER                   podman exec -i CONTAINER buildctl dial-stdio
//	kube-pod://POD[?namespace=NS&context=CTX&container=C]  kubectl exec -i POD -- buildctl dial-stdio
var helperSchemes = []string{"ssh", "docker-container", "podman-container", "kube-pod"}

// checkAddr reports whether addr is a BuildKit address layerpack can use:
// unix://, tcp:// or a scheme of a connection helper with a valid target.
func checkAddr(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || u.Opaque != "" {
		return fmt.Errorf("%q is not an address (want unix://, tcp://, %s)", addr, strings.Join(helperSchemes, "://, ")+"://")
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" && u.Opaque == "" {
			return fmt.Errorf("%q: unix:// needs a socket path", addr)
		}
		return nil
	case "tcp":
		if u.Host == "" || u.Port() == "" {
			return fmt.Errorf("%q: tcp:// needs HOST:PORT", addr)
		}
		return nil
	case "":
		return fmt.Errorf("%q has no scheme (want unix://, tcp://, %s)", addr, strings.Join(helperSchemes, "://, ")+"://")
	}
	h, err := connhelper.GetConnectionHelper(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if h == nil {
		return fmt.Errorf("%q: unknown scheme %s:// (want unix://, tcp://, %s)", addr, u.Scheme, strings.Join(helperSchemes, "://, ")+"://")
	}
	return nil
}

// describeAddr says, for plan, what a helper address runs: its scheme and
// target. Plain addresses are returned as they are.
func describeAddr(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return addr
	}
	var what string
	switch u.Scheme {
	case "ssh":
		sp, err := ssh.SpecFromURL(u)
		if err != nil {
			return addr
		}
		what = "ssh to " + sp.Host
		if sp.User != "" {
			what = "ssh to " + sp.User + "@" + sp.Host
		}
		if sp.Port != "" {
			what += " port " + sp.Port
		}
		if sp.Socket != "" {
			what += ", socket " + sp.Socket
		}
	case "docker-container":
		sp, err := dockercontainer.SpecFromURL(u)
		if err != nil {
			return addr
		}
		what = "docker container " + sp.Container
		if sp.Context != "" {
			what += ", context " + sp.Context
		}
	case "podman-container":
		sp, err := podmancontainer.SpecFromURL(u)
		if err != nil {
			return addr
		}
		what = "podman container " + sp.Container
	case "kube-pod":
		sp, err := kubepod.SpecFromURL(u)
		if err != nil {
			return addr
		}
		what = "kube-pod " + sp.Pod
		if sp.Namespace != "" {
			what += ", namespace " + sp.Namespace
		}
		if sp.Container != "" {
			what += ", container " + sp.Container
		}
		if sp.Context != "" {
			what += ", context " + sp.Context
		}
	default:
		return addr
	}
	return addr + " [" + what + "]"
}

// checkEndpoints validates the addresses and TLS settings of opts, so that a
// typo is a usage error before anything builds.
func checkEndpoints(opts *Options) error {
	if opts.Addr != "" {
		if err := checkAddr(opts.Addr); err != nil {
			return fmt.Errorf("buildkit address %w", err)
		}
	}
	for arch, a := range opts.ArchAddr {
		if a == "" {
			continue
		}
		if err := checkAddr(a); err != nil {
			return fmt.Errorf("[buildkit.%s] addr %w", arch, err)
		}
	}
	if err := opts.TLS.check("TLS settings ([buildkit] tls_*, --tls* flags)"); err != nil {
		return err
	}
	for arch, t := range opts.ArchTLS {
		if _, err := lambda.ParseArch(string(arch)); err != nil {
			return fmt.Errorf("buildkit TLS for %q: %w", arch, err)
		}
		what := "[buildkit." + string(arch) + "] TLS"
		if err := t.check(what); err != nil {
			return err
		}
		if a := opts.ArchAddr[arch]; !t.IsZero() && !strings.HasPrefix(a, "tcp://") {
			return fmt.Errorf("%s: tls_* settings need a tcp:// addr for %s (addr is %q)", what, arch, a)
		}
	}
	return nil
}
