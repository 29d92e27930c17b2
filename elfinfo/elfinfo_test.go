package elfinfo

import (
	"bytes"
	"debug/elf"
	"os"
	"reflect"
	"testing"

	"github.com/layerpack/layerpack/internal/elffixture"
	"github.com/layerpack/layerpack/lambda"
)

const mainC = `#include <stdio.h>
int main(void) { puts("hi"); return 0; }
`

// build returns the path of the binary cc makes from the C source src: a
// committed fixture (internal/elffixture), so no cross compiler is needed.
func build(t *testing.T, cc, name, src string, args ...string) string {
	t.Helper()
	return elffixture.Compile(t, "testdata/elf", cc, name, src, args...)
}

func inspectFile(t *testing.T, path string) *Info {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := Inspect(f)
	if err != nil {
		t.Fatalf("Inspect(%s): %v", path, err)
	}
	return info
}

func TestInspectPrograms(t *testing.T) {
	// The expected versions are what `objdump -T` shows for these programs on
	// Debian 12 (glibc 2.36, gcc 12). A normal build references
	// __libc_start_main@GLIBC_2.34 since glibc 2.34.
	tests := []struct {
		name string
		cc   string
		src  string
		args []string
		want Info
	}{
		{
			name: "x86_64",
			cc:   "gcc",
			src:  mainC,
			want: Info{
				Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Type: elf.ET_DYN,
				Interp:   "/lib64/ld-linux-x86-64.so.2",
				Needed:   []string{"libc.so.6"},
				MaxGLIBC: lambda.GlibcVersion{Major: 2, Minor: 34}, GLIBCNeed: "GLIBC_2.34",
				GLIBCSymbol: "__libc_start_main@GLIBC_2.34",
			},
		},
		{
			// Needs GLIBC_2.2.5, GLIBC_2.4 (__stack_chk_fail) and GLIBC_2.34: a string
			// comparison would pick 2.4.
			name: "numeric order",
			cc:   "gcc",
			src: `#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) { char buf[64]; strcpy(buf, argv[0]); puts(buf); return 0; }
`,
			args: []string{"-fstack-protector-all"},
			want: Info{
				Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Type: elf.ET_DYN,
				Interp:   "/lib64/ld-linux-x86-64.so.2",
				Needed:   []string{"libc.so.6"},
				MaxGLIBC: lambda.GlibcVersion{Major: 2, Minor: 34}, GLIBCNeed: "GLIBC_2.34",
				GLIBCSymbol: "__libc_start_main@GLIBC_2.34",
			},
		},
		{
			// arc4random arrived in glibc 2.36: newer than any Lambda runtime.
			name: "recent symbol",
			cc:   "gcc",
			src: `#include <stdio.h>
#include <stdlib.h>
int main(void) { printf("%u\n", arc4random()); return 0; }
`,
			want: Info{
				Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Type: elf.ET_DYN,
				Interp:   "/lib64/ld-linux-x86-64.so.2",
				Needed:   []string{"libc.so.6"},
				MaxGLIBC: lambda.GlibcVersion{Major: 2, Minor: 36}, GLIBCNeed: "GLIBC_2.36",
				GLIBCSymbol: "arc4random@GLIBC_2.36",
			},
		},
		{
			// Packed relative relocations add a GLIBC_ABI_DT_RELR need with no symbol.
			name: "DT_RELR",
			cc:   "gcc",
			src:  mainC,
			args: []string{"-Wl,-z,pack-relative-relocs"},
			want: Info{
				Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Type: elf.ET_DYN,
				Interp:   "/lib64/ld-linux-x86-64.so.2",
				Needed:   []string{"libc.so.6"},
				MaxGLIBC: lambda.GlibcVersion{Major: 2, Minor: 36}, GLIBCNeed: "GLIBC_ABI_DT_RELR",
			},
		},
		{
			name: "arm64",
			cc:   "aarch64-linux-gnu-gcc",
			src:  mainC,
			want: Info{
				Machine: elf.EM_AARCH64, Class: elf.ELFCLASS64, Type: elf.ET_DYN,
				Interp:   "/lib/ld-linux-aarch64.so.1",
				Needed:   []string{"libc.so.6"},
				MaxGLIBC: lambda.GlibcVersion{Major: 2, Minor: 34}, GLIBCNeed: "GLIBC_2.34",
				GLIBCSymbol: "__libc_start_main@GLIBC_2.34",
			},
		},
		{
			// Static glibc programs are marked ELFOSABI_GNU (= LINUX) because of IFUNCs.
			name: "static",
			cc:   "gcc",
			src:  mainC,
			args: []string{"-static"},
			want: Info{Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Type: elf.ET_EXEC, OSABI: elf.ELFOSABI_LINUX, Static: true},
		},
		{
			name: "static-pie",
			cc:   "gcc",
			src:  mainC,
			args: []string{"-static-pie"},
			want: Info{Machine: elf.EM_X86_64, Class: elf.ELFCLASS64, Type: elf.ET_DYN, OSABI: elf.ELFOSABI_LINUX, Static: true},
		},
		{
			name: "arm64 static",
			cc:   "aarch64-linux-gnu-gcc",
			src:  mainC,
			args: []string{"-static"},
			want: Info{Machine: elf.EM_AARCH64, Class: elf.ELFCLASS64, Type: elf.ET_EXEC, OSABI: elf.ELFOSABI_LINUX, Static: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := inspectFile(t, build(t, tt.cc, "prog", tt.src, tt.args...))
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Inspect =\n%+v\nwant\n%+v", *got, tt.want)
			}
		})
	}
}

