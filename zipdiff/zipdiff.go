// Package zipdiff explains why two zip files are not byte-for-byte identical:
// entries only in one of them, content, modes, times, extra fields, compression,
// flags, order, and the records around the entries. It is meant for chasing
// non-reproducible layer builds, where the same inputs give a different
// CodeSha256.
package zipdiff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/layerpack/layerpack/internal/ctxio"
)

// Difference is one way in which the two zips differ.
type Difference struct {
	// Entry is the entry name, or "" for the archive as a whole.
	Entry string `json:"entry"`
	// Property is a stable id: only-in-a, only-in-b, content, compressed, method,
	// flags, mode, external-attrs, creator, reader-version, modified, dos-time,
	// extra, local-extra, local-header, descriptor, comment, internal-attrs, order
	// for entries; archive-comment, prefix, gap, trailing, zip64, end-record,
	// central-directory, bytes for the archive.
	Property string `json:"property"`
	Message  string `json:"message"`
}

func (d Difference) String() string {
	entry := "(archive)"
	if d.Entry != "" {
		entry = fmt.Sprintf("%q", d.Entry)
	}
	return entry + ": " + d.Message
}

// Diff compares the zip files at paths a and b. Identical files have no
// differences; files that differ have at least one. Every size and offset in the
// files is taken as hostile; it stops with ctx's error once ctx is done.
func Diff(ctx context.Context, a, b string) ([]Difference, error) {
	fa, err := os.Open(a)
	if err != nil {
		return nil, fmt.Errorf("zipdiff: %w", err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return nil, fmt.Errorf("zipdiff: %w", err)
	}
	defer fb.Close()
	sa, err := fa.Stat()
	if err != nil {
		return nil, fmt.Errorf("zipdiff: %w", err)
	}
	sb, err := fb.Stat()
	if err != nil {
		return nil, fmt.Errorf("zipdiff: %w", err)
	}
	diffs, err := DiffReaders(ctx, fa, sa.Size(), fb, sb.Size())
	if err != nil {
		return nil, fmt.Errorf("zipdiff: %s vs %s: %w", a, b, err)
	}
	return diffs, nil
}

// DiffReaders compares two zips held in readers of the given sizes.
func DiffReaders(ctx context.Context, a io.ReaderAt, aSize int64, b io.ReaderAt, bSize int64) ([]Difference, error) {
	at, err := firstDifference(ctx, a, aSize, b, bSize)
	if err != nil {
		return nil, err
	}
	if at < 0 {
		return nil, nil
	}
	za, err := readArchive(a, aSize)
	if err != nil {
		return nil, fmt.Errorf("a: %w", err)
	}
	zb, err := readArchive(b, bSize)
	if err != nil {
		return nil, fmt.Errorf("b: %w", err)
	}
	d := &differ{ctx: ctx, a: za, b: zb}
	if err := d.entries(); err != nil {
		return nil, err
	}
	d.archive(at)
	return d.diffs, nil
}

// firstDifference returns the offset of the first byte where a and b differ, or -1
// when they are identical.
func firstDifference(ctx context.Context, a io.ReaderAt, aSize int64, b io.ReaderAt, bSize int64) (int64, error) {
	const chunk = 1 << 16
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	n := min(aSize, bSize)
	for off := int64(0); off < n; off += chunk {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		m := int(min(chunk, n-off))
		if _, err := a.ReadAt(ba[:m], off); err != nil && err != io.EOF {
			return 0, fmt.Errorf("a: %w", err)
		}
		if _, err := b.ReadAt(bb[:m], off); err != nil && err != io.EOF {
			return 0, fmt.Errorf("b: %w", err)
		}
		for i := 0; i < m; i++ {
			if ba[i] != bb[i] {
				return off + int64(i), nil
			}
		}
	}
	if aSize != bSize {
		return n, nil
	}
	return -1, nil
}

// Write prints the differences one a line, then a count.
func Write(w io.Writer, diffs []Difference) error {
	var b strings.Builder
	for _, d := range diffs {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	switch len(diffs) {
	case 0:
		b.WriteString("the zips are identical\n")
	case 1:
		b.WriteString("1 difference\n")
	default:
		fmt.Fprintf(&b, "%d differences\n", len(diffs))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type differ struct {
	ctx   context.Context
	a, b  *archive
	diffs []Difference
}

func (d *differ) add(entry, property, format string, args ...any) {
	d.diffs = append(d.diffs, Difference{Entry: entry, Property: property, Message: fmt.Sprintf(format, args...)})
}

// key matches entries: the name, and which copy of it for duplicated names.
type key struct {
	name string
	copy int
}

func keys(a *archive) ([]key, map[key]*entry) {
	seen := make(map[string]int)
	ks := make([]key, len(a.entries))
	m := make(map[key]*entry, len(a.entries))
	for i, e := range a.entries {
		k := key{e.name, seen[e.name]}
		seen[e.name]++
		ks[i] = k
		m[k] = e
	}
	return ks, m
}

// entries compares the entries: those of a in a's order, then those only in b.
func (d *differ) entries() error {
	ka, ma := keys(d.a)
	kb, mb := keys(d.b)
	moved := d.moved(ka, kb, mb)
	for _, k := range ka {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		ea := ma[k]
		eb, ok := mb[k]
		if !ok {
			d.add(k.name, "only-in-a", "only in a")
			continue
		}
		if err := d.entry(k.name, ea, eb); err != nil {
			return err
		}
		if moved[k] {
			d.add(k.name, "order", "order differs: entry %d of %d in a, entry %d of %d in b",
				ea.index+1, len(d.a.entries), eb.index+1, len(d.b.entries))
		}
	}
	for _, k := range kb {
		if _, ok := ma[k]; !ok {
			d.add(k.name, "only-in-b", "only in b")
		}
	}
	return nil
}

// moved finds the entries both zips have whose relative order changed: those
// outside a longest run that keeps its order (a longest increasing subsequence of
// their positions in b, taken in a's order).
func (d *differ) moved(ka, kb []key, mb map[key]*entry) map[key]bool {
	var common []key
	var pos []int
	for _, k := range ka {
		if e, ok := mb[k]; ok {
			common = append(common, k)
			pos = append(pos, e.index)
		}
	}
	// Patience sorting: tails[l] is the index (into pos) ending the best run of length l+1.
	var tails []int
	prev := make([]int, len(pos))
	for i, p := range pos {
		l := sort.Search(len(tails), func(j int) bool { return pos[tails[j]] >= p })
		if l > 0 {
			prev[i] = tails[l-1]
		} else {
			prev[i] = -1
		}
		if l == len(tails) {
			tails = append(tails, i)
		} else {
			tails[l] = i
		}
	}
	keep := make(map[int]bool)
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
			keep[i] = true
		}
	}
	moved := make(map[key]bool)
	for i, k := range common {
		if !keep[i] {
			moved[k] = true
		}
	}
	return moved
}

// entry compares one entry both zips have.
func (d *differ) entry(name string, a, b *entry) error {
	contentSame := a.crc == b.crc && a.usize == b.usize
	if !contentSame {
		d.add(name, "content", "content differs: a has %d bytes (CRC-32 0x%08x), b has %d bytes (CRC-32 0x%08x)", a.usize, a.crc, b.usize, b.crc)
	}
	if a.method != b.method {
		d.add(name, "method", "compression method differs: a %s, b %s", methodName(a.method), methodName(b.method))
	} else if contentSame {
		if a.csize != b.csize {
			d.add(name, "compressed", "compressed data differs: a %d bytes, b %d bytes, for the same content", a.csize, b.csize)
		} else {
			same, err := d.sameData(a, b)
			if err != nil {
				return err
			}
			if !same {
				d.add(name, "compressed", "compressed data differs: the same size (%d bytes) and content, but other bytes", a.csize)
			}
		}
	}
	if a.flags != b.flags {
		d.add(name, "flags", "general purpose flags differ: a %s, b %s", flagsString(a.flags), flagsString(b.flags))
	}
	ma, mb := fileMode(a), fileMode(b)
	if ma != mb {
		d.add(name, "mode", "mode differs: a %s, b %s", modeString(ma), modeString(mb))
	} else if a.external != b.external {
		d.add(name, "external-attrs", "external attributes differ: a 0x%08x, b 0x%08x (the same mode %s)", a.external, b.external, modeString(ma))
	}
	if a.creator != b.creator {
		d.add(name, "creator", "creator differs: a %s, b %s", creatorString(a.creator), creatorString(b.creator))
	}
	if a.reader != b.reader {
		d.add(name, "reader-version", "version needed to extract differs: a %s, b %s", versionString(a.reader), versionString(b.reader))
	}
	ta, tb := modTime(a), modTime(b)
	timeDiffers := !ta.t.Equal(tb.t)
	if timeDiffers {
		d.add(name, "modified", "modification time differs: a %s, b %s", ta, tb)
	} else if a.dosTime != b.dosTime || a.dosDate != b.dosDate {
		d.add(name, "dos-time", "MS-DOS time differs: a %s, b %s (the local time of the zipping machine; the exact times agree)",
			dosTime(a.dosDate, a.dosTime).Format(dosLayout), dosTime(b.dosDate, b.dosTime).Format(dosLayout))
	}
	// Most writers put the same extra fields in both headers; say so once then.
	central := extraDiff(a.extra, b.extra, timeDiffers)
	local := extraDiff(a.local.extra, b.local.extra, timeDiffers)
	switch {
	case central != "" && central == local:
		d.add(name, "extra", "extra fields differ: %s", central)
	default:
		if central != "" {
			d.add(name, "extra", "central directory extra fields differ: %s", central)
		}
		if local != "" {
			d.add(name, "local-extra", "local header extra fields differ: %s", local)
		}
	}
	if msg := localDiff(a, b); msg != "" {
		d.add(name, "local-header", "local header differs: %s", msg)
	}
	if a.descLen != b.descLen {
		d.add(name, "descriptor", "data descriptor differs: a %s, b %s", descString(a.descLen), descString(b.descLen))
	}
	if !bytes.Equal(a.comment, b.comment) {
		d.add(name, "comment", "comment differs: a %q, b %q", a.comment, b.comment)
	}
	if a.internal != b.internal {
		d.add(name, "internal-attrs", "internal attributes differ: a 0x%04x, b 0x%04x", a.internal, b.internal)
	}
	return nil
}

// sameData compares the compressed bytes of two entries of equal size.
func (d *differ) sameData(a, b *entry) (bool, error) {
	ha, err := hashRange(d.ctx, d.a.r, a.dataOffset, int64(a.csize))
	if err != nil {
		return false, fmt.Errorf("a: %q: %w", a.name, err)
	}
	hb, err := hashRange(d.ctx, d.b.r, b.dataOffset, int64(b.csize))
	if err != nil {
		return false, fmt.Errorf("b: %q: %w", b.name, err)
	}
	return ha == hb, nil
}

func hashRange(ctx context.Context, r io.ReaderAt, off, n int64) ([sha256.Size]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, ctxio.Reader(ctx, io.NewSectionReader(r, off, n))); err != nil {
		return [sha256.Size]byte{}, err
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// archive compares what lies around the entries. at is the first byte where the
// files differ; it is reported when nothing else explains the difference.
func (d *differ) archive(at int64) {
	a, b := d.a, d.b
	entryDiffs := len(d.diffs) > 0
	if !bytes.Equal(a.comment, b.comment) {
		d.add("", "archive-comment", "archive comment differs: a %q, b %q", a.comment, b.comment)
	}
	pa, ga, ta := layout(a)
	pb, gb, tb := layout(b)
	if pa != pb {
		d.add("", "prefix", "data before the first entry differs: a has %d bytes, b has %d bytes", pa, pb)
	}
	if ga != gb {
		d.add("", "gap", "bytes between records that no entry claims differ: a has %d, b has %d", ga, gb)
	}
	if ta != tb {
		d.add("", "trailing", "data after the end record differs: a has %d bytes, b has %d bytes", ta, tb)
	}
	if a.zip64 != b.zip64 {
		d.add("", "zip64", "zip64 end records differ: a %s, b %s", has(a.zip64), has(b.zip64))
	}
	// The end record's own fields: disk numbers, and entry counts that disagree
	// with the central directory. (Its offset, size and comment length follow from
	// everything else.)
	if !bytes.Equal(a.eocd[4:8], b.eocd[4:8]) || a.countsOff() != b.countsOff() {
		d.add("", "end-record", "end of central directory record differs: a %s; b %s", a.endRecord(), b.endRecord())
	}
	if len(d.diffs) > 0 {
		return
	}
	if !entryDiffs && (a.cdOffset != b.cdOffset || a.cdSize != b.cdSize || a.cdCount != b.cdCount) {
		d.add("", "central-directory", "central directory differs: a has %d entries in %d bytes at offset %d, b has %d entries in %d bytes at offset %d",
			a.cdCount, a.cdSize, a.cdOffset, b.cdCount, b.cdSize, b.cdOffset)
		return
	}
	d.add("", "bytes", "the files first differ at offset %d (a is %d bytes, b is %d bytes), in a way none of the other comparisons names", at, a.size, b.size)
}

// layout measures the bytes before the first local header, the bytes between
// records that nothing points to, and the bytes after the end record.
func layout(a *archive) (prefix, gaps, trailing int64) {
	type span struct{ start, end int64 }
	var spans []span
	for _, e := range a.entries {
		spans = append(spans, span{e.offset, e.end()})
	}
	spans = append(spans, span{a.cdOffset, a.cdOffset + a.cdSize})
	endStart := a.eocdOffset - a.zip64Len
	spans = append(spans, span{endStart, a.eocdOffset + eocdLen + int64(len(a.comment))})
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	prefix = spans[0].start
	covered := spans[0].end
	for _, s := range spans[1:] {
		if s.start > covered {
			gaps += s.start - covered
		}
		covered = max(covered, s.end)
	}
	trailing = a.size - (a.eocdOffset + eocdLen + int64(len(a.comment)))
	return prefix, gaps, trailing
}

func has(b bool) string {
	if b {
		return "has them"
	}
	return "has none"
}

var methodNames = map[uint16]string{
	0: "store", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz", 98: "ppmd", 99: "AES-encrypted",
}

func methodName(m uint16) string {
	if n, ok := methodNames[m]; ok {
		return fmt.Sprintf("%s (%d)", n, m)
	}
	return fmt.Sprintf("method %d", m)
}

func flagsString(f uint16) string {
	var names []string
	if f&0x1 != 0 {
		names = append(names, "encrypted")
	}
	switch f & 0x6 {
	case 0x2:
		names = append(names, "maximum compression")
	case 0x4:
		names = append(names, "fast compression")
	case 0x6:
		names = append(names, "super fast compression")
	}
	if f&0x8 != 0 {
		names = append(names, "data descriptor")
	}
	if f&0x800 != 0 {
		names = append(names, "UTF-8")
	}
	for bit := 4; bit < 16; bit++ {
		if bit != 11 && f&(1<<bit) != 0 {
			names = append(names, fmt.Sprintf("bit %d", bit))
		}
	}
	s := fmt.Sprintf("0x%04x", f)
	if len(names) > 0 {
		s += " (" + strings.Join(names, ", ") + ")"
	}
	return s
}

// fileMode reads the mode from the external attributes: Unix mode bits in the
// high 16 bits for zips made on Unix and OS X, MS-DOS attributes in the low byte
// otherwise.
func fileMode(e *entry) fs.FileMode {
	var m fs.FileMode
	switch e.creator >> 8 {
	case 3, 19:
		m = unixMode(e.external >> 16)
	default:
		m = 0o666
		if e.external&0x01 != 0 { // read-only
			m = 0o444
		}
		if e.external&0x10 != 0 { // directory
			m = fs.ModeDir | 0o777
		}
	}
	if strings.HasSuffix(e.name, "/") {
		m |= fs.ModeDir
	}
	return m
}

func unixMode(v uint32) fs.FileMode {
	m := fs.FileMode(v & 0o777)
	switch v & 0o170000 {
	case 0o040000:
		m |= fs.ModeDir
	case 0o120000:
		m |= fs.ModeSymlink
	case 0o010000:
		m |= fs.ModeNamedPipe
	case 0o140000:
		m |= fs.ModeSocket
	case 0o020000:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		m |= fs.ModeDevice
	}
	if v&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if v&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func modeString(m fs.FileMode) string {
	return fmt.Sprintf("%04o (%s)", uint32(m.Perm()), m)
}

var hostNames = map[byte]string{
	0: "MS-DOS", 1: "Amiga", 2: "OpenVMS", 3: "Unix", 4: "VM/CMS", 5: "Atari ST", 6: "OS/2 HPFS",
	7: "Macintosh", 8: "Z-System", 9: "CP/M", 10: "Windows NTFS", 11: "MVS", 12: "VSE", 13: "Acorn RISC",
	14: "VFAT", 15: "alternate MVS", 16: "BeOS", 17: "Tandem", 18: "OS/400", 19: "OS X",
}

func creatorString(v uint16) string {
	host := hostNames[byte(v>>8)]
	if host == "" {
		host = fmt.Sprintf("host %d", v>>8)
	}
	return fmt.Sprintf("%s, zip %d.%d (0x%04x)", host, (v&0xff)/10, (v&0xff)%10, v)
}

func versionString(v uint16) string {
	return fmt.Sprintf("%d.%d (%d)", v/10, v%10, v)
}

func descString(n int64) string {
	if n == 0 {
		return "has none"
	}
	return fmt.Sprintf("has %d bytes", n)
}

// localDiff compares the local header fields that the central directory does not
// already show to differ.
func localDiff(a, b *entry) string {
	var parts []string
	field := func(what string, va, vb, ca, cb any) {
		if va != vb && ca == cb {
			parts = append(parts, fmt.Sprintf("%s a %v, b %v", what, va, vb))
		}
	}
	field("version needed", a.local.reader, b.local.reader, a.reader, b.reader)
	field("flags", a.local.flags, b.local.flags, a.flags, b.flags)
	field("method", a.local.method, b.local.method, a.method, b.method)
	field("MS-DOS time", a.local.dosTime, b.local.dosTime, a.dosTime, b.dosTime)
	field("MS-DOS date", a.local.dosDate, b.local.dosDate, a.dosDate, b.dosDate)
	field("CRC-32", a.local.crc, b.local.crc, a.crc, b.crc)
	field("compressed size", a.local.csize, b.local.csize, a.csize, b.csize)
	field("size", a.local.usize, b.local.usize, a.usize, b.usize)
	field("name", a.local.name, b.local.name, a.name, b.name)
	return strings.Join(parts, "; ")
}

// Extra field ids (APPNOTE.TXT 4.5 and Info-ZIP's extrafld.txt).
var extraNames = map[uint16]string{
	0x0001: "zip64",
	0x000a: "NTFS times",
	0x000d: "Unix",
	0x5455: "extended timestamp",
	0x5855: "Info-ZIP Unix (old)",
	0x6375: "Unicode comment",
	0x7075: "Unicode path",
	0x7855: "Info-ZIP Unix",
	0x7875: "Unix UID/GID",
	0x9901: "AES encryption",
	0xcafe: "JAR marker",
	0xd935: "Android alignment",
}

func extraName(id uint16) string {
	if n, ok := extraNames[id]; ok {
		return fmt.Sprintf("0x%04x %s", id, n)
	}
	return fmt.Sprintf("0x%04x", id)
}

func extraList(fields []extraField, trailing int) string {
	if len(fields) == 0 && trailing == 0 {
		return "none"
	}
	var parts []string
	for _, f := range fields {
		parts = append(parts, fmt.Sprintf("%s (%d bytes)", extraName(f.id), len(f.data)))
	}
	if trailing > 0 {
		parts = append(parts, fmt.Sprintf("%d stray bytes", trailing))
	}
	return strings.Join(parts, ", ")
}

// extraDiff compares two extra blocks: the ids and lengths of their fields, then
// their contents. Time fields are left to the modification time comparison when
// the times differ, and zip64 fields to the size and position comparisons.
func extraDiff(a, b []byte, timeDiffers bool) string {
	fa, ta := parseExtra(a)
	fb, tb := parseExtra(b)
	la, lb := extraList(fa, ta), extraList(fb, tb)
	if la != lb {
		return "a " + la + "; b " + lb
	}
	var parts []string
	for i := range fa {
		if bytes.Equal(fa[i].data, fb[i].data) {
			continue
		}
		switch fa[i].id {
		case 0x0001:
			continue
		case 0x5455, 0x000a:
			if timeDiffers {
				continue
			}
		}
		parts = append(parts, fmt.Sprintf("%s has other bytes (%d bytes in both)", extraName(fa[i].id), len(fa[i].data)))
	}
	return strings.Join(parts, ", ")
}

const dosLayout = "2006-01-02 15:04:05"

// dosTime reads MS-DOS date and time fields, which have no time zone, as UTC.
func dosTime(d, t uint16) time.Time {
	return time.Date(int(d>>9)+1980, time.Month(d>>5&0xf), int(d&0x1f),
		int(t>>11), int(t>>5&0x3f), int(t&0x1f)*2, 0, time.UTC)
}

// stamp is an entry's modification time and where it came from.
type stamp struct {
	t     time.Time
	exact bool // from an extended timestamp or NTFS field, in UTC; else MS-DOS fields
}

func (s stamp) String() string {
	if s.exact {
		return s.t.UTC().Format(dosLayout) + " UTC"
	}
	return s.t.Format(dosLayout) + " (MS-DOS time, no time zone)"
}

// modTime prefers the extended timestamp (central, then local), then the NTFS
// field, over the MS-DOS fields.
func modTime(e *entry) stamp {
	for _, extra := range [][]byte{e.extra, e.local.extra} {
		if data, ok := findExtra(extra, 0x5455); ok && len(data) >= 5 && data[0]&1 != 0 {
			return stamp{time.Unix(int64(int32(le.Uint32(data[1:]))), 0).UTC(), true}
		}
	}
	for _, extra := range [][]byte{e.extra, e.local.extra} {
		if data, ok := findExtra(extra, 0x000a); ok && len(data) >= 4 {
			attrs := data[4:]
			for len(attrs) >= 4 {
				tag, size := le.Uint16(attrs), int(le.Uint16(attrs[2:]))
				if len(attrs) < 4+size {
					break
				}
				if tag == 1 && size >= 8 {
					ticks := int64(le.Uint64(attrs[4:])) // 100 ns since 1601-01-01
					const epochDiff = 116444736000000000
					return stamp{time.Unix(0, (ticks-epochDiff)*100).UTC(), true}
				}
				attrs = attrs[4+size:]
			}
		}
	}
	return stamp{dosTime(e.dosDate, e.dosTime), false}
}
