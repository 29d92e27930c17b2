package config

import (
	"os"
	"path/filepath"

	"github.com/layerpack/layerpack/lambda"
)

// TLS secures a tcp:// BuildKit address ([buildkit] tls_*, [buildkit.ARCH] tls_*).
// The paths are absolute (relative ones start at the config file's folder).
type TLS struct {
	CA, Cert, Key, ServerName string
}

var tlsKeys = []string{"tls_ca", "tls_cert", "tls_key", "tls_server_name"}

// decodeBuildKit reads [buildkit] and its per-architecture tables.
func decodeBuildKit(w *walker, root *table, f *File) {
	b := root.table("buildkit")
	if b == nil {
		return
	}
	b.str("addr", &f.BuildKit.Addr)
	b.boolean("trust_host_ca", &f.BuildKit.TrustHostCA)
	f.BuildKit.TLS = decodeTLS(w, b, f.Dir)
	b.strs("cache_from", &f.BuildKit.CacheFrom)
	b.strs("cache_to", &f.BuildKit.CacheTo)
	for _, a := range lambda.Arches {
		t := b.table(string(a))
		if t == nil {
			continue
		}
		var addr string
		if t.str("addr", &addr) {
			if f.BuildKit.ArchAddr == nil {
				f.BuildKit.ArchAddr = map[lambda.Arch]string{}
			}
			f.BuildKit.ArchAddr[a] = addr
		}
		if tls := decodeTLS(w, t, f.Dir); tls != (TLS{}) {
			if f.BuildKit.ArchTLS == nil {
				f.BuildKit.ArchTLS = map[lambda.Arch]TLS{}
			}
			f.BuildKit.ArchTLS[a] = tls
		}
		t.done(append([]string{"addr"}, tlsKeys...)...)
	}
	b.done(append([]string{"addr", "trust_host_ca", "cache_from", "cache_to", "x86_64", "arm64"}, tlsKeys...)...)
}

// decodeTLS reads the tls_* keys of t; files must exist.
func decodeTLS(w *walker, t *table, dir string) TLS {
	var out TLS
	for _, k := range []struct {
		key string
		dst *string
	}{{"tls_ca", &out.CA}, {"tls_cert", &out.Cert}, {"tls_key", &out.Key}} {
		if !t.str(k.key, k.dst) {
			continue
		}
		if *k.dst == "" {
			w.errorf(t.key(k.key), "must not be empty")
			continue
		}
		if !filepath.IsAbs(*k.dst) {
			*k.dst = filepath.Join(dir, *k.dst)
		}
		if st, err := os.Stat(*k.dst); err != nil {
			w.errorf(t.key(k.key), "%s does not exist or cannot be read", *k.dst)
		} else if !st.Mode().IsRegular() {
			w.errorf(t.key(k.key), "%s is not a file", *k.dst)
		}
	}
	t.str("tls_server_name", &out.ServerName)
	if (out.Cert == "") != (out.Key == "") {
		if out.Cert != "" {
			w.errorf(t.key("tls_cert"), "needs tls_key beside it (a client certificate and its key)")
		} else {
			w.errorf(t.key("tls_key"), "needs tls_cert beside it (a client certificate and its key)")
		}
	}
	return out
}
