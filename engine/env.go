package engine

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// HostCAPath is where the host's CA bundle appears in every step when
// Options.TrustHostCA is set.
const HostCAPath = hostCADir + "/" + hostCAFile

const (
	hostCADir  = "/etc/layerpack"
	hostCAFile = "host-ca.pem"
)

// DefaultPath is the PATH of steps whose image has no config (rootfs images).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// caEnvVars are the variables that tools read for an extra or replacement CA
// bundle: OpenSSL and Python (SSL_CERT_FILE), requests, pip, Node.js, npm, Bundler,
// curl and git. JVMs get JAVA_TOOL_OPTIONS instead (see stepEnv).
var caEnvVars = []string{
	"SSL_CERT_FILE",
	"REQUESTS_CA_BUNDLE",
	"PIP_CERT",
	"NODE_EXTRA_CA_CERTS",
	"npm_config_cafile",
	"BUNDLE_SSL_CA_CERT",
	"CURL_CA_BUNDLE",
	"GIT_SSL_CAINFO",
}

// HostCABundle is the host bundle trust_host_ca gives steps: $SSL_CERT_FILE when
// set (the host's own tools read it first), else the system bundle.
func HostCABundle(getenv func(string) string) string {
	if f := getenv("SSL_CERT_FILE"); f != "" {
		return f
	}
	return DefaultHostCABundle
}

// DescribeHostCA says, for `layerpack plan`, what trust_host_ca gives every step.
func DescribeHostCA(bundle string) []string {
	return []string{
		fmt.Sprintf("host CA bundle mounted read-only (trust_host_ca): %s at %s", bundle, HostCAPath),
		"  read through " + strings.Join(caEnvVars, ", "),
		"  JVMs: the same certificates as a PKCS#12 trust store at " + HostCAStorePath + ", through JAVA_TOOL_OPTIONS",
	}
}

type envVar struct{ Key, Value string }

// stepEnv is the environment a step gets on top of its image's: the CA variables
// and JAVA_TOOL_OPTIONS when the host CA is trusted, a default PATH for images
// without config, then Step.Env (a builder's explicit value wins over the
// engine's defaults), then SOURCE_DATE_EPOCH. The result is sorted by key: Env is
// part of BuildKit's cache key, so its order must not depend on map iteration.
//
// imageJavaOpts is the image's own JAVA_TOOL_OPTIONS. The trust store options
// are appended to it rather than replacing it: an image sets it for heap sizes,
// agents or encodings that its builds rely on, and the JVM applies the options
// in order, so ours still decide the trust store (as SSL_CERT_FILE and the
// others override the image's). Options on a java command line come after
// JAVA_TOOL_OPTIONS, so a build that names its own trust store still wins.
//
// SOURCE_DATE_EPOCH is set only when positive: 0 means "not given", and some tools
// refuse timestamps before 1980 (Python's zipfile).
func stepEnv(s *Step, imageHasConfig, trustHostCA bool, imageJavaOpts string) []envVar {
	m := map[string]string{}
	if trustHostCA {
		for _, k := range caEnvVars {
			m[k] = HostCAPath
		}
		m["JAVA_TOOL_OPTIONS"] = strings.TrimSpace(imageJavaOpts + " " + javaTrustOptions)
	}
	if !imageHasConfig {
		m["PATH"] = DefaultPath
	}
	for k, v := range s.Env {
		m[k] = v
	}
	if s.SourceDateEpoch > 0 {
		m["SOURCE_DATE_EPOCH"] = strconv.FormatInt(s.SourceDateEpoch, 10)
	}
	out := make([]envVar, 0, len(m))
	for k, v := range m {
		out = append(out, envVar{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// proxyVars are the proxy settings steps get from the host, upper case first.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"}

// DescribeStepEnv says, for `layerpack plan`, what every step gets from the host:
// the CA bundle (when trusted) and which proxy variables pass through. Values are
// never shown: a proxy URL can carry credentials.
func DescribeStepEnv(getenv func(string) string, trustHostCA bool) []string {
	var out []string
	if trustHostCA {
		out = append(out, DescribeHostCA(HostCABundle(getenv))...)
	}
	for _, lower := range []bool{false, true} {
		for _, k := range proxyVars {
			if lower {
				k = strings.ToLower(k)
			}
			if getenv(k) != "" {
				out = append(out, fmt.Sprintf("%s passed from the host", k))
			}
		}
	}
	return out
}

// proxyEnv reads HTTP_PROXY, HTTPS_PROXY, NO_PROXY and ALL_PROXY (upper case first,
// then lower case) through getenv. It returns nil when none is set. Steps get the
// values through BuildKit's proxy metadata (llb.WithProxy), which BuildKit leaves
// out of the cache key, so a different proxy does not rebuild anything; the
// daemon sets both spellings in the container.
func proxyEnv(getenv func(string) string) *llb.ProxyEnv {
	get := func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return getenv(strings.ToLower(k))
	}
	p := llb.ProxyEnv{
		HTTPProxy:  get("HTTP_PROXY"),
		HTTPSProxy: get("HTTPS_PROXY"),
		NoProxy:    get("NO_PROXY"),
		AllProxy:   get("ALL_PROXY"),
	}
	if p == (llb.ProxyEnv{}) {
		return nil
	}
	return &p
}
