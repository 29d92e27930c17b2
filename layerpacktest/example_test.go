package layerpacktest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/layerpacktest"
	"github.com/layerpack/layerpack/zipper"
)

// zipOf writes a deterministic zip of dir, as layerpack build does.
func zipOf(dir, out string) {
	entries, err := zipper.Scan(dir)
	if err != nil {
		panic(err)
	}
	if _, err := zipper.WriteFile(context.Background(), out, entries, zipper.Options{Level: 6}); err != nil {
		panic(err)
	}
}

// Listing, CodeSha256 and Compare are what the zipls, codesha and cmpzip script
// commands print; here they show why a layer's CodeSha256 changed.
func Example() {
	tmp, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "layer")
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin", "hello"), []byte("#!/bin/sh\necho hello\n"), 0o755)
	zipOf(src, filepath.Join(tmp, "before.zip"))

	listing, _ := layerpacktest.Listing(filepath.Join(tmp, "before.zip"))
	fmt.Print(listing)
	sum, _ := lambda.FileCodeSha256(filepath.Join(tmp, "before.zip"))
	fmt.Println(sum)

	// The script loses its execute bit: another CodeSha256, and cmpzip says why.
	os.Chmod(filepath.Join(src, "bin", "hello"), 0o644)
	zipOf(src, filepath.Join(tmp, "after.zip"))
	diff, _ := layerpacktest.Compare(filepath.Join(tmp, "before.zip"), filepath.Join(tmp, "after.zip"))
	fmt.Print(diff)
	// Output:
	// drwxr-xr-x        0 - store   1980-01-01T00:00:00 bin/
	// -rwxr-xr-x       21 bfdeaeb08cffb6a3 store   1980-01-01T00:00:00 bin/hello
	// 1MiIiC6IPTwd1s+j89K93lTltNwgI4X+OPEOvru2V9w=
	// "bin/hello": mode differs: a 0755 (-rwxr-xr-x), b 0644 (-rw-r--r--)
	// 1 difference
}
