package python

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/lambda"
)

// needFakeCompile skips unless the fake engine can play the build container on
// the host: python3.11 with pip and a C compiler.
func needFakeCompile(t *testing.T) {
	t.Helper()
	needHostPip(t)
	if hostPython("3.11") == "" {
		testneed.Missing(t, "needs python3.11 on the host (the fake engine runs container steps on the host)")
	}
	if _, err := exec.LookPath("cc"); err != nil {
		testneed.Missing(t, "needs a C compiler")
	}
}

// An sdist compiled with debug info (as setuptools does) gives the same extension
// module from two project folders: it is built at a fixed folder, mapped away in
// the debug info, never in pip's random pip-req-build-XXXXXXXX. The step gets the
// prefix map in CFLAGS, CXXFLAGS and LDFLAGS. The same for build = "container",
// where pip resolves and downloads in the image and the sdists are built at the
// fixed folder before the install.
func TestSdistBuildIsReproducible(t *testing.T) {
	for _, mode := range []string{"auto", "container"} {
		t.Run(mode, func(t *testing.T) { testSdistReproducible(t, mode) })
	}
}

func testSdistReproducible(t *testing.T, mode string) {
	needFakeCompile(t)
	var mods [][]byte
	for i := 0; i < 2; i++ {
		cfg := project(t, layerToml(`"python3.11"`, "build = \""+mode+"\"\n"), hermetic+"cext==1.0\n", true)
		fake := &engine.Fake{Exec: true}
		r := runBuild(t, New(), cfg, lambda.X86_64, fake)
		fake.Close()
		if r.err != nil {
			t.Fatalf("build %d: %v\n%s", i, r.err, r.log)
		}
		s := fake.Steps()[0]
		for _, k := range []string{"CFLAGS", "CXXFLAGS", "LDFLAGS"} {
			if s.Env[k] != "-fdebug-prefix-map="+ctrBuild+"=." {
				t.Errorf("%s = %q", k, s.Env[k])
			}
		}
		so := filepath.Join(r.stage, "python/lib/python3.11/site-packages/cext.cpython-311-x86_64-linux-gnu.so")
		b, err := os.ReadFile(so)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "pip-req-build") || strings.Contains(string(b), ".layerpack-build") {
			t.Errorf("build %d: the module names its build folder", i)
		}
		mods = append(mods, b)
	}
	if string(mods[0]) != string(mods[1]) {
		t.Error("two builds of one sdist from two folders give different extension modules")
	}
}
