package verify

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/layerpack/layerpack/internal/ziptest"
)

// overlapBomb is ziptest.Bomb: n entries sharing one stream of size zeros.
func overlapBomb(_ testing.TB, n, size, declared int) []byte { return ziptest.Bomb(n, size, declared) }

// compressedOf is the compressed size of the bomb's only stream.
func (Report) compressedOf(t testing.TB, b []byte) uint64 {
	return readerOf(t, b).File[0].CompressedSize64
}

func readerOf(t testing.TB, b []byte) *zip.Reader {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func TestZipBomb(t *testing.T) {
	b := overlapBomb(t, 10000, 1<<20, 0) // 10,000 x 1 MiB declared: 10 GiB
	start := time.Now()
	rep, err := ReaderContext(t.Context(), readerOf(t, b), Options{zipSize: int64(len(b))})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("verify took %v on a %d-byte bomb", d, len(b))
	}
	got := messages(rep.Findings)
	// The stream's length depends on the Go release's deflate; the data starts
	// after the 30-byte local header and the 1-byte name.
	end := fmt.Sprint(31 + rep.compressedOf(t, b))
	want := `error overlap [] 9999 entries share compressed bytes with another; the first 3 are listed
error size [] the layer unzips to 10485760000 bytes, more than the 262144000 bytes Lambda allows for a function and all its layers together
error overlap [f00001] "f00001" shares compressed bytes with "f00000" (offsets 31-1051 and 31-1051); no zip tool writes that, zip bombs do
error overlap [f00002] "f00002" shares compressed bytes with "f00001" (offsets 31-1051 and 31-1051); no zip tool writes that, zip bombs do
error overlap [f00003] "f00003" shares compressed bytes with "f00002" (offsets 31-1051 and 31-1051); no zip tool writes that, zip bombs do
warning zip [] the contents were not read (ELF, jars, secrets, checksums): entries overlap or run past the end of the file
`
	want = strings.ReplaceAll(want, "1051", end)
	if got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
	if rep.UnzippedSize != 10000<<20 {
		t.Errorf("UnzippedSize = %d", rep.UnzippedSize)
	}
}

func TestDeclaredTooLargeIsNotInflated(t *testing.T) {
	// One entry that declares more than the limit: refused before any byte is
	// inflated. Its stream is short, so reading it would add a "cannot be read".
	b := overlapBomb(t, 1, 1024, 300<<20)
	rep, err := Reader(readerOf(t, b), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `error size [] the layer unzips to 314572800 bytes, more than the 262144000 bytes Lambda allows for a function and all its layers together
warning zip [] the contents were not read (ELF, jars, secrets, checksums): the entries declare 314572800 bytes in all, more than the 262144000 bytes Lambda allows
`
	if got := messages(rep.Findings); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}

func TestReadStopsAtDeclaredSize(t *testing.T) {
	// 10 MiB of zeros declared as 1 KiB: reading stops at 1 KiB.
	b := overlapBomb(t, 1, 10<<20, 1024)
	rep, err := Reader(readerOf(t, b), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `error zip [f00000] "f00000" cannot be read: zip: not a valid zip file
`
	if got := messages(rep.Findings); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ReaderContext(ctx, zipReader(t, file{name: "bin/x", mode: 0o755, data: strings.Repeat("x", 1000)}), Options{})
	if !errors.Is(err, context.Canceled) || err.Error() != "verify: context canceled" {
		t.Fatalf("err = %v, want verify: context canceled", err)
	}
}
