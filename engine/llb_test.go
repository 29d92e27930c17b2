package engine

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"github.com/layerpack/layerpack/lambda"
)

func TestStepEnv(t *testing.T) {
	s := &Step{Env: map[string]string{"PIP_CERT": "/mine.pem", "B": "2", "A": "1"}, SourceDateEpoch: 1700000000}
	got := stepEnv(s, false, true, "")
	want := []envVar{
		{"A", "1"},
		{"B", "2"},
		{"BUNDLE_SSL_CA_CERT", HostCAPath},
		{"CURL_CA_BUNDLE", HostCAPath},
		{"GIT_SSL_CAINFO", HostCAPath},
		{"JAVA_TOOL_OPTIONS", "-Djavax.net.ssl.trustStore=/etc/layerpack/host-ca.p12 -Djavax.net.ssl.trustStoreType=PKCS12"},
		{"NODE_EXTRA_CA_CERTS", HostCAPath},
		{"PATH", DefaultPath},
		{"PIP_CERT", "/mine.pem"}, // the step's own value wins
		{"REQUESTS_CA_BUNDLE", HostCAPath},
		{"SOURCE_DATE_EPOCH", "1700000000"},
		{"SSL_CERT_FILE", HostCAPath},
		{"npm_config_cafile", HostCAPath},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stepEnv =\n%v\nwant\n%v", got, want)
	}
	// An image with a config keeps its PATH; no CA, no epoch, and no Java
	// options (even when the image has some).
	got = stepEnv(&Step{Env: map[string]string{"X": "y"}}, true, false, "-Xmx1g")
	if !reflect.DeepEqual(got, []envVar{{"X", "y"}}) {
		t.Errorf("stepEnv = %v", got)
	}
	javaOpts := func(env []envVar) string {
		for _, e := range env {
			if e.Key == "JAVA_TOOL_OPTIONS" {
				return e.Value
			}
		}
		return "(unset)"
	}
	// The image's own JAVA_TOOL_OPTIONS stay, ours come last (the JVM's last
	// -D wins); a builder's explicit value replaces both.
	if got := javaOpts(stepEnv(&Step{}, true, true, "-Xmx1g -Dfile.encoding=UTF-8")); got != "-Xmx1g -Dfile.encoding=UTF-8 "+javaTrustOptions {
		t.Errorf("JAVA_TOOL_OPTIONS over an image's = %q", got)
	}
	if got := javaOpts(stepEnv(&Step{Env: map[string]string{"JAVA_TOOL_OPTIONS": "-Dmine"}}, true, true, "-Xmx1g")); got != "-Dmine" {
		t.Errorf("JAVA_TOOL_OPTIONS with Step.Env's = %q, want the step's", got)
	}
}

func TestProxyEnv(t *testing.T) {
	env := map[string]string{
		"HTTP_PROXY":  "http://upper:3128",
		"http_proxy":  "http://lower:3128",
		"https_proxy": "http://lower-s:3128",
		"no_proxy":    "localhost,.internal",
	}
	got := proxyEnv(func(k string) string { return env[k] })
	want := &llb.ProxyEnv{HTTPProxy: "http://upper:3128", HTTPSProxy: "http://lower-s:3128", NoProxy: "localhost,.internal"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("proxyEnv = %+v, want %+v", got, want)
	}
	if got := proxyEnv(func(string) string { return "" }); got != nil {
		t.Errorf("proxyEnv with nothing set = %+v, want nil", got)
	}
}

// decoded is a compiled definition, taken apart for assertions.
type decoded struct {
	exec   *pb.ExecOp
	execD  digest.Digest
	ops    map[digest.Digest]*pb.Op
	meta   map[digest.Digest]llb.OpMetadata
	source []string // source identifiers
}

func decode(t *testing.T, def *llb.Definition) decoded {
	t.Helper()
	d := decoded{ops: map[digest.Digest]*pb.Op{}, meta: def.Metadata}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		dg := digest.FromBytes(dt)
		d.ops[dg] = &op
		if e := op.GetExec(); e != nil {
			if d.exec != nil {
				t.Fatal("two exec ops")
			}
			d.exec, d.execD = e, dg
		}
		if s := op.GetSource(); s != nil {
			d.source = append(d.source, s.Identifier)
		}
	}
	if d.exec == nil {
		t.Fatal("no exec op")
	}
	return d
}

