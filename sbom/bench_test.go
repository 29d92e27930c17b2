package sbom

import (
	"os"
	"testing"
)

// BenchmarkFromZipLayer describes the layer zip LAYERPACK_BENCH_ZIP names (a
// build's output, e.g. of the npm benchmark tree).
func BenchmarkFromZipLayer(b *testing.B) {
	path := os.Getenv("LAYERPACK_BENCH_ZIP")
	if path == "" {
		b.Skip("LAYERPACK_BENCH_ZIP names no zip")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromZip(path, Options{Name: "bench", Time: epoch}); err != nil {
			b.Fatal(err)
		}
	}
}
