package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/manifest"
)

// The hostile-input suite: projects a careless or malicious repository could
// contain, built for real (files layers, no daemon). Every case asserts the exact
// exit code, the message that explains it, and that nothing outside the project's
// output and cache folders changed: the user's sources included.

// tree is a project layout: slash path -> content; "->T" makes a symlink to T,
// "<fifo>" a named pipe, "<socket>" a socket, "<dir>" an empty folder.
type tree map[string]string

type hostileCase struct {
	name  string
	files tree   // under root/project
	outer tree   // under root, beside the project (victims, link targets)
	cfg   string // layerpack.toml
	args  []string
	// prepare runs after the files are written and before the build.
	prepare func(t *testing.T, root string)
	code    int
	stderr  []string // substrings, each must appear
	stdout  []string
	// check inspects the outcome (the zip, the manifest); may be nil.
	check func(t *testing.T, root string)
	// mayChange lists root-relative paths besides project/dist and cache that the
	// build may write (a custom output folder).
	mayChange []string
}

const filesLayer = `[defaults]
architectures = ["x86_64"]
[layer.a]
compatible_runtimes = ["provided.al2023"]
`

func TestHostileInputs(t *testing.T) {
	cases := []hostileCase{
		{
			name:  "same path written twice, second with a mode: source never truncated",
			files: tree{"s/tool": "#!/bin/sh\necho hi\n"},
			cfg: filesLayer + `[[layer.a.files]]
src = "s"
dest = "bin"
[[layer.a.files]]
src = "s"
dest = "bin"
mode = "0755"
`,
			code:   1,
			stderr: []string{"layer.a.files[1] (s): bin/tool is also written by layer.a.files[0] (s); two entries may not write one path"},
		},
		{
			name: "symlink chain plus an overlapping entry cannot write outside the project",
			files: tree{
				"tree/lib/d1/d2/d3/d4/d5/d6/l": "->../../../../../../..",
				"tree/lib/x":                   "->d1/d2/d3/d4/d5/d6/l/../../../../../victim.txt",
				"payload/lib/x":                "owned\n",
			},
			cfg: filesLayer + `[[layer.a.files]]
src = "tree"
[[layer.a.files]]
src = "payload"
`,
			code:   1,
			stderr: []string{"layer.a.files[0] (tree): lib/x is a symlink to d1/d2/d3/d4/d5/d6/l/../../../../../victim.txt, outside tree (through other links it leaves the folder)"},
			check:  noFile("victim.txt", "../victim.txt", "../../victim.txt"),
		},
		{
			name:  "an in-tree link that a second entry would write through",
			files: tree{"tree/lib": "->sub", "tree/sub/keep": "k", "payload/lib/x": "owned\n"},
			cfg: filesLayer + `[[layer.a.files]]
src = "tree"
[[layer.a.files]]
src = "payload"
`,
			code:   1,
			stderr: []string{"layer.a.files[1] (payload): lib in the layer is a symlink (written by layer.a.files[0] (tree)); refusing to write through it"},
		},
		{
			name:   "absolute symlink in a source folder",
			files:  tree{"s/passwd": "->/etc/passwd"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\n",
			code:   1,
			stderr: []string{"layer.a.files[0] (s): passwd is a symlink to /etc/passwd, outside s"},
		},
		{
			name:   "relative symlink leaving the source folder",
			files:  tree{"s/up": "->../../x"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\n",
			code:   1,
			stderr: []string{"layer.a.files[0] (s): up is a symlink to ../../x, outside s"},
		},
		{
			name:   "named pipe in a source folder",
			files:  tree{"s/pipe": "<fifo>"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\n",
			code:   1,
			stderr: []string{"s/pipe is not a regular file, folder or symlink"},
		},
		{
			name:   "socket in a source folder",
			files:  tree{"s/sock": "<socket>"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\n",
			code:   1,
			stderr: []string{"s/sock is not a regular file, folder or symlink"},
		},
		{
			name:  "a file entry cannot replace a folder another entry made",
			files: tree{"t1/lib/x/y": "y", "t2/lib/x": "x"},
			cfg: filesLayer + `[[layer.a.files]]
src = "t1"
[[layer.a.files]]
src = "t2"
`,
			code:   1,
			stderr: []string{"layer.a.files[1] (t2): lib/x in the layer is a folder; a file cannot replace it"},
		},
		{
			name:  "a folder entry cannot go through a file another entry made",
			files: tree{"t1/lib": "file", "t2/lib/x": "x"},
			cfg: filesLayer + `[[layer.a.files]]
src = "t1"
[[layer.a.files]]
src = "t2"
`,
			code:   1,
			stderr: []string{"layer.a.files[1] (t2): lib in the layer is a file (written by layer.a.files[0] (t1)), not a folder"},
		},
		{
			name:  "disjoint entries merge into one folder",
			files: tree{"t1/lib/a": "a", "t2/lib/b": "b"},
			cfg: filesLayer + `[[layer.a.files]]
src = "t1"
[[layer.a.files]]
src = "t2"
`,
			code:  0,
			check: zipHas("lib/a", "lib/b"),
		},
		{
			name:  "forced mode leaves the user's file alone",
			files: tree{"s/tool": "#!/bin/sh\n"},
			cfg:   filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"bin\"\nmode = \"0755\"\n",
			code:  0,
			check: func(t *testing.T, root string) {
				st, err := os.Stat(filepath.Join(root, "project/s/tool"))
				if err != nil || st.Mode().Perm() != 0o644 {
					t.Errorf("source mode = %v, %v; want 0644 untouched", st.Mode(), err)
				}
				zipHas("bin/tool")(t, root)
			},
		},
		{
			name:  "a hard link to a file outside the project is read, never written",
			outer: tree{"outside.txt": "outside\n"},
			prepare: func(t *testing.T, root string) {
				os.MkdirAll(filepath.Join(root, "project/s"), 0o755)
				if err := os.Link(filepath.Join(root, "outside.txt"), filepath.Join(root, "project/s/hl")); err != nil {
					t.Fatal(err)
				}
			},
			cfg:   filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib/x\"\nmode = \"0755\"\n",
			code:  0,
			check: zipHas("lib/hl", "lib/x/hl"),
		},
		{
			name:    "a src that is a symlink to a file packages the file",
			files:   tree{"real/tool": "content\n", "tool-link": "->real/tool"},
			prepare: func(t *testing.T, root string) { os.Chmod(filepath.Join(root, "project/real/tool"), 0o755) },
			cfg:     filesLayer + "[[layer.a.files]]\nsrc = \"tool-link\"\ndest = \"bin\"\n",
			code:    0,
			check: func(t *testing.T, root string) {
				zr := openZip(t, root)
				for _, f := range zr.File {
					if f.Name == "bin/tool-link" {
						if f.Mode()&fs.ModeSymlink != 0 {
							t.Fatal("bin/tool-link was zipped as a symlink")
						}
						return
					}
				}
				t.Fatal("bin/tool-link is not in the zip")
			},
		},
		{
			name:  "a src that is a symlink to a folder is hashed by content",
			files: tree{"realdir/f": "one\n", "linkdir": "->realdir"},
			cfg:   filesLayer + "[[layer.a.files]]\nsrc = \"linkdir\"\ndest = \"lib\"\n",
			code:  0,
			check: func(t *testing.T, root string) {
				first := zipSha(t, root)
				if err := os.WriteFile(filepath.Join(root, "project/realdir/f"), []byte("two\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				code, out, errb := runIn(root, "build", "-c", filepath.Join(root, "project/layerpack.toml"), "--cache-dir", filepath.Join(root, "cache"), "--progress", "quiet")
				if code != 0 || strings.Contains(out, "(cached)") {
					t.Fatalf("edit under the link target came back cached or failed: %d\n%s%s", code, out, errb)
				}
				if zipSha(t, root) == first {
					t.Fatal("zip unchanged after editing the link target")
				}
			},
		},
		{
			name:   "a src symlink that leaves the project",
			outer:  tree{"secret/k": "k"},
			files:  tree{"out": "->../secret"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"out\"\n",
			code:   2,
			stderr: []string{"layer.a.files[0].src: \"out\" resolves to ", "outside the config file's folder (through a symlink)"},
		},
		{
			name:   "a dangling src symlink",
			files:  tree{"gone": "->nowhere"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"gone\"\n",
			code:   2,
			stderr: []string{"layer.a.files[0].src: \"gone\" does not exist"},
		},
		{
			name:   "src with ..",
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"../x\"\n",
			code:   2,
			stderr: []string{"layer.a.files[0].src: \"../x\" leaves the config file's folder"},
		},
		{
			name:   "absolute src",
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"/etc\"\n",
			code:   2,
			stderr: []string{"layer.a.files[0].src: \"/etc\" must be relative to the config file's folder, not absolute"},
		},
		{
			name:   "dest that leaves the layer",
			files:  tree{"s/f": "f"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"../../etc\"\n",
			code:   2,
			stderr: []string{"layer.a.files[0].dest: \"../../etc\" must be a relative path inside the layer"},
		},
		{
			name:   "absolute dest",
			files:  tree{"s/f": "f"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"/opt/bin\"\n",
			code:   2,
			stderr: []string{"layer.a.files[0].dest: \"/opt/bin\" must be a relative path inside the layer"},
		},
		{
			name:   "backslash dest",
			files:  tree{"s/f": "f"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = 'bin\\..\\..'\n",
			code:   2,
			stderr: []string{"layer.a.files[0].dest: \"bin\\\\..\\\\..\" must be a relative path inside the layer"},
		},
		{
			name:   "layer name with a slash",
			files:  tree{"s/f": "f"},
			cfg:    "[layer.\"a/../../b\"]\ncompatible_runtimes = [\"provided.al2023\"]\n[[layer.\"a/../../b\".files]]\nsrc = \"s\"\n",
			code:   2,
			stderr: []string{"layerpack.toml:2: layer.a/../../b: bad layer name \"a/../../b\""},
		},
		{
			name:   "bad glob",
			files:  tree{"s/f": "f"},
			cfg:    filesLayer + "exclude = [\"[\"]\n[[layer.a.files]]\nsrc = \"s\"\n",
			code:   2,
			stderr: []string{"layer.a.exclude[0]: bad glob pattern \"[\""},
		},
		{
			name:   "a world-unreadable mode",
			files:  tree{"s/f": "f"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\nmode = \"0700\"\n",
			code:   2,
			stderr: []string{"layer.a.files[0].mode: \"0700\" is not world-readable"},
		},
		{
			name:  "version control folders are never packaged",
			files: tree{"s/.git/config": "[core]\n", "s/.git/objects/ab/cd": "x", "s/.hg/store": "x", "s/sub/.svn/entries": "x", "s/keep": "k"},
			cfg:   filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:  0,
			check: func(t *testing.T, root string) {
				zipHas("lib/keep")(t, root)
				zipLacks("lib/.git/config", "lib/.git/", "lib/.hg/store", "lib/sub/.svn/entries")(t, root)
			},
		},
		{
			name:   ".env is refused, naming the file and the key to allow it",
			files:  tree{"s/.env": "DB_PASSWORD=hunter2\n", "s/ok": "x"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:   1,
			stderr: []string{`"lib/.env" looks like credentials`, `allow it with allow_secrets = ["lib/.env"]`},
			check:  noFile("project/dist/a-x86_64.zip"),
		},
		{
			name:   "an .npmrc with a token is refused",
			files:  tree{"s/.npmrc": "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnop\n"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:   1,
			stderr: []string{`"lib/.npmrc" looks like credentials`},
		},
		{
			name:   "a private key is refused by its content",
			files:  tree{"s/.ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:   1,
			stderr: []string{`"lib/.ssh/id_rsa" looks like credentials`},
		},
		{
			name:   "AWS credentials are refused",
			files:  tree{"s/.aws/credentials": "[default]\naws_access_key_id = AKIAABCDEFGHIJKLMNOP\naws_secret_access_key = abc\n"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:   1,
			stderr: []string{`"lib/.aws/credentials" looks like credentials`},
		},
		{
			name:   "a *.pem private key is refused, a certificate is not",
			files:  tree{"s/server.pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n", "s/ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:   1,
			stderr: []string{`"lib/server.pem" looks like credentials`},
		},
		{
			name:  "allow_secrets lets a named file through",
			files: tree{"s/.env": "DB_PASSWORD=hunter2\n", "s/test-key.pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"},
			cfg: "[defaults]\narchitectures = [\"x86_64\"]\n[layer.a]\ncompatible_runtimes = [\"provided.al2023\"]\nallow_secrets = [\"lib/.env\", \"lib/*.pem\"]\n" +
				"[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:  0,
			check: zipHas("lib/.env", "lib/test-key.pem"),
		},
		{
			name:  "a .env template is not a secret",
			files: tree{"s/.env.example": "DB_PASSWORD=\n"},
			cfg:   filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:  0,
			check: zipHas("lib/.env.example"),
		},
		{
			name:   "a bad allow_secrets pattern",
			files:  tree{"s/f": "f"},
			cfg:    filesLayer + "allow_secrets = [\"a[\"]\n[[layer.a.files]]\nsrc = \"s\"\n",
			code:   2,
			stderr: []string{"layer.a.allow_secrets[0]: bad glob pattern \"a[\""},
		},
		{
			name:   "names that differ only in case are a warning",
			files:  tree{"s/README": "a", "s/readme": "b"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:   0,
			stderr: []string{"warning: a (x86_64):", "case"},
		},
		{
			name:  "a very long path builds",
			files: tree{strings.Repeat("d123456789/", 30) + "f": "x"},
			cfg:   filesLayer + "[[layer.a.files]]\nsrc = \"d123456789\"\ndest = \"lib\"\n",
			code:  0,
		},
		{
			name:   "a non-UTF-8 name is refused: a zip cannot say which encoding it is in",
			files:  tree{"s/caf\xe9": "x"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			code:   1,
			stderr: []string{`zipper: entry "lib/caf\xe9": name is not valid UTF-8`},
		},
		{
			name:      "--out is a file",
			files:     tree{"s/f": "f", "outfile": "x"},
			cfg:       filesLayer + "[[layer.a.files]]\nsrc = \"s\"\n",
			args:      []string{"--out", "{root}/project/outfile"},
			code:      1,
			stderr:    []string{"output folder ", "outfile is a file, not a folder"},
			mayChange: []string{"project/outfile"},
		},
		{
			name:      "--out under a file",
			files:     tree{"s/f": "f", "outfile": "x"},
			cfg:       filesLayer + "[[layer.a.files]]\nsrc = \"s\"\n",
			args:      []string{"--out", "{root}/project/outfile/sub"},
			code:      1,
			stderr:    []string{"outfile is a file, not a folder"},
			mayChange: []string{"project/outfile"},
		},
		{
			name:   "out_dir names the config file",
			files:  tree{"s/f": "f"},
			cfg:    "[defaults]\narchitectures = [\"x86_64\"]\nout_dir = \"layerpack.toml\"\n[layer.a]\ncompatible_runtimes = [\"provided.al2023\"]\n[[layer.a.files]]\nsrc = \"s\"\n",
			code:   1,
			stderr: []string{"layerpack.toml is a file, not a folder"},
		},
		{
			name:   "the manifest path is a folder",
			files:  tree{"s/f": "f", "dist/layerpack-manifest.json/x": "x"},
			cfg:    filesLayer + "[[layer.a.files]]\nsrc = \"s\"\n",
			code:   1,
			stderr: []string{"layerpack-manifest.json is a folder; remove it or choose another output folder"},
		},
		{
			name:   "-c /dev/zero",
			args:   []string{"-c", "/dev/zero"},
			code:   2,
			stderr: []string{"/dev/zero: is a device, not a regular file"},
		},
		{
			name:   "-c a named pipe",
			files:  tree{"fifo.toml": "<fifo>"},
			args:   []string{"-c", "{root}/project/fifo.toml"},
			code:   2,
			stderr: []string{"fifo.toml: is a named pipe (FIFO), not a regular file"},
		},
		{
			name:   "-c a folder",
			files:  tree{"d/x": "x"},
			args:   []string{"-c", "{root}/project/d"},
			code:   2,
			stderr: []string{"d: is a folder, not a config file"},
		},
		{
			name:   "a config too large to be real",
			files:  tree{"big.toml": strings.Repeat("# padding\n", 500000)},
			args:   []string{"-c", "{root}/project/big.toml"},
			code:   2,
			stderr: []string{"big.toml: is larger than 4194304 bytes"},
		},
		{
			name: "thousands of unknown keys print a screenful",
			cfg: func() string {
				var b strings.Builder
				b.WriteString(filesLayer + "[[layer.a.files]]\nsrc = \"s\"\n")
				for i := range 5000 {
					fmt.Fprintf(&b, "k%d = 1\n", i)
				}
				return b.String()
			}(),
			files:  tree{"s/f": "f"},
			code:   2,
			stderr: []string{"and 4950 more errors"},
		},
		{
			name:  "a killed run's temp files are swept, a live one's kept",
			files: tree{"s/f": "f"},
			cfg:   filesLayer + "[[layer.a.files]]\nsrc = \"s\"\ndest = \"lib\"\n",
			prepare: func(t *testing.T, root string) {
				dist := filepath.Join(root, "project/dist")
				os.MkdirAll(dist, 0o755)
				os.WriteFile(filepath.Join(dist, ".a-x86_64.zip.tmp-p"+strconv.Itoa(deadPid(t))+"-1"), make([]byte, 1<<20), 0o600)
				os.WriteFile(filepath.Join(dist, ".a-x86_64.zip.tmp-p"+strconv.Itoa(os.Getppid())+"-2"), nil, 0o600)
				tmp := filepath.Join(root, "cache/tmp")
				os.MkdirAll(filepath.Join(tmp, "build-a-x86_64.tmp-p"+strconv.Itoa(deadPid(t))+"-3/stage"), 0o755)
			},
			code: 0,
			check: func(t *testing.T, root string) {
				names := func(dir string) []string {
					ents, _ := os.ReadDir(dir)
					var n []string
					for _, e := range ents {
						n = append(n, e.Name())
					}
					return n
				}
				got := strings.Join(names(filepath.Join(root, "project/dist")), " ")
				want := ".a-x86_64.zip.tmp-p" + strconv.Itoa(os.Getppid()) + "-2 a-x86_64.cdx.json a-x86_64.zip layerpack-manifest.json"
				if got != want {
					t.Errorf("dist holds %q, want %q", got, want)
				}
				if n := names(filepath.Join(root, "cache/tmp")); len(n) != 0 {
					t.Errorf("cache/tmp holds %v after the build", n)
				}
			},
		},
		{
			name: "partial failure: the manifest agrees with the zips",
			files: tree{
				"a/f": "a1", "b/f": "b1",
			},
			cfg: `[defaults]
architectures = ["x86_64"]
[layer.a]
compatible_runtimes = ["provided.al2023"]
[[layer.a.files]]
src = "a"
dest = "lib"
[layer.b]
compatible_runtimes = ["provided.al2023"]
[[layer.b.files]]
src = "b"
dest = "lib"
`,
			code: 0,
			check: func(t *testing.T, root string) {
				// Second run: a changes, b breaks (a FIFO appears in its source).
				os.WriteFile(filepath.Join(root, "project/a/f"), []byte("a2"), 0o644)
				if err := syscall.Mkfifo(filepath.Join(root, "project/b/pipe"), 0o644); err != nil {
					t.Fatal(err)
				}
				code, _, errb := runIn(root, "build", "-c", filepath.Join(root, "project/layerpack.toml"), "--cache-dir", filepath.Join(root, "cache"), "--progress", "quiet")
				if code != 1 || !strings.Contains(errb, "layer b (x86_64): hashing input files[0]:b") || !strings.Contains(errb, "b/pipe is not a regular file") {
					t.Fatalf("exit %d, stderr:\n%s", code, errb)
				}
				m, err := manifest.Read(filepath.Join(root, "project/dist", manifest.FileName))
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Layers) != 2 {
					t.Fatalf("manifest has %d entries, want a (new) and b (old, untouched zip)", len(m.Layers))
				}
				for _, l := range m.Layers {
					got, err := codeSha(filepath.Join(root, "project/dist", l.File))
					if err != nil || got != l.CodeSha256 {
						t.Errorf("manifest says %s for %s, the zip beside it is %s (%v)", l.CodeSha256, l.File, got, err)
					}
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t) })
	}
}

func (c hostileCase) run(t *testing.T) {
	root := t.TempDir()
	proj := filepath.Join(root, "project")
	os.MkdirAll(proj, 0o755)
	writeTree(t, root, c.outer)
	writeTree(t, proj, c.files)
	if c.cfg != "" {
		if err := os.WriteFile(filepath.Join(proj, "layerpack.toml"), []byte(c.cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if c.prepare != nil {
		c.prepare(t, root)
	}
	skip := map[string]bool{"project/dist": true, "cache": true}
	for _, p := range c.mayChange {
		skip[p] = true
	}
	before := snapshot(t, root, skip)
	args := []string{"build"}
	hasC := false
	for _, a := range c.args {
		hasC = hasC || a == "-c"
		args = append(args, strings.ReplaceAll(a, "{root}", root))
	}
	if !hasC {
		args = append(args, "-c", filepath.Join(proj, "layerpack.toml"))
	}
	args = append(args, "--cache-dir", filepath.Join(root, "cache"), "--progress", "quiet")
	code, stdout, stderr := runIn(root, args...)
	if code != c.code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
	}
	if code != 0 && strings.TrimSpace(stderr) == "" {
		t.Fatalf("exit %d with nothing on stderr", code)
	}
	for _, s := range c.stderr {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
	for _, s := range c.stdout {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	if after := snapshot(t, root, skip); after != before {
		t.Errorf("the build changed files outside its output and cache folders:\n%s", diffSnap(before, after))
	}
	if c.check != nil {
		c.check(t, root)
	}
}

func runIn(root string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeTree(t *testing.T, dir string, files tree) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		content := files[name]
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], p)
		case content == "<fifo>":
			err = syscall.Mkfifo(p, 0o644)
		case content == "<dir>":
			err = os.MkdirAll(p, 0o755)
		case content == "<socket>":
			var l net.Listener
			l, err = net.Listen("unix", p)
			if err == nil {
				l.(*net.UnixListener).SetUnlinkOnClose(false)
				l.Close()
			}
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot is one line per path under root (but the skipped subtrees): type, mode,
// size, content hash or link text, so any write, chmod or new file shows.
func snapshot(t *testing.T, root string, skip map[string]bool) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if skip[rel] {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		line := fmt.Sprintf("%s %v %d", rel, info.Mode(), info.Size())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case info.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			line += " " + hex.EncodeToString(sum[:8])
		}
		lines = append(lines, line)
		return nil
	})
	// A victim one or two levels above the temp root must not appear either.
	for _, up := range []string{"..", "../.."} {
		if _, err := os.Lstat(filepath.Join(root, up, "victim.txt")); err == nil {
			lines = append(lines, up+"/victim.txt exists")
		}
	}
	return strings.Join(lines, "\n")
}

func diffSnap(a, b string) string {
	as, bs := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		as[l] = true
	}
	for _, l := range strings.Split(b, "\n") {
		bs[l] = true
	}
	var out []string
	for l := range as {
		if !bs[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range bs {
		if !as[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func openZip(t *testing.T, root string) *zip.ReadCloser {
	t.Helper()
	zr, err := zip.OpenReader(filepath.Join(root, "project/dist/a-x86_64.zip"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zr.Close() })
	return zr
}

func zipNames(t *testing.T, root string) map[string]bool {
	names := map[string]bool{}
	for _, f := range openZip(t, root).File {
		names[f.Name] = true
	}
	return names
}

func zipHas(names ...string) func(*testing.T, string) {
	return func(t *testing.T, root string) {
		t.Helper()
		have := zipNames(t, root)
		for _, n := range names {
			if !have[n] {
				t.Errorf("zip lacks %s (has %v)", n, have)
			}
		}
	}
}

func zipLacks(names ...string) func(*testing.T, string) {
	return func(t *testing.T, root string) {
		t.Helper()
		have := zipNames(t, root)
		for _, n := range names {
			if have[n] {
				t.Errorf("zip holds %s", n)
			}
		}
	}
}

func noFile(rels ...string) func(*testing.T, string) {
	return func(t *testing.T, root string) {
		for _, r := range rels {
			if _, err := os.Lstat(filepath.Join(root, r)); err == nil {
				t.Errorf("%s was written", r)
			}
		}
	}
}

func zipSha(t *testing.T, root string) string {
	s, err := codeSha(filepath.Join(root, "project/dist/a-x86_64.zip"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func codeSha(p string) (string, error) { return lambda.FileCodeSha256(p) }

// deadPid is the id of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	p.Wait()
	return p.Pid
}
