package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// npmPackages are well-known packages that add up to about 200 MB unpacked
// (17,000 files). Exact versions keep the tree the same on every machine.
var npmPackages = map[string]string{
	"typescript":               "5.4.5",
	"aws-sdk":                  "2.1693.0",
	"@aws-sdk/client-s3":       "3.600.0",
	"@aws-sdk/client-dynamodb": "3.600.0",
	"rxjs":                     "7.8.1",
	"lodash":                   "4.17.21",
	"moment":                   "2.30.1",
	"date-fns":                 "3.6.0",
	"prettier":                 "3.3.2",
	"eslint":                   "8.57.0",
}

// nodeTree returns a node_modules folder installed by npm into the cache,
// installing it first if needed.
func nodeTree(cache string) (string, error) {
	pkg, err := json.MarshalIndent(map[string]any{
		"name": "layerpack-zipbench", "version": "1.0.0", "private": true, "dependencies": npmPackages,
	}, "", "  ")
	if err != nil {
		return "", err
	}
	spec := string(pkg)
	dir := filepath.Join(cache, "npm")
	if complete(dir, spec) {
		return filepath.Join(dir, "node_modules"), nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("npm is needed to build the benchmark tree (or give -tree): %w", err)
	}
	fmt.Printf("installing %d npm packages into %s ...\n", len(npmPackages), dir)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, "npm-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), pkg, 0o644); err != nil {
		return "", err
	}
	start := time.Now()
	cmd := exec.Command(npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm install: %w", err)
	}
	fmt.Printf("npm install took %.1f s\n", time.Since(start).Seconds())
	os.Remove(dir + ".complete")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	if err := markComplete(dir, spec); err != nil {
		return "", err
	}
	return filepath.Join(dir, "node_modules"), nil
}

// bigTree returns a generated tree of about size bytes: three files of 200+
// MB (two of text that compresses like logs and source, one random), and the
// rest in small files, mostly source-like text with some random binaries,
// spread over nested folders. The content comes from a fixed seed.
func bigTree(cache string, size int64) (string, error) {
	const version = 1
	bigSizes := []int64{230 << 20, 215 << 20, 205 << 20}
	var bigTotal int64
	for _, s := range bigSizes {
		bigTotal += s
	}
	if size < bigTotal*3/2 { // small sizes (for trying the tool): scale the big files
		for i := range bigSizes {
			bigSizes[i] = size / 6
		}
		bigTotal = size / 2
	}
	spec := fmt.Sprintf("v%d size=%d big=%v", version, size, bigSizes)
	dir := filepath.Join(cache, fmt.Sprintf("big-%d", size))
	if complete(dir, spec) {
		return dir, nil
	}
	fmt.Printf("generating a %.1f GB tree in %s ...\n", float64(size)/1e9, dir)
	start := time.Now()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, "big-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	if err := g.file(filepath.Join(tmp, "data/app.log"), bigSizes[0], g.logLine); err != nil {
		return "", err
	}
	if err := g.file(filepath.Join(tmp, "dist/bundle.js"), bigSizes[1], g.codeLine); err != nil {
		return "", err
	}
	if err := g.file(filepath.Join(tmp, "models/weights.bin"), bigSizes[2], nil); err != nil {
		return "", err
	}
	left := size - bigTotal
	for i := 0; left > 0; i++ {
		n := min(left, int64(200+g.r.IntN(g.r.IntN(64<<10)+1)*2))
		name := fmt.Sprintf("node_modules/pkg%03d/%s/file%05d", i%400, []string{"lib", "dist/esm", "dist/cjs", "src/util", "types"}[i%5], i)
		line := g.codeLine
		switch {
		case i%20 == 0:
			name, line = name+".wasm", nil
		case i%3 == 0:
			name, line = name+".json", g.jsonLine
		default:
			name += ".js"
		}
		if err := g.file(filepath.Join(tmp, name), n, line); err != nil {
			return "", err
		}
		left -= n
	}
	fmt.Printf("generated in %.1f s\n", time.Since(start).Seconds())
	os.Remove(dir + ".complete")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, markComplete(dir, spec)
}

type gen struct {
	r   *rand.Rand
	buf []byte
}

var words = strings.Fields(`const let var function return if else for while import export from default
class extends new this null undefined true false async await yield try catch finally throw typeof
request response handler context event error message status value result options config data
user account order item price total count index length name type id key token session cache`)

func (g *gen) word() string { return words[g.r.IntN(len(words))] }

func (g *gen) codeLine(b []byte) []byte {
	b = fmt.Appendf(b, "%s%s %s = %s(%s, %d);\n", strings.Repeat("  ", g.r.IntN(4)), g.word(), g.word(), g.word(), g.word(), g.r.IntN(10000))
	return b
}

func (g *gen) jsonLine(b []byte) []byte {
	return fmt.Appendf(b, "  {\"%s\": \"%s-%x\", \"%s\": %d},\n", g.word(), g.word(), g.r.Uint32(), g.word(), g.r.IntN(1e6))
}

func (g *gen) logLine(b []byte) []byte {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.r.Int64N(int64(365 * 24 * time.Hour))))
	return fmt.Appendf(b, "%s level=info req=%016x %s %s took=%dms status=%d\n",
		t.Format(time.RFC3339Nano), g.r.Uint64(), g.word(), g.word(), g.r.IntN(900), 200+g.r.IntN(4)*100)
}

// file writes n bytes made of lines from line, or random bytes if line is nil.
func (g *gen) file(path string, n int64, line func([]byte) []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for n > 0 {
		g.buf = g.buf[:0]
		if line == nil {
			for len(g.buf) < 64<<10 {
				var x [8]byte
				u := g.r.Uint64()
				for i := range x {
					x[i] = byte(u >> (8 * i))
				}
				g.buf = append(g.buf, x[:]...)
			}
		} else {
			for len(g.buf) < 64<<10 {
				g.buf = line(g.buf)
			}
		}
		k := min(int64(len(g.buf)), n)
		if _, err := w.Write(g.buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
