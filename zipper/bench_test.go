package zipper

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// benchEntries is a small node_modules-like tree in memory: many small
// JavaScript-like files, a few larger ones, some that do not compress.
func benchEntries() ([]Entry, int64) {
	var entries []Entry
	var total int64
	add := func(name, data string) {
		entries = append(entries, memFile(name, data))
		total += int64(len(data))
	}
	text := textLines(3 << 20)
	for i := range 600 {
		n := 200 + (i*7919)%24000
		off := (i * 104729) % (len(text) - n)
		add(fmt.Sprintf("node_modules/pkg%02d/lib/file%03d.js", i%40, i), text[off:off+n])
	}
	for i := range 3 {
		add(fmt.Sprintf("node_modules/big/dist/bundle%d.js", i), text[i*1000:i*1000+2<<20])
	}
	for i := range 20 {
		add(fmt.Sprintf("node_modules/img/asset%02d.png", i), pseudoRandom(fmt.Sprint(i), 20_000))
	}
	return entries, total
}

func BenchmarkWrite(b *testing.B) {
	entries, total := benchEntries()
	for _, tc := range []struct {
		level, workers int
	}{
		{6, 1}, {6, runtime.NumCPU()}, {1, runtime.NumCPU()}, {9, runtime.NumCPU()}, {0, runtime.NumCPU()},
	} {
		b.Run(fmt.Sprintf("level=%d/workers=%d", tc.level, tc.workers), func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			var zipped int64
			for b.Loop() {
				st, err := Write(b.Context(), io.Discard, entries, Options{Level: tc.level, Workers: tc.workers})
				if err != nil {
					b.Fatal(err)
				}
				zipped = st.ZippedSize
			}
			b.ReportMetric(float64(zipped)/float64(total), "ratio")
		})
	}
}

// BenchmarkPlan measures sorting and checking names for a large listing.
func BenchmarkPlan(b *testing.B) {
	var entries []Entry
	for i := range 20000 {
		entries = append(entries, Entry{Name: fmt.Sprintf("node_modules/p%03d/%sf%05d.js", i%300, strings.Repeat("d/", i%4), i)})
	}
	for b.Loop() {
		if _, err := plan(entries, nil); err != nil {
			b.Fatal(err)
		}
	}
}
