package node

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/layerpack/layerpack/internal/testneed"
)

// writeFiles writes files (slash paths -> content) under dir. A content of
// "->TARGET" makes a symlink.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listFiles lists the files and symlinks under dir as sorted slash paths.
func listFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// minimalSO is the smallest file debug/elf accepts as an x86-64 shared object:
// an ELF header and nothing else. Good enough for code that only looks at the
// type (cleaning keeps shared objects).
func minimalSO() string {
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	b.Write(make([]byte, 8))
	le := binary.LittleEndian
	_ = binary.Write(&b, le, uint16(3))  // e_type ET_DYN
	_ = binary.Write(&b, le, uint16(62)) // e_machine x86-64
	_ = binary.Write(&b, le, uint32(1))  // e_version
	_ = binary.Write(&b, le, uint64(0))  // e_entry
	_ = binary.Write(&b, le, uint64(0))  // e_phoff
	_ = binary.Write(&b, le, uint64(0))  // e_shoff
	_ = binary.Write(&b, le, uint32(0))  // e_flags
	_ = binary.Write(&b, le, uint16(64)) // e_ehsize
	_ = binary.Write(&b, le, uint16(56)) // e_phentsize
	_ = binary.Write(&b, le, uint16(0))  // e_phnum
	_ = binary.Write(&b, le, uint16(64)) // e_shentsize
	_ = binary.Write(&b, le, uint16(0))  // e_shnum
	_ = binary.Write(&b, le, uint16(0))  // e_shstrndx
	return b.String()
}

// needTool skips the test when a host program is missing, unless CI is set.
func needTool(t testing.TB, name string) string {
	t.Helper()
	return testneed.Tool(t, name)
}

// run runs a command in dir and fails the test on error.
func run(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fixtureProject makes a project in a temporary folder that depends on the
// packages of testdata/node named in deps, packed with npm pack into vendor/,
// with a lockfile written by npm install --package-lock-only (local paths are
// machine-specific, so it cannot be committed). extra adds registry
// dependencies (name -> version).
//
// Projects of local packages only are made once per test binary and shared:
// tests must not change them.
func fixtureProject(t testing.TB, deps []string, extra map[string]string) string {
	t.Helper()
	if len(extra) > 0 {
		return fixtureProjectIn(t, t.TempDir(), deps, extra)
	}
	key := strings.Join(deps, ",")
	fixtures.mu.Lock()
	defer fixtures.mu.Unlock()
	if dir, ok := fixtures.dirs[key]; ok {
		return dir
	}
	if fixtures.root == "" {
		root, err := os.MkdirTemp("", "layerpack-node-fixtures-")
		if err != nil {
			t.Fatal(err)
		}
		fixtures.root = root
	}
	dir := filepath.Join(fixtures.root, fmt.Sprint(len(fixtures.dirs)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fixtureProjectIn(t, dir, deps, extra)
	fixtures.dirs[key] = dir
	return dir
}

var fixtures = struct {
	mu   sync.Mutex
	root string
	dirs map[string]string
}{dirs: map[string]string{}}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtures.root != "" {
		os.RemoveAll(fixtures.root)
	}
	os.Exit(code)
}

// fixtureProjectIn is fixtureProject in a given folder.
func fixtureProjectIn(t testing.TB, dir string, deps []string, extra map[string]string) string {
	t.Helper()
	needTool(t, "npm")
	vendor := filepath.Join(dir, "vendor")
	if err := os.MkdirAll(vendor, 0o755); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{}
	for _, d := range deps {
		src, err := filepath.Abs(filepath.Join("..", "..", "testdata", "node", d))
		if err != nil {
			t.Fatal(err)
		}
		out := strings.TrimSpace(run(t, dir, "npm", "pack", "--silent", src, "--pack-destination", vendor))
		lines := strings.Split(out, "\n")
		tgz := lines[len(lines)-1]
		name := strings.TrimSuffix(tgz, ".tgz")
		name = name[:strings.LastIndex(name, "-")]
		all[name] = "file:vendor/" + tgz
	}
	for k, v := range extra {
		all[k] = v
	}
	var b strings.Builder
	b.WriteString(`{"name":"fixture-app","version":"1.0.0","private":true,"dependencies":{`)
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + k + `":"` + all[k] + `"`)
	}
	b.WriteString("}}\n")
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
	return dir
}
