package node

import (
	"runtime"
	"strings"

	"github.com/layerpack/layerpack/lambda"
)

// platform is what a package's os, cpu and libc fields are matched against: the
// Lambda target (linux, x64 or arm64, glibc).
type platform struct {
	OS, CPU, Libc string
}

// targetPlatform is the Node.js view (process.platform, process.arch) of a
// Lambda architecture. Lambda's Amazon Linux uses glibc.
func targetPlatform(a lambda.Arch) platform {
	cpu := "x64"
	if a == lambda.ARM64 {
		cpu = "arm64"
	}
	return platform{OS: "linux", CPU: cpu, Libc: "glibc"}
}

// hostCPU is the host's process.arch.
func hostCPU() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x64"
	case "386":
		return "ia32"
	}
	return runtime.GOARCH
}

// accepts applies npm's rules (npm-install-checks): a list with entries passes
// when no "!value" entry names the target and, if there are plain entries, one
// of them does. libc is only checked on linux.
func (p platform) accepts(os, cpu, libc []string) bool {
	return listAccepts(os, p.OS) && listAccepts(cpu, p.CPU) && (p.OS != "linux" || listAccepts(libc, p.Libc))
}

func listAccepts(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	positive, match := false, false
	for _, e := range list {
		if neg, ok := strings.CutPrefix(e, "!"); ok {
			if neg == v {
				return false
			}
			continue
		}
		positive = true
		if e == v || e == "any" {
			match = true
		}
	}
	return !positive || match
}

// npmFlags are npm's (10.1+) options to pick optional packages for the target
// instead of the host.
func (p platform) npmFlags() []string {
	return []string{"--os=" + p.OS, "--cpu=" + p.CPU, "--libc=" + p.Libc}
}

// String is os-cpu-libc, as prebuilt package names spell it (linux-arm64-glibc).
func (p platform) String() string { return p.OS + "-" + p.CPU + "-" + p.Libc }
