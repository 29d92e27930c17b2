package verify

import (
	"archive/zip"
	"context"
	"encoding/binary"
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
// entry overlaps, so that nothing is inflated then, and returns each entry's data
// offset (-1 when its local header cannot be read) for checkHidden.
func (c *checker) checkOverlaps(ctx context.Context, files []*zip.File, zipSize int64) ([]int64, bool, error) {
	spans := make([]span, 0, len(files))
	offsets := make([]int64, len(files))
	bad := false
	for i, f := range files {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, false, err
			}
		}
		off, err := f.DataOffset()
		offsets[i] = off
		if err != nil {
			offsets[i] = -1
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
	return offsets, bad || overlaps > 0, nil
}

// takeBudget reserves n bytes of the inner inflate budget, or says why not.
func (c *checker) takeBudget(n uint64) error {
	if n > uint64(c.budget) {
		return fmt.Errorf("it declares %d bytes, more than the %d bytes left for inspecting entries inside jars", n, c.budget)
	}
	c.budget -= int64(n)
	return nil
}

// centralDirOffset finds where the central directory starts, from the end record
// (or the zip64 one) in the last 64 KiB of the file. archive/zip has read the
// same records; it does not say where they are.
func centralDirOffset(r io.ReaderAt, size int64) (int64, bool) {
	const eocdLen, locLen, z64Len = 22, 20, 56
	n := min(size, eocdLen+0xffff)
	if n < eocdLen {
		return 0, false
	}
	tail := make([]byte, n)
	if _, err := r.ReadAt(tail, size-n); err != nil && err != io.EOF {
		return 0, false
	}
	le := binary.LittleEndian
	for i := len(tail) - eocdLen; i >= 0; i-- {
		if le.Uint32(tail[i:]) != 0x06054b50 || i+eocdLen+int(le.Uint16(tail[i+20:])) > len(tail) {
			continue
		}
		off, cdSize := uint64(le.Uint32(tail[i+16:])), uint64(le.Uint32(tail[i+12:]))
		eocdAt := size - n + int64(i)
		endAt := eocdAt // where the central directory ends
		if off == 0xffffffff && eocdAt >= locLen+z64Len {
			var loc [locLen]byte
			if _, err := r.ReadAt(loc[:], eocdAt-locLen); err != nil || le.Uint32(loc[:]) != 0x07064b50 {
				return 0, false
			}
			at := le.Uint64(loc[8:])
			if at > uint64(eocdAt-locLen-z64Len) {
				return 0, false
			}
			var rec [z64Len]byte
			if _, err := r.ReadAt(rec[:], int64(at)); err != nil || le.Uint32(rec[:]) != 0x06064b50 {
				return 0, false
			}
			off, cdSize, endAt = le.Uint64(rec[48:]), le.Uint64(rec[40:]), int64(at)
		}
		// Offsets count from the start of the zip, after any prefix (a script
		// before a self-extracting zip); like archive/zip, take them as written
		// when a central record is there.
		var sig [4]byte
		if off < uint64(size) {
			if _, err := r.ReadAt(sig[:], int64(off)); err == nil && le.Uint32(sig[:]) == 0x02014b50 {
				return int64(off), true
			}
		}
		if cdSize > uint64(endAt) || off > uint64(endAt)-cdSize {
			return 0, false
		}
		return endAt - int64(cdSize), true
	}
	return 0, false
}

// checkHidden refuses data a streaming unzip would read as more entries than the
// central directory lists: entries whose data runs into the central directory,
// and a local header right after the last entry instead of the central directory.
// offsets are the entries' data offsets, from checkOverlaps.
func (c *checker) checkHidden(r io.ReaderAt, size int64, files []*zip.File, offsets []int64) {
	cd, ok := centralDirOffset(r, size)
	if !ok || len(files) == 0 {
		return
	}
	var last *zip.File
	var lastEnd int64 = -1
	for i, f := range files {
		off := offsets[i]
		if off < 0 {
			continue // reported by checkOverlaps
		}
		end := off + int64(f.CompressedSize64) // checkOverlaps bounded it by size
		if end > cd {
			c.add(Error, f.Name, CheckZip, "%q has data at offset %d-%d, past the start of the central directory at %d; zip tools disagree on such files", f.Name, off, end, cd)
		}
		if end > lastEnd {
			last, lastEnd = f, end
		}
	}
	if lastEnd < 0 || lastEnd >= cd {
		return
	}
	var sig [4]byte
	at := lastEnd
	if last.Flags&0x8 != 0 {
		// A data descriptor: optional signature, CRC and two sizes (4 or 8 bytes).
		if _, err := r.ReadAt(sig[:], at); err == nil && binary.LittleEndian.Uint32(sig[:]) == 0x08074b50 {
			at += 4
		}
		at += 12
		if last.CompressedSize64 >= 0xffffffff || last.UncompressedSize64 >= 0xffffffff {
			at += 8
		}
	}
	if at+4 <= cd {
		if _, err := r.ReadAt(sig[:], at); err == nil && binary.LittleEndian.Uint32(sig[:]) == 0x04034b50 {
			c.add(Error, "", CheckZip, "a local header at offset %d, after the last entry the central directory lists (%q), is missing from the central directory: a streaming unzip would extract a hidden entry", at, last.Name)
		}
	}
}