func TestInspectSharedObject(t *testing.T) {
	const src = `#include <math.h>
double wave(double x) { return cos(x) * 2; }
`
	for _, tt := range []struct {
		name, cc string
		tags     string
		machine  elf.Machine
	}{
		{"x86_64 RUNPATH", "gcc", "-Wl,--enable-new-dtags", elf.EM_X86_64},
		{"x86_64 RPATH", "gcc", "-Wl,--disable-new-dtags", elf.EM_X86_64},
		{"arm64 RUNPATH", "aarch64-linux-gnu-gcc", "-Wl,--enable-new-dtags", elf.EM_AARCH64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lib := build(t, tt.cc, "libwave.so.1", src,
				"-shared", "-fPIC", "-Wl,-soname,libwave.so.1", "-Wl,--no-as-needed", "-lm",
				"-Wl,-rpath,$ORIGIN/../lib:$ORIGIN", tt.tags)
			got := inspectFile(t, lib)
			want := Info{
				Machine: tt.machine, Class: elf.ELFCLASS64, Type: elf.ET_DYN,
				Soname:  "libwave.so.1",
				Needed:  []string{"libm.so.6", "libc.so.6"},
				RunPath: []string{"$ORIGIN/../lib", "$ORIGIN"},
			}
			// The library's own glibc needs depend on the compiler's choices; only
			// check that they were read and stay within what the build host has.
			if got.MaxGLIBC == (lambda.GlibcVersion{}) || got.GLIBCSymbol == "" {
				t.Errorf("MaxGLIBC = %v, GLIBCSymbol = %q; want a version and a symbol", got.MaxGLIBC, got.GLIBCSymbol)
			}
			got.MaxGLIBC, got.GLIBCNeed, got.GLIBCSymbol = lambda.GlibcVersion{}, "", ""
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Inspect =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

func TestInspectNotELF(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("#!/bin/sh\necho hi\n"), []byte("\x7fELF")} {
		if _, err := Inspect(bytes.NewReader(data)); err == nil {
			t.Errorf("Inspect(%q) = nil error, want one", data)
		}
	}
}

func TestIsELF(t *testing.T) {
	for _, tt := range []struct {
		head string
		want bool
	}{
		{"\x7fELF\x02\x01\x01", true},
		{"\x7fELF", true},
		{"\x7fEL", false},
		{"", false},
		{"PK\x03\x04", false},
		{"\x7felf", false},
	} {
		if got := IsELF([]byte(tt.head)); got != tt.want {
			t.Errorf("IsELF(%q) = %v, want %v", tt.head, got, tt.want)
		}
	}
}

func TestParseGLIBC(t *testing.T) {
	for _, tt := range []struct {
		name string
		want glibcVersion
		ok   bool
	}{
		{"GLIBC_2.34", glibcVersion{2, 34, 0}, true},
		{"GLIBC_2.4", glibcVersion{2, 4, 0}, true},
		{"GLIBC_2.2.5", glibcVersion{2, 2, 5}, true},
		{"GLIBC_ABI_DT_RELR", glibcVersion{2, 36, 0}, true},
		{"GLIBC_PRIVATE", glibcVersion{}, false},
		{"GLIBC_2", glibcVersion{}, false},
		{"GLIBC_2.", glibcVersion{}, false},
		{"GLIBC_2.x", glibcVersion{}, false},
		{"GLIBC_2.+3", glibcVersion{}, false},
		{"GLIBC_2.1.2.3", glibcVersion{}, false},
		{"GLIBCXX_3.4.29", glibcVersion{}, false},
		{"CXXABI_1.3.9", glibcVersion{}, false},
		{"GCC_3.0", glibcVersion{}, false},
	} {
		got, ok := parseGLIBC(tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseGLIBC(%q) = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	if !(glibcVersion{2, 4, 0}).less(glibcVersion{2, 34, 0}) || (glibcVersion{2, 34, 0}).less(glibcVersion{2, 4, 0}) {
		t.Error("2.4 must sort before 2.34")
	}
}