func (d decoded) mount(dest string) *pb.Mount {
	for _, m := range d.exec.Mounts {
		if m.Dest == dest {
			return m
		}
	}
	return nil
}

func testStep(t *testing.T) (*Step, string) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	src := filepath.Join(dir, "src")
	for _, d := range []string{rootfs, src} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Step{
		Name:            "compile",
		Arch:            lambda.ARM64,
		Image:           "rootfs://" + rootfs,
		Script:          "make",
		Dir:             "/src",
		Env:             map[string]string{"CFLAGS": "-O2"},
		Mounts:          []Mount{{Source: src, Target: "/src"}, {Source: token, Target: "/etc/token-as-file"}},
		Caches:          []Cache{{Key: "pip", Target: "/root/.cache/pip"}, {Key: "apt", Target: "/var/cache/apt", Locked: true}},
		Secrets:         []Secret{{ID: "npmrc", Source: token, Target: "/run/secrets/npmrc", Env: "NPM_TOKEN"}, {ID: "only-env", Source: token, Env: "ONLY"}},
		Output:          "/out",
		Dest:            filepath.Join(dir, "dest"),
		SourceDateEpoch: 1700000000,
	}, dir
}

func TestCompileRootfs(t *testing.T) {
	s, dir := testStep(t)
	caDir := filepath.Join(dir, "ca")
	proxy := &llb.ProxyEnv{HTTPSProxy: "http://proxy:3128"}
	req, err := compile(context.Background(), s, mustParse(t, s.Image), compileOpts{caDir: caDir, proxy: proxy})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, req.def)
	m := d.exec.Meta
	if want := []string{"/bin/sh", "-e", "-c", "make"}; !slices.Equal(m.Args, want) {
		t.Errorf("args = %q", m.Args)
	}
	if m.Cwd != "/src" {
		t.Errorf("cwd = %q", m.Cwd)
	}
	for _, e := range []string{"CFLAGS=-O2", "PATH=" + DefaultPath, "SOURCE_DATE_EPOCH=1700000000", "SSL_CERT_FILE=" + HostCAPath, "NODE_EXTRA_CA_CERTS=" + HostCAPath, "JAVA_TOOL_OPTIONS=" + javaTrustOptions} {
		if !slices.Contains(m.Env, e) {
			t.Errorf("env lacks %s: %q", e, m.Env)
		}
	}
	if !slices.IsSorted(m.Env) {
		t.Errorf("env is not sorted (cache keys would vary): %q", m.Env)
	}
	// Proxies go through ProxyEnv (left out of the cache key), never Env.
	if m.ProxyEnv == nil || m.ProxyEnv.HttpsProxy != "http://proxy:3128" {
		t.Errorf("proxy env = %v", m.ProxyEnv)
	}
	for _, e := range m.Env {
		if strings.Contains(strings.ToLower(e), "proxy") {
			t.Errorf("proxy variable in Env: %s", e)
		}
	}
	if o := d.exec.Mounts; len(o) == 0 || o[0].Dest != "/" {
		t.Fatalf("mounts = %v", d.exec.Mounts)
	}
	if mt := d.mount("/src"); mt == nil || !mt.Readonly {
		t.Errorf("/src mount = %v, want read-only", mt)
	}
	if mt := d.mount("/etc/token-as-file"); mt == nil || !mt.Readonly || mt.Selector != "token" {
		t.Errorf("file mount = %v, want read-only with selector token", mt)
	}
	if mt := d.mount(hostCADir); mt == nil || !mt.Readonly {
		t.Errorf("CA mount = %v, want read-only", mt)
	}
	if mt := d.mount("/root/.cache/pip"); mt == nil || mt.MountType != pb.MountType_CACHE || mt.CacheOpt.ID != "layerpack-pip-arm64" || mt.CacheOpt.Sharing != pb.CacheSharingOpt_SHARED {
		t.Errorf("pip cache mount = %v", mt)
	}
	if mt := d.mount("/var/cache/apt"); mt == nil || mt.CacheOpt.ID != "layerpack-apt-arm64" || mt.CacheOpt.Sharing != pb.CacheSharingOpt_LOCKED {
		t.Errorf("apt cache mount = %v", mt)
	}
	if mt := d.mount("/run/secrets/npmrc"); mt == nil || mt.MountType != pb.MountType_SECRET || mt.SecretOpt.ID != "npmrc" {
		t.Errorf("secret mount = %v", mt)
	}
	var envs []string
	for _, se := range d.exec.Secretenv {
		envs = append(envs, se.ID+"="+se.Name)
	}
	if want := []string{"npmrc=NPM_TOKEN", "only-env=ONLY"}; !slices.Equal(envs, want) {
		t.Errorf("secret env = %v, want %v", envs, want)
	}
	out := d.mount("/out")
	if out == nil || out.Readonly || out.Input != int64(pb.Empty) || out.Output < 0 {
		t.Errorf("output mount = %v, want a writable scratch mount with an output", out)
	}
	if d.ops[d.execD].Platform == nil || d.ops[d.execD].Platform.Architecture != "arm64" {
		t.Errorf("exec platform = %v", d.ops[d.execD].Platform)
	}
	if d.meta[d.execD].IgnoreCache {
		t.Error("IgnoreCache without NoCache")
	}
	// The locals the session must offer: the rootfs, two mounts, the CA folder.
	wantLocals := map[string]string{
		rootfsLocal(filepath.Join(dir, "rootfs")): filepath.Join(dir, "rootfs"),
		mountLocal(filepath.Join(dir, "src")):     filepath.Join(dir, "src"),
		mountLocal(filepath.Join(dir, "token")):   dir,
		hostCALocal:                               caDir,
	}
	if !reflect.DeepEqual(req.locals, wantLocals) {
		t.Errorf("locals = %v, want %v", req.locals, wantLocals)
	}
	if len(req.secrets) != 2 || req.secrets[0].FilePath != filepath.Join(dir, "token") {
		t.Errorf("secrets = %v", req.secrets)
	}
	// The rootfs is copied (content-addressed), not used as the root directly.
	var copies int
	for _, op := range d.ops {
		if f := op.GetFile(); f != nil {
			for _, a := range f.Actions {
				if a.GetCopy() != nil {
					copies++
				}
			}
		}
	}
	if copies != 1 {
		t.Errorf("%d copy actions, want 1 (the rootfs)", copies)
	}

	// NoCache marks the exec, and the same step compiles to the same exec op
	// (digest) otherwise: nothing random enters the cache key.
	again, err := compile(context.Background(), s, mustParse(t, s.Image), compileOpts{caDir: caDir, proxy: &llb.ProxyEnv{HTTPSProxy: "http://other:1"}})
	if err != nil {
		t.Fatal(err)
	}
	d2 := decode(t, again.def)
	d2.exec.Meta.ProxyEnv, d.exec.Meta.ProxyEnv = nil, nil
	if !reflect.DeepEqual(d2.exec.Meta.Env, d.exec.Meta.Env) || len(d2.exec.Mounts) != len(d.exec.Mounts) {
		t.Error("compiling the same step twice gave different execs")
	}
	s.NoCache = true
	nc, err := compile(context.Background(), s, mustParse(t, s.Image), compileOpts{})
	if err != nil {
		t.Fatal(err)
	}
	dn := decode(t, nc.def)
	if !dn.meta[dn.execD].IgnoreCache {
		t.Error("NoCache did not set IgnoreCache")
	}
	if dn.mount(hostCADir) != nil || slices.Contains(dn.exec.Meta.Env, "SSL_CERT_FILE="+HostCAPath) || slices.Contains(dn.exec.Meta.Env, "JAVA_TOOL_OPTIONS="+javaTrustOptions) {
		t.Error("CA mounted or announced without TrustHostCA")
	}
}

