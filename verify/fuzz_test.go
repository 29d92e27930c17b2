package verify

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"testing"

	"github.com/layerpack/layerpack/lambda"
)

// FuzzReader checks arbitrary bytes that archive/zip accepts: verify must not
// panic, must not fail for the zip's own problems (those are findings), and
// must report every Error finding through Err.
func FuzzReader(f *testing.F) {
	f.Add(zipBytes(f, file{name: "bin/"}, file{name: "bin/t", mode: 0o755, data: "#!/bin/sh\n"}, file{name: "lib/l", mode: fs.ModeSymlink | 0o777, data: "../bin/t"}))
	f.Add(zipBytes(f, file{name: "java/lib/a.jar", data: string(zipBytes(f, file{name: "x/libz.so", data: x86so()}))}))
	f.Add(zipBytes(f, file{name: "python/x.so", data: arm64so()}, file{name: ".env", data: "A=1"}))
	f.Add(overlapBomb(f, 3, 4096, 0))
	rts := []lambda.Runtime{mustRuntime("python3.12"), mustRuntime("provided.al2023")}
	f.Fuzz(func(t *testing.T, b []byte) {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		rep, err := ReaderContext(t.Context(), zr, Options{Arch: lambda.X86_64, Runtimes: rts, zipSize: int64(len(b))})
		if err != nil {
			t.Fatalf("Reader failed on the zip's own problems: %v", err)
		}
		errs, _ := rep.Counts()
		if (errs > 0) != (rep.Err() != nil) {
			t.Fatalf("%d errors but Err() = %v", errs, rep.Err())
		}
	})
}

func mustRuntime(id string) lambda.Runtime {
	rt, ok := lambda.LookupRuntime(id)
	if !ok {
		panic(id)
	}
	return rt
}
