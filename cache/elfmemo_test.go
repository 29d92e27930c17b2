package cache

import (
	"crypto/sha256"
	"debug/elf"
	"os"
	"reflect"
	"testing"

	"github.com/layerpack/layerpack/elfinfo"
	"github.com/layerpack/layerpack/lambda"
)

// TestELFMemoRoundTrip: what is put is what comes back, for that content only; a
// garbled record is a miss.
func TestELFMemoRoundTrip(t *testing.T) {
	c, _ := Open(t.TempDir())
	m := c.Entries().ELFMemo()
	info := &elfinfo.Info{Machine: elf.EM_AARCH64, Class: elf.ELFCLASS64, Type: elf.ET_DYN, Soname: "libz.so.1",
		Needed: []string{"libc.so.6"}, RunPath: []string{"$ORIGIN"}, MaxGLIBC: lambda.GlibcVersion{Major: 2, Minor: 34},
		GLIBCNeed: "GLIBC_2.34", GLIBCSymbol: "dlclose@GLIBC_2.34"}
	sum := sha256.Sum256([]byte("content"))
	other := sha256.Sum256([]byte("other"))
	m.Put(sum[:], info)
	got, ok := m.Get(sum[:])
	if !ok || !reflect.DeepEqual(got, info) {
		t.Fatalf("Get = %+v, %v; want %+v", got, ok, info)
	}
	if _, ok := m.Get(other[:]); ok {
		t.Fatal("another content's sum found a record")
	}
	os.WriteFile(c.Entries().path(elfKey(sum[:])), []byte(`{"Version":"elfinfo/0","Info":{}}`), 0o644)
	if _, ok := m.Get(sum[:]); ok {
		t.Fatal("a record of another elfinfo version was used")
	}
}
