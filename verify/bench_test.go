package verify

import (
	"archive/zip"
	"crypto/sha256"
	"io"
	"os"
	"testing"

	"github.com/layerpack/layerpack/elfinfo"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/secrets"
	"github.com/layerpack/layerpack/zipper"
)

// BenchmarkZipLayer checks the layer zip LAYERPACK_BENCH_ZIP names (a build's
// output, e.g. of the npm benchmark tree) as a rebuild does: with a Seen filled
// as the zipper fills it and a warm ELF memo.
func BenchmarkZipLayer(b *testing.B) {
	path := os.Getenv("LAYERPACK_BENCH_ZIP")
	if path == "" {
		b.Skip("LAYERPACK_BENCH_ZIP names no zip")
	}
	opt := Options{Arch: lambda.X86_64, Runtimes: []lambda.Runtime{mustRuntime("nodejs20.x")},
		Seen: layerSeen(b, path), ELFMemo: &memELF{m: map[string]*elfinfo.Info{}}}
	if _, err := Zip(path, opt); err != nil { // warms the memo
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Zip(path, opt); err != nil {
			b.Fatal(err)
		}
	}
}

// layerSeen is what the zipper's Inspect and Hashed hooks report of the files of
// the zip at path.
func layerSeen(b *testing.B, path string) *Seen {
	zr, err := zip.OpenReader(path)
	if err != nil {
		b.Fatal(err)
	}
	defer zr.Close()
	s := NewSeen()
	for _, f := range zr.File {
		if !f.Mode().IsRegular() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			b.Fatal(err)
		}
		head := data[:min(len(data), secrets.HeadLimit)]
		if Short(f.Name) {
			head = head[:min(len(head), zipper.InspectShort)]
		}
		sum := sha256.Sum256(data)
		s.Hashed(f.Name, sum[:])
		s.Add(f.Name, int64(len(data)), f.CRC32, head)
	}
	return s
}
