package verify

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/internal/elffixture"
	"github.com/layerpack/layerpack/lambda"
)

// file is one entry of a test zip. Mode 0 means 0644 for files and 0755 for
// folders (names ending in "/").
type file struct {
	name string
	mode fs.FileMode
	data string
}

func zipBytes(t testing.TB, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range files {
		fh := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
			if strings.HasSuffix(f.name, "/") {
				mode = fs.ModeDir | 0o755
			}
		}
		fh.SetMode(mode)
		if mode.IsDir() {
			fh.Method = zip.Store
		}
		fw, err := w.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipReader(t *testing.T, files ...file) *zip.Reader {
	t.Helper()
	b := zipBytes(t, files...)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

// jar makes the bytes of a jar holding files.
func jar(t testing.TB, files ...file) string {
	return string(zipBytes(t, files...))
}

// elfHeader is a bare ELF header: enough for the machine check.
func elfHeader(typ elf.Type, m elf.Machine) string {
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(typ), Machine: uint16(m), Version: 1, Ehsize: 64, Phentsize: 56, Shentsize: 64}
	copy(h.Ident[:], "\x7fELF\x02\x01\x01")
	binary.Write(&b, binary.LittleEndian, h)
	return b.String()
}

func x86so() string   { return elfHeader(elf.ET_DYN, elf.EM_X86_64) }
func arm64so() string { return elfHeader(elf.ET_DYN, elf.EM_AARCH64) }

func runtimes(t *testing.T, ids ...string) []lambda.Runtime {
	t.Helper()
	var rts []lambda.Runtime
	for _, id := range ids {
		rt, ok := lambda.LookupRuntime(id)
		if !ok {
			t.Fatalf("unknown runtime %s", id)
		}
		rts = append(rts, rt)
	}
	return rts
}

// messages renders findings as "error: check: entry: message" lines.
func messages(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Severity.String() + " " + f.Check + " [" + f.Entry + "] " + f.Message + "\n")
	}
	return b.String()
}

func check(t *testing.T, opt Options, files ...file) Report {
	t.Helper()
	rep, err := Reader(zipReader(t, files...), opt)
	if err != nil {
		t.Fatalf("Reader: %v", err)
	}
	return rep
}

// compile returns the bytes of a C program or library that cc makes from src: a
// committed fixture (internal/elffixture), so no cross compiler is needed.
func compile(t *testing.T, cc, src string, args ...string) string {
	t.Helper()
	b, err := os.ReadFile(elffixture.Compile(t, "testdata/elf", cc, "out", src, args...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