// fakeResolver answers image configs without a daemon.
type fakeResolver struct {
	calls []string
	env   string // extra ENV entries of the config, JSON
}

func (f *fakeResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	f.calls = append(f.calls, ref+" "+opt.ImageOpt.Platform.Architecture)
	return ref, digest.Digest("sha256:" + sixtyFourHex), []byte(`{"architecture":"arm64","os":"linux","config":{"Env":["PATH=/var/lang/bin:/usr/bin:/bin","LANG=C.UTF-8"` + f.env + `],"WorkingDir":"/var/task"}}`), nil
}

func TestCompileDockerImage(t *testing.T) {
	s, _ := testStep(t)
	s.Image = "public.ecr.aws/sam/build-python3.12:latest-arm64"
	s.Mounts, s.Secrets = nil, nil
	r := &fakeResolver{}
	req, err := compile(context.Background(), s, mustParse(t, s.Image), compileOpts{resolver: r})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, req.def)
	if want := []string{"public.ecr.aws/sam/build-python3.12:latest-arm64 arm64"}; !slices.Equal(r.calls, want) {
		t.Errorf("resolver calls = %q, want %q", r.calls, want)
	}
	// The config's ENV applies (PATH from the image, not the default) and the
	// digest is pinned.
	if !slices.Contains(d.exec.Meta.Env, "PATH=/var/lang/bin:/usr/bin:/bin") || !slices.Contains(d.exec.Meta.Env, "LANG=C.UTF-8") {
		t.Errorf("env = %q", d.exec.Meta.Env)
	}
	if want := "docker-image://public.ecr.aws/sam/build-python3.12:latest-arm64@sha256:" + sixtyFourHex; !slices.Contains(d.source, want) {
		t.Errorf("sources = %q, want %s", d.source, want)
	}
	if len(req.locals) != 0 {
		t.Errorf("locals = %v", req.locals)
	}
	for _, e := range d.exec.Meta.Env {
		if strings.HasPrefix(e, "JAVA_TOOL_OPTIONS=") {
			t.Errorf("%s without TrustHostCA", e)
		}
	}

	// With the host CA, an image's JAVA_TOOL_OPTIONS is kept and the trust
	// store options follow it; the config is still resolved once.
	r = &fakeResolver{env: `,"JAVA_TOOL_OPTIONS=-XX:+UseSerialGC"`}
	req, err = compile(context.Background(), s, mustParse(t, s.Image), compileOpts{resolver: r, caDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d = decode(t, req.def)
	if want := "JAVA_TOOL_OPTIONS=-XX:+UseSerialGC " + javaTrustOptions; !slices.Contains(d.exec.Meta.Env, want) {
		t.Errorf("env lacks %s: %q", want, d.exec.Meta.Env)
	}
	if len(r.calls) != 1 {
		t.Errorf("resolver calls = %q, want one", r.calls)
	}
}

func TestCheckStep(t *testing.T) {
	ok := func() *Step {
		return &Step{Name: "s", Arch: lambda.X86_64, Image: "rootfs:///r", Script: "true", Output: "/out", Dest: "/tmp/d"}
	}
	if err := checkStep(ok()); err != nil {
		t.Fatal(err)
	}
	for want, mod := range map[string]func(*Step){
		`step "s": Output "/" must be an absolute container folder other than /`: func(s *Step) { s.Output = "/" },
		`step "s": unknown architecture "amd64" (want x86_64 or arm64)`:          func(s *Step) { s.Arch = "amd64" },
		`step "s": mount "rel" -> "/x": both paths must be absolute`:             func(s *Step) { s.Mounts = []Mount{{Source: "rel", Target: "/x"}} },
		`step "s": secret "t": needs a target path or an environment variable`:   func(s *Step) { s.Secrets = []Secret{{ID: "t", Source: "/f"}} },
		`step "s": cache "" -> "/c": needs a key and an absolute target`:         func(s *Step) { s.Caches = []Cache{{Target: "/c"}} },
		`step "s": Dir "src" is not an absolute container path`:                  func(s *Step) { s.Dir = "src" },
		`step "s": no Dest folder`:                                               func(s *Step) { s.Dest = "" },
		`step "s": secret "a" given twice`: func(s *Step) {
			s.Secrets = []Secret{{ID: "a", Source: "/f", Env: "A"}, {ID: "a", Source: "/g", Env: "B"}}
		},
	} {
		s := ok()
		mod(s)
		if err := checkStep(s); err == nil || err.Error() != want {
			t.Errorf("checkStep = %v, want %s", err, want)
		}
	}
}

func mustParse(t *testing.T, ref string) Image {
	t.Helper()
	im, err := ParseImage(ref, "")
	if err != nil {
		t.Fatal(err)
	}
	return im
}
