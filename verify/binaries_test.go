package verify

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/layerpack/layerpack/lambda"
)

// TestRealBinaries checks layers holding programs and libraries built with gcc and
// aarch64-linux-gnu-gcc on Debian 12 (glibc 2.36). The glibc versions in the
// messages are what `objdump -T` shows for these programs.
func TestRealBinaries(t *testing.T) {
	const mainC = `#include <stdio.h>
int main(void) { puts("hi"); return 0; }
`
	const arc4C = `#include <stdio.h>
#include <stdlib.h>
int main(void) { printf("%u\n", arc4random()); return 0; }
`
	const libC = `#include <math.h>
double wave(double x) { return cos(x) * 2; }
`
	const useLibC = `double wave(double);
int main(void) { return wave(1.0) > 0; }
`
	libDir := t.TempDir()
	lib := compile(t, "gcc", libC, "-shared", "-fPIC", "-Wl,-soname,libwave.so.1", "-Wl,--no-as-needed", "-lm")
	libPath := filepath.Join(libDir, "libwave.so.1")
	if err := os.WriteFile(libPath, []byte(lib), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		arch     lambda.Arch
		runtimes []string
		files    func(t *testing.T) []file
		want     string
	}{
		{
			name:     "x86_64 program on AL2",
			arch:     lambda.X86_64,
			runtimes: []string{"python3.11"},
			files: func(t *testing.T) []file {
				return []file{{name: "bin/tool", mode: 0o755, data: compile(t, "gcc", mainC)}}
			},
			want: `error elf-glibc [bin/tool] "bin/tool" needs GLIBC_2.34 (__libc_start_main@GLIBC_2.34) but python3.11 (Amazon Linux 2) has glibc 2.26
`,
		},
		{
			name:     "x86_64 program on AL2023",
			arch:     lambda.X86_64,
			runtimes: []string{"python3.12", "provided.al2023"},
			files: func(t *testing.T) []file {
				return []file{{name: "bin/tool", mode: 0o755, data: compile(t, "gcc", mainC)}}
			},
		},
		{
			name:     "glibc 2.36 symbol",
			arch:     lambda.X86_64,
			runtimes: []string{"python3.12"},
			files: func(t *testing.T) []file {
				return []file{{name: "bin/tool", mode: 0o755, data: compile(t, "gcc", arc4C)}}
			},
			want: `error elf-glibc [bin/tool] "bin/tool" needs GLIBC_2.36 (arc4random@GLIBC_2.36) but python3.12 (Amazon Linux 2023) has glibc 2.34
`,
		},
		{
			name:     "arm64 program in an x86_64 layer",
			arch:     lambda.X86_64,
			runtimes: []string{"provided.al2023"},
			files: func(t *testing.T) []file {
				return []file{{name: "bin/tool", mode: 0o755, data: compile(t, "aarch64-linux-gnu-gcc", mainC)}}
			},
			want: `error elf-machine [bin/tool] "bin/tool" is aarch64 (EM_AARCH64) but the layer is for x86_64
`,
		},
		{
			name:     "arm64 program in an arm64 layer",
			arch:     lambda.ARM64,
			runtimes: []string{"provided.al2023"},
			files: func(t *testing.T) []file {
				return []file{{name: "bin/tool", mode: 0o755, data: compile(t, "aarch64-linux-gnu-gcc", mainC)}}
			},
		},
		{
			name:     "static arm64 program on AL2",
			arch:     lambda.ARM64,
			runtimes: []string{"provided.al2"},
			files: func(t *testing.T) []file {
				return []file{{name: "bin/tool", mode: 0o755, data: compile(t, "aarch64-linux-gnu-gcc", mainC, "-static")}}
			},
		},
		{
			name:     "library not bundled",
			arch:     lambda.X86_64,
			runtimes: []string{"provided.al2023"},
			files: func(t *testing.T) []file {
				return []file{{name: "bin/tool", mode: 0o755, data: compile(t, "gcc", useLibC, libPath)}}
			},
			want: `warning needed [bin/tool] "bin/tool" needs libwave.so.1, which is neither in the layer (lib/, its own folder or its RUNPATH) nor part of provided.al2023 (Amazon Linux 2023)
`,
		},
		{
			name:     "library bundled in lib/",
			arch:     lambda.X86_64,
			runtimes: []string{"provided.al2023"},
			files: func(t *testing.T) []file {
				return []file{
					{name: "bin/tool", mode: 0o755, data: compile(t, "gcc", useLibC, libPath)},
					{name: "lib/libwave.so.1", data: lib},
				}
			},
		},
		{
			name:     "library in the RUNPATH",
			arch:     lambda.X86_64,
			runtimes: []string{"provided.al2023"},
			files: func(t *testing.T) []file {
				return []file{
					{name: "bin/tool", mode: 0o755, data: compile(t, "gcc", useLibC, libPath, "-Wl,-rpath,$ORIGIN/../tool.libs")},
					{name: "tool.libs/libwave.so.1", data: lib},
				}
			},
			// tool.libs/ is no runtime's folder, and that is fine: the RUNPATH finds it.
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := check(t, Options{Arch: tt.arch, Runtimes: runtimes(t, tt.runtimes...)}, tt.files(t)...)
			if got := messages(rep.Findings); got != tt.want {
				t.Errorf("findings:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
