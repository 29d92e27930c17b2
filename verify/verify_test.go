package verify

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/elfinfo"
	"github.com/layerpack/layerpack/lambda"
)

func TestLayout(t *testing.T) {
	many := func(dir string, n int) []file {
		var fs []file
		for i := range n {
			fs = append(fs, file{name: fmt.Sprintf("%sf%05d.py", dir, i), data: "x"})
		}
		return fs
	}
	tests := []struct {
		name     string
		runtimes []string
		files    []file
		want     string
	}{
		{
			name:     "python module at the top",
			runtimes: []string{"python3.12"},
			files:    []file{{name: "requests/__init__.py"}},
			want: `warning layout [requests/__init__.py] "requests/__init__.py" is part of a Python package at the top of the layer, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); move it to "python/requests/__init__.py"
`,
		},
		{
			name:     "python, right places",
			runtimes: []string{"python3.12"},
			files: []file{
				{name: "python/"}, {name: "python/six.py"},
				{name: "python/lib/python3.12/site-packages/requests/__init__.py"},
				{name: "bin/"}, {name: "bin/tool", mode: 0o755}, {name: "lib/libx.so.1"},
				{name: "extensions/ext", mode: 0o755},
			},
			want: "",
		},
		{
			name:     "site-packages zipped as is",
			runtimes: []string{"python3.11"},
			files:    []file{{name: "site-packages/six.py"}},
			want: `warning layout [site-packages/six.py] "site-packages/six.py" is in a site-packages/ folder at the top of the layer, which python3.11 does not search (python/ or python/lib/python3.11/site-packages/); move it to "python/six.py"
`,
		},
		{
			name:     "readme at the top: no runtime has an opinion",
			runtimes: []string{"python3.12"},
			files:    []file{{name: "README.md"}},
			want:     "",
		},
		{
			name:     "many files are summarised",
			runtimes: []string{"python3.12"},
			files:    append(many("requests/", 10000), file{name: "requests/__init__.py"}),
			want: `warning layout [requests/] 10001 files under "requests/" are a Python package at the top of the layer, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); move them to "python/requests/"; the first 3 are listed
warning layout [requests/__init__.py] "requests/__init__.py" is part of a Python package at the top of the layer, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); move it to "python/requests/__init__.py"
warning layout [requests/f00000.py] "requests/f00000.py" is part of a Python package at the top of the layer, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); move it to "python/requests/f00000.py"
warning layout [requests/f00001.py] "requests/f00001.py" is part of a Python package at the top of the layer, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); move it to "python/requests/f00001.py"
`,
		},
		{
			name:     "many top-level files: wrapper scripts and data are fine",
			runtimes: []string{"provided.al2023"},
			files:    many("", 5),
			want:     "",
		},
		{
			name:     "site-packages of another Python",
			runtimes: []string{"python3.12", "python3.13"},
			files:    []file{{name: "python/lib/python3.11/site-packages/six.py"}},
			want: `warning layout [python/lib/python3.11/site-packages/six.py] "python/lib/python3.11/site-packages/six.py" is in the site-packages folder of Python 3.11, which python3.12 or python3.13 do not search (python/, python/lib/python3.12/site-packages/ or python/lib/python3.13/site-packages/); install the packages for Python 3.12 and 3.13 instead
`,
		},
		{
			name:     "pip --prefix layout under lib/",
			runtimes: []string{"python3.12"},
			files:    []file{{name: "lib/python3.12/site-packages/six.py"}},
			want: `warning layout [lib/python3.12/site-packages/six.py] "lib/python3.12/site-packages/six.py" is under lib/, where only the dynamic loader looks; python3.12 imports Python code from python/ or python/lib/python3.12/site-packages/; move it to "python/lib/python3.12/site-packages/six.py"
`,
		},
		{
			name:     "node_modules at the top",
			runtimes: []string{"nodejs20.x"},
			files:    []file{{name: "node_modules/left-pad/index.js"}},
			want: `warning layout [node_modules/left-pad/index.js] "node_modules/left-pad/index.js" is in a node_modules/ folder at the top of the layer; nodejs20.x loads modules from nodejs/node_modules/ or nodejs/node20/node_modules/; move it to "nodejs/node_modules/left-pad/index.js"
`,
		},
		{
			name:     "node, right places",
			runtimes: []string{"nodejs20.x", "nodejs22.x"},
			files:    []file{{name: "nodejs/node_modules/a/index.js"}, {name: "nodejs/node22/node_modules/b/index.js"}},
			want:     "",
		},
		{
			name:     "npm -g --prefix layout under lib/",
			runtimes: []string{"nodejs22.x"},
			files:    []file{{name: "lib/node_modules/a/index.js"}},
			want: `warning layout [lib/node_modules/a/index.js] "lib/node_modules/a/index.js" is under lib/, where only the dynamic loader looks; nodejs22.x loads modules from nodejs/node_modules/ or nodejs/node22/node_modules/; move it to "nodejs/node_modules/a/index.js"
`,
		},
		{
			name:     "two languages, data folder",
			runtimes: []string{"python3.12", "nodejs20.x"},
			files:    []file{{name: "stuff/a.txt"}},
			want:     "",
		},
		{
			name:     "ruby gems of another version",
			runtimes: []string{"ruby3.3"},
			files:    []file{{name: "ruby/gems/3.2.0/gems/a/lib/a.rb"}, {name: "ruby/gems/3.3.0/gems/b/lib/b.rb"}, {name: "ruby/lib/c.rb"}},
			want: `warning layout [ruby/gems/3.2.0/gems/a/lib/a.rb] "ruby/gems/3.2.0/gems/a/lib/a.rb" is in the gem folder of Ruby 3.2, which is not on the GEM_PATH of ruby3.3 (ruby/gems/3.3.0/ (GEM_PATH)); install the gems for Ruby 3.3 instead
`,
		},
		{
			name:     "bundler vendor folder at the top",
			runtimes: []string{"ruby3.3"},
			files:    []file{{name: "vendor/bundle/ruby/3.3.0/gems/a/lib/a.rb"}},
			want: `warning layout [vendor/bundle/ruby/3.3.0/gems/a/lib/a.rb] "vendor/bundle/ruby/3.3.0/gems/a/lib/a.rb" is in a Bundler folder at the top of the layer, which is not on GEM_PATH; the gems belong in ruby/gems/3.3.0/ (GEM_PATH); move it to "ruby/gems/3.3.0/gems/a/lib/a.rb"
`,
		},
		{
			name:     "ruby vendor/bundle trap",
			runtimes: []string{"ruby3.3"},
			files:    []file{{name: "ruby/lib/vendor/bundle/ruby/3.3.0/gems/a/lib/a.rb"}},
			want: `warning layout [ruby/lib/vendor/bundle/ruby/3.3.0/gems/a/lib/a.rb] "ruby/lib/vendor/bundle/ruby/3.3.0/gems/a/lib/a.rb" is under ruby/lib/vendor/bundle/, which is not on GEM_PATH, so Ruby does not find these gems; they belong in ruby/gems/3.3.0/ (GEM_PATH); move it to "ruby/gems/3.3.0/gems/a/lib/a.rb"
`,
		},
		{
			name:  "ruby vendor/bundle trap without runtimes",
			files: append(many("ruby/lib/vendor/bundle/ruby/3.2.0/gems/a/", 4), file{name: "anything/at/all"}),
			want: `warning layout [ruby/lib/vendor/bundle/] 4 files under "ruby/lib/vendor/bundle/" are not on GEM_PATH, so Ruby does not find these gems; they belong in ruby/gems/X.Y.0/ (GEM_PATH, for Ruby X.Y); the first 3 are listed
warning layout [ruby/lib/vendor/bundle/ruby/3.2.0/gems/a/f00000.py] "ruby/lib/vendor/bundle/ruby/3.2.0/gems/a/f00000.py" is under ruby/lib/vendor/bundle/, which is not on GEM_PATH, so Ruby does not find these gems; they belong in ruby/gems/X.Y.0/ (GEM_PATH, for Ruby X.Y); move it to "ruby/gems/3.2.0/gems/a/f00000.py"
warning layout [ruby/lib/vendor/bundle/ruby/3.2.0/gems/a/f00001.py] "ruby/lib/vendor/bundle/ruby/3.2.0/gems/a/f00001.py" is under ruby/lib/vendor/bundle/, which is not on GEM_PATH, so Ruby does not find these gems; they belong in ruby/gems/X.Y.0/ (GEM_PATH, for Ruby X.Y); move it to "ruby/gems/3.2.0/gems/a/f00001.py"
warning layout [ruby/lib/vendor/bundle/ruby/3.2.0/gems/a/f00002.py] "ruby/lib/vendor/bundle/ruby/3.2.0/gems/a/f00002.py" is under ruby/lib/vendor/bundle/, which is not on GEM_PATH, so Ruby does not find these gems; they belong in ruby/gems/X.Y.0/ (GEM_PATH, for Ruby X.Y); move it to "ruby/gems/3.2.0/gems/a/f00002.py"
`,
		},
		{
			name:     "jar at the top: an agent read by path",
			runtimes: []string{"java21"},
			files:    []file{{name: "aws-opentelemetry-agent.jar", data: "not really a jar"}, {name: "libs/gson.jar", data: "not really a jar"}},
			want:     "",
		},
		{
			name:     "too many extensions",
			runtimes: []string{"provided.al2023"},
			files:    many("extensions/", 11),
			want: `error exec-bit [extensions/f00000.py] "extensions/f00000.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00001.py] "extensions/f00001.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00002.py] "extensions/f00002.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00003.py] "extensions/f00003.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00004.py] "extensions/f00004.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00005.py] "extensions/f00005.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00006.py] "extensions/f00006.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00007.py] "extensions/f00007.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00008.py] "extensions/f00008.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00009.py] "extensions/f00009.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
error exec-bit [extensions/f00010.py] "extensions/f00010.py" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
warning layout [extensions/] 11 files directly under extensions/ would each start as an extension; Lambda allows at most 10 extensions per function
`,
		},
		{
			name:  "no runtimes, no layout check",
			files: []file{{name: "requests/__init__.py"}},
			want:  "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := check(t, Options{Runtimes: runtimes(t, tt.runtimes...)}, tt.files...)
			if got := messages(rep.Findings); got != tt.want {
				t.Errorf("findings:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestEntries(t *testing.T) {
	tests := []struct {
		name  string
		files []file
		want  string
	}{
		{
			name:  "file not world-readable",
			files: []file{{name: "lib/libx.so", mode: 0o600}},
			want: `error mode [lib/libx.so] "lib/libx.so" has mode 0600; files must be readable by everyone (0644)
`,
		},
		{
			name:  "executable not world-readable",
			files: []file{{name: "lib/run", mode: 0o711}},
			want: `error mode [lib/run] "lib/run" has mode 0711; files must be readable by everyone (0755)
`,
		},
		{
			name:  "folder not world-searchable",
			files: []file{{name: "python/", mode: fs.ModeDir | 0o744}},
			want: `error mode [python/] "python/" has mode 0744; folders must be readable and searchable by everyone (0755)
`,
		},
		{
			name:  "bin/ program without execute bit",
			files: []file{{name: "bin/tool", mode: 0o644}},
			want: `error exec-bit [bin/tool] "bin/tool" has mode 0644; programs in bin/ (on PATH) must be executable by everyone (0755)
`,
		},
		{
			name:  "bin/ program executable by its owner only",
			files: []file{{name: "bin/tool", mode: 0o744}},
			want: `error exec-bit [bin/tool] "bin/tool" has mode 0744; programs in bin/ (on PATH) must be executable by everyone (0755)
`,
		},
		{
			name:  "extension without execute bit",
			files: []file{{name: "extensions/telemetry", mode: 0o644}},
			want: `error exec-bit [extensions/telemetry] "extensions/telemetry" has mode 0644; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (0755)
`,
		},
		{
			name: "support files below bin/ and extensions/",
			files: []file{
				{name: "bin/share/data.txt"}, {name: "extensions/telemetry-lib/x.js"},
				{name: "bin/link", mode: fs.ModeSymlink | 0o777, data: "tool"},
			},
			want: "",
		},
		{
			name:  "named pipe",
			files: []file{{name: "bin/fifo", mode: fs.ModeNamedPipe | 0o644}},
			want: `error mode [bin/fifo] "bin/fifo" is a named pipe; a layer can hold only files, folders and symbolic links
`,
		},
		{
			name:  "absolute name",
			files: []file{{name: "/etc/passwd"}},
			want: `error path [/etc/passwd] "/etc/passwd" is an absolute path; names must be relative to /opt, like "etc/passwd"
`,
		},
		{
			name:  "dot-dot",
			files: []file{{name: "python/../../etc/x"}},
			want: `error path [python/../../etc/x] "python/../../etc/x" has a ".." component, which points outside the layer
`,
		},
		{
			name:  "backslash",
			files: []file{{name: `python\six.py`}},
			want: `error path [python\six.py] "python\\six.py" contains a backslash; folders are separated by "/", like "python/six.py"
`,
		},
		{
			name:  "empty component",
			files: []file{{name: "python//six.py"}},
			want: `error path [python//six.py] "python//six.py" has an empty component ("//"); write it as "python/six.py"
`,
		},
		{
			name:  "dot component",
			files: []file{{name: "./python/six.py"}},
			want: `error path [./python/six.py] "./python/six.py" has a "." component; write it as "python/six.py"
`,
		},
		{
			name:  "duplicate",
			files: []file{{name: "python/six.py"}, {name: "python/six.py"}, {name: "python/six.py"}},
			want: `error duplicate [python/six.py] "python/six.py" appears 3 times in the zip; unzip keeps only one of them
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := check(t, Options{}, tt.files...)
			if got := messages(rep.Findings); got != tt.want {
				t.Errorf("findings:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		unzipped, zipSize int64
		want              string
	}{
		{lambda.MaxUnzippedSize, lambda.MaxDirectUpload, ""},
		{lambda.MaxUnzippedSize + 1, 0, `error size [] the layer unzips to 262144001 bytes, more than the 262144000 bytes Lambda allows for a function and all its layers together
`},
		{1000, lambda.MaxDirectUpload + 1, `warning zip-size [] the zip is 52428801 bytes, more than the 52428800 bytes of a direct upload; it has to be uploaded to S3 and published from there
`},
	}
	for _, tt := range tests {
		c := &checker{opt: Options{ZipSize: tt.zipSize}}
		c.checkSizes(tt.unzipped)
		if got := messages(c.findings); got != tt.want {
			t.Errorf("checkSizes(%d) with zip size %d:\n%s\nwant:\n%s", tt.unzipped, tt.zipSize, got, tt.want)
		}
	}
}

func TestReportCounts(t *testing.T) {
	rep := check(t, Options{ZipSize: 60 << 20},
		file{name: "python/"}, file{name: "python/a.py", data: "print(1)\n"}, file{name: "python/b.py", data: "print(22)\n"})
	if rep.Entries != 3 || rep.UnzippedSize != 19 {
		t.Errorf("Entries, UnzippedSize = %d, %d; want 3, 19", rep.Entries, rep.UnzippedSize)
	}
	if got := messages(rep.Findings); got != `warning zip-size [] the zip is 62914560 bytes, more than the 52428800 bytes of a direct upload; it has to be uploaded to S3 and published from there
` {
		t.Errorf("findings:\n%s", got)
	}
	if err := rep.Err(); err != nil {
		t.Errorf("Err() = %v for warnings only", err)
	}
}

func TestELFMachine(t *testing.T) {
	tests := []struct {
		name  string
		arch  lambda.Arch
		files []file
		want  string
	}{
		{
			name:  "wrong machine",
			arch:  lambda.X86_64,
			files: []file{{name: "lib/libfoo.so", data: arm64so()}},
			want: `error elf-machine [lib/libfoo.so] "lib/libfoo.so" is aarch64 (EM_AARCH64) but the layer is for x86_64
`,
		},
		{
			name:  "right machine",
			arch:  lambda.ARM64,
			files: []file{{name: "lib/libfoo.so", data: arm64so()}},
			want:  "",
		},
		{
			name:  "no architecture given",
			files: []file{{name: "lib/libfoo.so", data: arm64so()}, {name: "lib/libbar.so", data: x86so()}},
			want:  "",
		},
		{
			name: "prebuilds for several CPUs",
			arch: lambda.ARM64,
			files: []file{
				{name: "nodejs/node_modules/bufferutil/prebuilds/linux-x64/node.napi.node", data: x86so()},
				{name: "nodejs/node_modules/bufferutil/prebuilds/linux-arm64/node.napi.node", data: arm64so()},
				{name: "nodejs/node_modules/bufferutil/prebuilds/android-arm/node.napi.node", data: elfHeader(elf.ET_DYN, elf.EM_ARM)},
			},
			want: "",
		},
		{
			name: "prebuild only for the other CPU",
			arch: lambda.ARM64,
			files: []file{
				{name: "nodejs/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node", data: x86so()},
			},
			want: `error elf-machine [nodejs/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node] "nodejs/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node" is x86_64 (EM_X86_64) but the layer is for arm64
`,
		},
		{
			name:  "object files are not loaded",
			arch:  lambda.X86_64,
			files: []file{{name: "python/pkg/x.o", data: elfHeader(elf.ET_REL, elf.EM_AARCH64)}},
			want:  "",
		},
		{
			name:  "32-bit ARM",
			arch:  lambda.ARM64,
			files: []file{{name: "bin/tool", mode: 0o755, data: elfHeader(elf.ET_EXEC, elf.EM_ARM)}},
			want: `error elf-machine [bin/tool] "bin/tool" is arm (EM_ARM) but the layer is for arm64
`,
		},
		{
			name: "jar with a library for the other CPU",
			arch: lambda.X86_64,
			files: []file{{name: "java/lib/x.jar", data: jar(t,
				file{name: "META-INF/MANIFEST.MF", data: "Manifest-Version: 1.0\n"},
				file{name: "linux-x86_64/libfoo.so", data: arm64so()},
				file{name: "darwin/libfoo.dylib", data: "\xcf\xfa\xed\xfe"},
			)}},
			want: `error elf-machine [java/lib/x.jar!/linux-x86_64/libfoo.so] "java/lib/x.jar!/linux-x86_64/libfoo.so" is aarch64 (EM_AARCH64) but the layer is for x86_64
`,
		},
		{
			name: "jar with libraries for every CPU",
			arch: lambda.ARM64,
			files: []file{{name: "java/lib/jna.jar", data: jar(t,
				file{name: "com/sun/jna/linux-x86-64/libjnidispatch.so", data: x86so()},
				file{name: "com/sun/jna/linux-aarch64/libjnidispatch.so", data: arm64so()},
				file{name: "com/sun/jna/linux-riscv64/libjnidispatch.so", data: elfHeader(elf.ET_DYN, elf.EM_RISCV)},
				file{name: "com/sun/jna/freebsd-x86-64/libjnidispatch.so", data: x86so()},
			)}},
			want: "",
		},
		{
			name: "jar inside a jar",
			arch: lambda.ARM64,
			files: []file{{name: "java/lib/app.jar", data: jar(t,
				file{name: "BOOT-INF/lib/native.jar", data: jar(t, file{name: "native/libz.so.1", data: x86so()})},
			)}},
			want: `error elf-machine [java/lib/app.jar!/BOOT-INF/lib/native.jar!/native/libz.so.1] "java/lib/app.jar!/BOOT-INF/lib/native.jar!/native/libz.so.1" is x86_64 (EM_X86_64) but the layer is for arm64
`,
		},
		{
			name:  "broken jar",
			arch:  lambda.ARM64,
			files: []file{{name: "java/lib/broken.jar", data: "PK\x03\x04 but nothing else"}},
			want: `warning jar [java/lib/broken.jar] "java/lib/broken.jar" is not a readable jar: zip: not a valid zip file
`,
		},
		{
			name:  "truncated ELF",
			arch:  lambda.ARM64,
			files: []file{{name: "lib/libcut.so", data: arm64so()[:20]}},
			want: `warning elf [lib/libcut.so] "lib/libcut.so" starts like an ELF file but cannot be parsed: elfinfo: truncated ELF file: EOF
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := check(t, Options{Arch: tt.arch}, tt.files...)
			if got := messages(rep.Findings); got != tt.want {
				t.Errorf("findings:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestCheckELF(t *testing.T) {
	v := func(major, minor int) lambda.GlibcVersion { return lambda.GlibcVersion{Major: major, Minor: minor} }
	tests := []struct {
		name     string
		info     elfinfo.Info
		arch     lambda.Arch
		runtimes []string
		want     string
	}{
		{
			name:     "glibc too new for AL2",
			info:     elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_EXEC, MaxGLIBC: v(2, 34), GLIBCNeed: "GLIBC_2.34", GLIBCSymbol: "memcpy@GLIBC_2.34"},
			arch:     lambda.X86_64,
			runtimes: []string{"python3.11"},
			want: `error elf-glibc [bin/tool] "bin/tool" needs GLIBC_2.34 (memcpy@GLIBC_2.34) but python3.11 (Amazon Linux 2) has glibc 2.26
`,
		},
		{
			name:     "fits AL2023",
			info:     elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_EXEC, MaxGLIBC: v(2, 34), GLIBCNeed: "GLIBC_2.34", GLIBCSymbol: "memcpy@GLIBC_2.34"},
			runtimes: []string{"python3.12", "provided.al2023"},
			want:     "",
		},
		{
			name:     "several runtimes and systems",
			info:     elfinfo.Info{Machine: elf.EM_AARCH64, Type: elf.ET_DYN, MaxGLIBC: v(2, 36), GLIBCNeed: "GLIBC_2.36", GLIBCSymbol: "arc4random@GLIBC_2.36"},
			arch:     lambda.ARM64,
			runtimes: []string{"python3.12", "python3.10", "python3.11", "nodejs22.x"},
			want: `error elf-glibc [bin/tool] "bin/tool" needs GLIBC_2.36 (arc4random@GLIBC_2.36) but python3.10, python3.11 (Amazon Linux 2) have glibc 2.26 and python3.12, nodejs22.x (Amazon Linux 2023) have glibc 2.34
`,
		},
		{
			name:     "DT_RELR need without a symbol",
			info:     elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_DYN, MaxGLIBC: v(2, 36), GLIBCNeed: "GLIBC_ABI_DT_RELR"},
			runtimes: []string{"provided.al2023"},
			want: `error elf-glibc [bin/tool] "bin/tool" needs GLIBC_2.36 (GLIBC_ABI_DT_RELR) but provided.al2023 (Amazon Linux 2023) has glibc 2.34
`,
		},
		{
			name:     "wrong machine hides the glibc check",
			info:     elfinfo.Info{Machine: elf.EM_AARCH64, Type: elf.ET_DYN, MaxGLIBC: v(2, 36), GLIBCNeed: "GLIBC_2.36"},
			arch:     lambda.X86_64,
			runtimes: []string{"python3.11"},
			want: `error elf-machine [bin/tool] "bin/tool" is aarch64 (EM_AARCH64) but the layer is for x86_64
`,
		},
		{
			name:     "FreeBSD binary",
			info:     elfinfo.Info{Machine: elf.EM_AARCH64, Type: elf.ET_DYN, OSABI: elf.ELFOSABI_FREEBSD},
			arch:     lambda.X86_64,
			runtimes: []string{"python3.11"},
			want:     "",
		},
		{
			name:     "static program",
			info:     elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_EXEC, Static: true},
			arch:     lambda.X86_64,
			runtimes: []string{"python3.11"},
			want:     "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := tt.info
			got := messages(CheckELF("bin/tool", &info, Options{Arch: tt.arch, Runtimes: runtimes(t, tt.runtimes...)}))
			if got != tt.want {
				t.Errorf("CheckELF:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestNeeded runs the needed and shadowed checks on ELF information given by hand.
func TestNeeded(t *testing.T) {
	lib := func(soname string, needed ...string) *elfinfo.Info {
		return &elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_DYN, Soname: soname, Needed: needed}
	}
	tests := []struct {
		name     string
		runtimes []string
		files    []string
		elfs     []elfFile
		want     string
	}{
		{
			name:     "missing library",
			runtimes: []string{"python3.12"},
			files:    []string{"python/pkg/_ext.so"},
			elfs:     []elfFile{{name: "python/pkg/_ext.so", info: lib("", "libfoo.so.1", "libc.so.6", "libstdc++.so.6")}},
			want: `warning needed [python/pkg/_ext.so] "python/pkg/_ext.so" needs libfoo.so.1, which is neither in the layer (lib/, its own folder or its RUNPATH) nor part of python3.12 (Amazon Linux 2023)
`,
		},
		{
			name:     "in lib/ by file name",
			runtimes: []string{"python3.12"},
			files:    []string{"python/pkg/_ext.so", "lib/libfoo.so.1"},
			elfs:     []elfFile{{name: "python/pkg/_ext.so", info: lib("", "libfoo.so.1")}},
		},
		{
			name:     "in lib/ by SONAME",
			runtimes: []string{"python3.12"},
			files:    []string{"python/pkg/_ext.so", "lib/libfoo-1.2.3.so"},
			elfs: []elfFile{
				{name: "python/pkg/_ext.so", info: lib("", "libfoo.so.1")},
				{name: "lib/libfoo-1.2.3.so", info: lib("libfoo.so.1")},
			},
		},
		{
			name:     "next to it",
			runtimes: []string{"python3.12"},
			files:    []string{"python/pkg/_ext.so", "python/pkg/libfoo.so.1"},
			elfs:     []elfFile{{name: "python/pkg/_ext.so", info: lib("", "libfoo.so.1")}},
		},
		{
			name:     "in its RUNPATH",
			runtimes: []string{"python3.12"},
			files:    []string{"python/pkg/_ext.so", "python/pkg.libs/libfoo-ab12.so.1", "bin/tool", "vendor/libbar.so"},
			elfs: []elfFile{
				{name: "python/pkg/_ext.so", info: &elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_DYN,
					Needed: []string{"libfoo-ab12.so.1", "libbar.so"}, RunPath: []string{"$ORIGIN/../pkg.libs", "/opt/vendor", "$LIB/x", "/usr/lib64"}}},
				{name: "bin/tool", info: &elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_EXEC,
					Needed: []string{"libbar.so"}, RunPath: []string{"${ORIGIN}/../vendor"}}},
			},
		},
		{
			name:     "RUNPATH outside /opt",
			runtimes: []string{"provided.al2"},
			files:    []string{"bin/tool", "usr/lib/libbar.so"},
			elfs: []elfFile{{name: "bin/tool", info: &elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_EXEC,
				Needed: []string{"libbar.so"}, RunPath: []string{"$ORIGIN/../../usr/lib"}}}},
			want: `warning needed [bin/tool] "bin/tool" needs libbar.so, which is neither in the layer (lib/, its own folder or its RUNPATH) nor part of provided.al2 (Amazon Linux 2)
`,
		},
		{
			name:     "libcrypt.so.1 is on AL2 only",
			runtimes: []string{"python3.11", "python3.12", "python3.13"},
			files:    []string{"python/_crypt.so"},
			elfs:     []elfFile{{name: "python/_crypt.so", info: lib("", "libcrypt.so.1")}},
			want: `warning needed [python/_crypt.so] "python/_crypt.so" needs libcrypt.so.1, which is neither in the layer (lib/, its own folder or its RUNPATH) nor part of python3.12, python3.13 (Amazon Linux 2023)
`,
		},
		{
			name:  "no runtimes: both systems",
			files: []string{"bin/tool"},
			elfs: []elfFile{{name: "bin/tool", info: &elfinfo.Info{Machine: elf.EM_X86_64, Type: elf.ET_EXEC,
				Needed: []string{"libssl.so.3", "libcrypt.so.1"}}}},
			want: `warning needed [bin/tool] "bin/tool" needs libcrypt.so.1, which is neither in the layer (lib/, its own folder or its RUNPATH) nor part of Amazon Linux 2023
warning needed [bin/tool] "bin/tool" needs libssl.so.3, which is neither in the layer (lib/, its own folder or its RUNPATH) nor part of Amazon Linux 2 or Amazon Linux 2023
`,
		},
		{
			name:     "libruby from the runtime",
			runtimes: []string{"ruby3.3"},
			files:    []string{"ruby/gems/3.3.0/extensions/x/y/nokogiri.so"},
			elfs:     []elfFile{{name: "ruby/gems/3.3.0/extensions/x/y/nokogiri.so", info: lib("", "libruby.so.3.3", "libm.so.6")}},
		},
		{
			name:     "jars are not checked for needed libraries",
			runtimes: []string{"java21"},
			files:    []string{"java/lib/a.jar"},
			elfs:     []elfFile{{name: "java/lib/a.jar!/x.so", jar: "java/lib/a.jar", info: lib("", "libmusl.so.1")}},
		},
		{
			name:     "shadowed library",
			runtimes: []string{"python3.12", "nodejs20.x"},
			files:    []string{"lib/libstdc++.so.6.0.30", "lib/libfoo.so.1"},
			elfs: []elfFile{
				{name: "lib/libstdc++.so.6.0.30", info: lib("libstdc++.so.6", "libm.so.6", "libc.so.6")},
				{name: "lib/libfoo.so.1", info: lib("libfoo.so.1")},
			},
			want: `warning shadowed [lib/libstdc++.so.6.0.30] "lib/libstdc++.so.6.0.30" (SONAME libstdc++.so.6) is shadowed: python3.12, nodejs20.x (Amazon Linux 2023) already has libstdc++.so.6 in /lib64, which comes before /opt/lib on LD_LIBRARY_PATH, so programs get the system copy
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var files []*zip.File
			for _, n := range tt.files {
				files = append(files, &zip.File{FileHeader: zip.FileHeader{Name: n}})
			}
			c := &checker{opt: Options{Arch: lambda.X86_64, Runtimes: runtimes(t, tt.runtimes...)}, elfs: tt.elfs}
			c.checkELFs(files)
			sortFindings(c.findings)
			if got := messages(c.findings); got != tt.want {
				t.Errorf("findings:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestBaseSystemProvides(t *testing.T) {
	for _, tt := range []struct {
		os, soname string
		want       bool
	}{
		{"al2", "libc.so.6", true},
		{"al2023", "libc.so.6", true},
		{"al2023", "libpthread.so.0", true},
		{"al2023", "ld-linux-aarch64.so.1", true},
		{"al2", "libcrypt.so.1", true},
		{"al2023", "libcrypt.so.1", false},
		{"al2023", "libcrypt.so.2", false},
		{"al2", "libssl.so.10", false},
		{"al2023", "libssl.so.3", false},
		{"al2023", "libstdc++.so.6", true},
		{"al2023", "libz.so.1", true},
		{"al2", "libgcc_s.so.1", true},
		{"al1", "libc.so.6", false},
		{"", "libc.so.6", false},
	} {
		if got := lambda.BaseSystemProvides(tt.os, tt.soname); got != tt.want {
			t.Errorf("lambda.BaseSystemProvides(%q, %q) = %v, want %v", tt.os, tt.soname, got, tt.want)
		}
	}
}

func TestArchKey(t *testing.T) {
	same := [][2]string{
		{"prebuilds/linux-x64/node.napi.node", "prebuilds/linux-arm64/node.napi.node"},
		{"META-INF/native/libnetty_transport_native_epoll_x86_64.so", "META-INF/native/libnetty_transport_native_epoll_aarch_64.so"},
		{"com/sun/jna/linux-x86-64/libjnidispatch.so", "com/sun/jna/linux-aarch64/libjnidispatch.so"},
		{"org/sqlite/native/Linux/x86_64/libsqlitejdbc.so", "org/sqlite/native/Linux/aarch64/libsqlitejdbc.so"},
		{"@img/sharp-linux-x64/lib/sharp-linux-x64.node", "@img/sharp-linux-arm64/lib/sharp-linux-arm64.node"},
	}
	for _, p := range same {
		if archKey(p[0]) != archKey(p[1]) {
			t.Errorf("archKey(%q) = %q, archKey(%q) = %q; want equal", p[0], archKey(p[0]), p[1], archKey(p[1]))
		}
	}
	differ := [][2]string{
		{"prebuilds/linux-x64/a.node", "prebuilds/linuxmusl-x64/a.node"},
		{"lib/libarmor.so", "lib/libx64armor.so"},
		{"bin/tool", "bin/tool2"},
	}
	for _, p := range differ {
		if archKey(p[0]) == archKey(p[1]) {
			t.Errorf("archKey(%q) == archKey(%q) = %q; want different", p[0], p[1], archKey(p[0]))
		}
	}
}

func TestCorruptEntry(t *testing.T) {
	b := zipBytes(t, file{name: "python/a.py", data: strings.Repeat("print('hello')\n", 100)})
	// Flip a byte of the compressed data: the checksum no longer matches.
	i := bytes.Index(b, []byte("python/a.py")) + len("python/a.py") + 40
	b[i] ^= 0xff
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Reader(zr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Check != CheckZip || !strings.HasPrefix(rep.Findings[0].Message, `"python/a.py" cannot be read: `) {
		t.Errorf("findings:\n%s", messages(rep.Findings))
	}
}

func TestBigELFUsesTempFile(t *testing.T) {
	big := arm64so() + strings.Repeat("\x00", memLimit+1)
	rep := check(t, Options{Arch: lambda.X86_64}, file{name: "lib/libbig.so", data: big})
	want := `error elf-machine [lib/libbig.so] "lib/libbig.so" is aarch64 (EM_AARCH64) but the layer is for x86_64
`
	if got := messages(rep.Findings); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}

func TestOptionsValidation(t *testing.T) {
	zr := zipReader(t, file{name: "a"})
	if _, err := Reader(zr, Options{Arch: "amd64"}); err == nil || err.Error() != `verify: unknown architecture "amd64" (want x86_64 or arm64)` {
		t.Errorf("Reader with Arch amd64: %v", err)
	}
	if _, err := Reader(zr, Options{Runtimes: []lambda.Runtime{{ID: "python2.7"}}}); err == nil || err.Error() != `verify: unknown runtime "python2.7"` {
		t.Errorf("Reader with python2.7: %v", err)
	}
}

func TestZipFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layer.zip")
	b := zipBytes(t, file{name: "bin/tool", mode: 0o644, data: "#!/bin/sh\n"}, file{name: "python/a.py"})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Zip(path, Options{Runtimes: runtimes(t, "python3.12")})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	wantText := `error: exec-bit: "bin/tool" has mode 0644; programs in bin/ (on PATH) must be executable by everyone (0755)
2 entries, 10 bytes unzipped: 1 error, 0 warnings
`
	if out.String() != wantText {
		t.Errorf("Write:\n%s\nwant:\n%s", out.String(), wantText)
	}
	err = rep.Err()
	var fe *FindingsError
	if !errors.As(err, &fe) || len(fe.Findings) != 1 {
		t.Fatalf("Err() = %v, want a *FindingsError with 1 finding", err)
	}
	if err.Error() != `the layer has 1 error: exec-bit: "bin/tool" has mode 0644; programs in bin/ (on PATH) must be executable by everyone (0755)` {
		t.Errorf("Err() = %q", err)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"findings":[{"severity":"error","entry":"bin/tool","check":"exec-bit","message":"\"bin/tool\" has mode 0644; programs in bin/ (on PATH) must be executable by everyone (0755)"}],"entries":2,"unzipped_size":10}`
	if string(js) != wantJSON {
		t.Errorf("JSON:\n%s\nwant:\n%s", js, wantJSON)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || back.Findings[0].Severity != Error {
		t.Errorf("round trip: %v, %+v", err, back)
	}

	if _, err := Zip(filepath.Join(t.TempDir(), "missing.zip"), Options{}); err == nil {
		t.Error("Zip of a missing file: no error")
	}
}

func TestEmptyReport(t *testing.T) {
	rep := check(t, Options{Runtimes: runtimes(t, "python3.12")}, file{name: "python/a.py", data: "x"})
	js, _ := json.Marshal(rep)
	if string(js) != `{"findings":[],"entries":1,"unzipped_size":1}` {
		t.Errorf("JSON = %s", js)
	}
	var out bytes.Buffer
	rep.Write(&out)
	if out.String() != "1 entry, 1 byte unzipped: no problems found\n" {
		t.Errorf("Write = %q", out.String())
	}
}

func TestSeverityText(t *testing.T) {
	var s Severity
	if err := s.UnmarshalText([]byte("fatal")); err == nil || err.Error() != `verify: unknown severity "fatal" (want error or warning)` {
		t.Errorf("UnmarshalText(fatal) = %v", err)
	}
	if _, err := Severity(7).MarshalText(); err == nil {
		t.Error("MarshalText(7): no error")
	}
}
