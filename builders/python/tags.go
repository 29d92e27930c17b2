package python

import (
	"fmt"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/lambda"
)

// Target is one Python install: a CPython version on a CPU, with the oldest glibc of
// the runtimes that use it (a layer for python3.11 and python3.12 gets two targets).
type Target struct {
	Version  string // "3.12"
	Arch     lambda.Arch
	GLIBC    lambda.GlibcVersion
	Runtimes []string // the runtime identifiers served
}

// ABI is the CPython ABI tag: "cp312".
func (t Target) ABI() string { return "cp" + strings.ReplaceAll(t.Version, ".", "") }

// Env is the marker environment of the target.
func (t Target) Env() Env { return TargetEnv(t.Version, t.Arch.GNU()) }

func (t Target) String() string {
	return fmt.Sprintf("CPython %s on %s (%s)", t.Version, t.Arch.GNU(), strings.Join(t.Runtimes, ", "))
}

// Targets groups the Python runtimes of a layer by version, oldest version first.
// Each group's glibc is the oldest of its runtimes (they agree today: a Python
// version runs on one Amazon Linux).
func Targets(runtimes []lambda.Runtime, arch lambda.Arch) []Target {
	byVer := map[string]*Target{}
	for _, r := range runtimes {
		if r.Language != lambda.Python {
			continue
		}
		t := byVer[r.Version]
		if t == nil {
			t = &Target{Version: r.Version, Arch: arch, GLIBC: r.GLIBC}
			byVer[r.Version] = t
		}
		if r.GLIBC.Less(t.GLIBC) {
			t.GLIBC = r.GLIBC
		}
		t.Runtimes = append(t.Runtimes, r.ID)
	}
	var out []Target
	for _, t := range byVer {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i].Version, out[j].Version) })
	return out
}

func versionLess(a, b string) bool {
	va, ea := ParseVersion(a)
	vb, eb := ParseVersion(b)
	if ea != nil || eb != nil {
		return a < b
	}
	return va.Compare(vb) < 0
}

// legacyManylinux are the old names of some manylinux_2_X tags (PEP 600).
var legacyManylinux = map[int]string{17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}

// Platforms lists the wheel platform tags a runtime's glibc and CPU accept, newest
// first, the way the packaging library orders them: manylinux_2_M for every M from
// the runtime's glibc down to the oldest glibc of the CPU (2.5 on x86_64, 2.17 on
// aarch64), each followed by its legacy alias (manylinux2014 for 2.17...). pip's
// --platform does not expand a manylinux_2_M tag to older ones, so every tag is
// given.
func Platforms(arch lambda.Arch, glibc lambda.GlibcVersion) []string {
	cpu := arch.GNU()
	oldest := 17
	if cpu == "x86_64" {
		oldest = 5
	}
	var out []string
	for m := glibc.Minor; m >= oldest && glibc.Major == 2; m-- {
		out = append(out, fmt.Sprintf("manylinux_2_%d_%s", m, cpu))
		if legacy, ok := legacyManylinux[m]; ok {
			out = append(out, legacy+"_"+cpu)
		}
	}
	return out
}

// Platforms of the target.
func (t Target) Platforms() []string { return Platforms(t.Arch, t.GLIBC) }

// LocalPlatform is the tag of wheels built from source in the build container
// ("linux_aarch64"): only those wheels are installed with it.
func (t Target) LocalPlatform() string { return "linux_" + t.Arch.GNU() }

// uvManylinux are the manylinux_2_M values uv's --python-platform knows (uv 0.13:
// 2_17, 2_28, 2_31 to 2_40); it expands each to every older tag itself.
var uvManylinux = []int{40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 28, 17}

// UVPlatform is uv's --python-platform for the target: the newest manylinux uv
// knows that the runtime's glibc allows ("x86_64-manylinux_2_34"). uv has no
// manylinux_2_26, so Amazon Linux 2 targets get manylinux_2_17 (manylinux2014):
// uv then does not consider wheels tagged 2_18 to 2_26, which pip does.
func (t Target) UVPlatform() string {
	m := 17
	for _, v := range uvManylinux {
		if v <= t.GLIBC.Minor {
			m = v
			break
		}
	}
	return fmt.Sprintf("%s-manylinux_2_%d", t.Arch.GNU(), m)
}

// pipTargetArgs are pip's options that select wheels for the target instead of the
// host: wheels only, for this interpreter, ABI and platforms.
func (t Target) pipTargetArgs() []string {
	args := []string{"--implementation", "cp", "--python-version", t.Version, "--abi", t.ABI()}
	for _, p := range t.Platforms() {
		args = append(args, "--platform", p)
	}
	return args
}
