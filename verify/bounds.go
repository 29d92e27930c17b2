package verify

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/layerpack/layerpack/lambda"
)

// innerBudget bounds the bytes inflated from entries inside jars: their sizes are
// not limited by Lambda, and a small jar can declare terabytes.
const innerBudget = 2 * lambda.MaxUnzippedSize

// declaredSize sums the uncompressed sizes the central directory declares,
// saturating instead of wrapping: a hostile zip can declare 2^64-1 bytes.
func declaredSize(files []*zip.File) int64 {
	var total uint64
	for _, f := range files {
		if f.UncompressedSize64 > math.MaxInt64-total {
			return math.MaxInt64
		}
		total += f.UncompressedSize64
	}
	return int64(total)
}

// span is where an entry's compressed data sits in the zip.
type span struct {
	name       string
	start, end int64
}

// checkOverlaps refuses entries whose data lies inside another entry's: a zip bomb
// points thousands of entries at one compressed stream, and no zip tool writes
// that. It also refuses data past the end of the file. It reports whether any
// entry overlaps, so that nothing is inflated then.
func (c *checker) checkOverlaps(ctx context.Context, files []*zip.File, zipSize int64) (bool, error) {
	spans := make([]span, 0, len(files))
	bad := false
	for i, f := range files {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		off, err := f.DataOffset()
		if err != nil {
			c.add(Error, f.Name, CheckZip, "%q cannot be read: %v", f.Name, err)
			bad = true
			continue
		}
		end := int64(math.MaxInt64)
		if f.CompressedSize64 <= uint64(math.MaxInt64-off) {
			end = off + int64(f.CompressedSize64)
		}
		if zipSize > 0 && end > zipSize {
			c.add(Error, f.Name, CheckZip, "%q declares %d compressed bytes at offset %d, past the end of the %d-byte zip", f.Name, f.CompressedSize64, off, zipSize)
			bad = true
			continue
		}
		spans = append(spans, span{f.Name, off, end})
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	reported, overlaps := 0, 0
	var widest span // the span reaching furthest so far
	for i, cur := range spans {
		// Each entry has its own local header before its data, so two entries
		// never start at one offset, empty or not.
		if i > 0 && (cur.start < widest.end || cur.start == spans[i-1].start) {
			other := widest
			if cur.start == spans[i-1].start {
				other = spans[i-1]
			}
			overlaps++
			if reported < maxPerGroup {
				reported++
				c.add(Error, cur.name, CheckOverlap, "%q shares compressed bytes with %q (offsets %d-%d and %d-%d); no zip tool writes that, zip bombs do",
					cur.name, other.name, cur.start, cur.end, other.start, other.end)
			}
		}
		if i == 0 || cur.end > widest.end {
			widest = cur
		}
	}
	if overlaps > reported {
		c.add(Error, "", CheckOverlap, "%d entries share compressed bytes with another; the first %d are listed", overlaps, reported)
	}
	return bad || overlaps > 0, nil
}

// ctxReader fails reads once ctx is done, so a long inflate stops on Ctrl-C.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// takeBudget reserves n bytes of the inner inflate budget, or says why not.
func (c *checker) takeBudget(n uint64) error {
	if n > uint64(c.budget) {
		return fmt.Errorf("it declares %d bytes, more than the %d bytes left for inspecting entries inside jars", n, c.budget)
	}
	c.budget -= int64(n)
	return nil
}
