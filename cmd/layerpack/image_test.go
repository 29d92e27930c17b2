package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/layerpack/layerpack/internal/registrytest"
)

// TestImageScript runs testdata/image/*.txtar: `layerpack image` for real, with
// the commands those scripts need besides the common ones (a real registry, zips
// made by hand, an image lister).
func TestImageScript(t *testing.T) {
	p := scriptParams(t, "../../testdata/image")
	setup := p.Setup
	p.Setup = func(e *testscript.Env) error {
		e.Setenv("LAYERPACK_TEST_REGISTRY", os.Getenv("LAYERPACK_TEST_REGISTRY"))
		e.Setenv("DOCKER_CONFIG", filepath.Join(e.WorkDir, ".docker")) // not the machine's credentials
		e.Setenv("GITHUB_OUTPUT", "")
		return setup(e)
	}
	cond := p.Condition
	p.Condition = func(c string) (bool, error) {
		if c == "registry" {
			ok := os.Getenv("LAYERPACK_TEST_REGISTRY") != ""
			if !ok && os.Getenv("CI") != "" {
				t.Fatal("CI is set but LAYERPACK_TEST_REGISTRY is not: scripts/testenv.d/registry.sh installs docker-registry")
			}
			return ok, nil
		}
		return cond(c)
	}
	p.Cmds["mkzip"] = cmdMkzip
	p.Cmds["ocils"] = cmdOcils
	p.Cmds["registry"] = cmdRegistry
	testscript.Run(t, p)
}

// registry [USER:PASS] starts docker-registry on a free loopback port (with
// htpasswd auth for USER when given) and sets $REGISTRY to its host:port; it is
// stopped when the script ends.
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	o := registrytest.Options{}
	if len(args) == 1 {
		u, p, _ := strings.Cut(args[0], ":")
		o.Users = map[string]string{u: p}
	}
	dir := ts.MkAbs(".registry-" + fmt.Sprint(time.Now().UnixNano()))
	ts.Check(os.MkdirAll(dir, 0o755))
	r, stop, err := registrytest.StartIn(dir, ts.Getenv("LAYERPACK_TEST_REGISTRY"), o)
	ts.Check(err)
	ts.Defer(stop)
	ts.Setenv("REGISTRY", r.Host)
}

// mkzip OUT ENTRY... writes a zip by hand, for zips layerpack would never make:
// "name=content" (a file, 0644), "name*=content" (0755), "name/" (a folder),
// "name->target" (a symlink). Names are taken as given, "../x" too.
func cmdMkzip(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: mkzip OUT ENTRY...")
	}
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	zw := zip.NewWriter(f)
	for _, a := range args[1:] {
		h := &zip.FileHeader{Method: zip.Deflate, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)}
		body := ""
		switch {
		case strings.Contains(a, "->"):
			n, t, _ := strings.Cut(a, "->")
			h.Name, body = n, t
			h.SetMode(fs.ModeSymlink | 0o777)
		case strings.Contains(a, "*="):
			h.Name, body, _ = strings.Cut(a, "*=")
			h.SetMode(0o755)
		case strings.Contains(a, "="):
			h.Name, body, _ = strings.Cut(a, "=")
			h.SetMode(0o644)
		case strings.HasSuffix(a, "/"):
			h.Name = a
			h.SetMode(fs.ModeDir | 0o755)
		default:
			ts.Fatalf("mkzip: bad entry %q", a)
		}
		w, err := zw.CreateHeader(h)
		ts.Check(err)
		_, err = io.WriteString(w, body)
		ts.Check(err)
	}
	ts.Check(zw.Close())
	ts.Check(f.Close())
}

// ocils LAYOUT prints an OCI layout's image index: per image its platform, config
// (created, entrypoint, labels) and layer tar (type, mode, owner, mtime, name).
func cmdOcils(ts *testscript.TestScript, neg bool, args []string) {
	dir := ts.MkAbs(args[0])
	blob := func(d fmt.Stringer, v any) []byte {
		enc := strings.TrimPrefix(d.String(), "sha256:")
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", enc))
		ts.Check(err)
		if v != nil {
			ts.Check(json.Unmarshal(b, v))
		}
		return b
	}
	var top, idx v1.Index
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	ts.Check(err)
	ts.Check(json.Unmarshal(b, &top))
	if len(top.Manifests) != 1 {
		ts.Fatalf("index.json has %d entries", len(top.Manifests))
	}
	fmt.Fprintf(ts.Stdout(), "index %s tag %s\n", top.Manifests[0].Digest, top.Manifests[0].Annotations[v1.AnnotationRefName])
	blob(top.Manifests[0].Digest, &idx)
	for _, md := range idx.Manifests {
		var m v1.Manifest
		var cfg v1.Image
		blob(md.Digest, &m)
		blob(m.Config.Digest, &cfg)
		p := md.Platform
		fmt.Fprintf(ts.Stdout(), "image %s/%s%s created %s entrypoint %q cmd %q\n", p.OS, p.Architecture,
			map[bool]string{true: "/" + p.Variant}[p.Variant != ""], cfg.Created.UTC().Format(time.RFC3339), cfg.Config.Entrypoint, cfg.Config.Cmd)
		var keys []string
		for k := range cfg.Config.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(ts.Stdout(), "  label %s=%s\n", k, cfg.Config.Labels[k])
		}
		for _, l := range m.Layers {
			zr, err := gzip.NewReader(strings.NewReader(string(blob(l.Digest, nil))))
			ts.Check(err)
			tr := tar.NewReader(zr)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				ts.Check(err)
				link := ""
				if h.Linkname != "" {
					link = " -> " + h.Linkname
				}
				fmt.Fprintf(ts.Stdout(), "  %c %04o %d:%d%s%s %s %s%s\n", h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname,
					h.ModTime.UTC().Format(time.RFC3339), h.Name, link)
			}
		}
	}
}
