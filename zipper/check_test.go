package zipper

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/layerpack/layerpack/internal/testneed"
)

// This file holds the test helpers: a model of what an archive must contain,
// an independent parser of the raw bytes, and tree builders.

// want is what one archive entry must read back as.
type want struct {
	mode fs.FileMode
	data string // content, or symlink target
}

// rawEntry is an entry as parseRaw found it in the bytes.
type rawEntry struct {
	name                      string
	madeBy, version           uint16
	flags, method             uint16
	date, time                uint16
	crc                       uint32
	csize, usize              uint64
	offset                    uint64
	attrs                     uint32
	localExtra, centralExtra  []byte
	local32Csize, local32Size uint32
}

type rawArchive struct {
	entries  []rawEntry
	zip64End bool
}

// parseRaw reads an archive's bytes by the APPNOTE, without archive/zip, and
// fails t on anything this package promises not to write: a comment, a gap or
// overlap between records, a data descriptor, extra fields other than a
// needed zip64 one, flags other than UTF-8 (and that one exactly for non-ASCII
// names), unsorted names, or a local header that disagrees with the central one.
func parseRaw(t testing.TB, b []byte) rawArchive {
	t.Helper()
	le16 := func(p []byte) uint16 { return binary.LittleEndian.Uint16(p) }
	le32 := func(p []byte) uint32 { return binary.LittleEndian.Uint32(p) }
	le64 := func(p []byte) uint64 { return binary.LittleEndian.Uint64(p) }
	if len(b) < endLen {
		t.Fatalf("archive of %d bytes is too short", len(b))
	}
	end := b[len(b)-endLen:]
	if le32(end) != sigEnd {
		t.Fatalf("no end of central directory record at the very end (a comment?)")
	}
	var ra rawArchive
	count := uint64(le16(end[10:]))
	if le16(end[8:]) != uint16(count) {
		t.Fatalf("entry counts differ in the end record")
	}
	cdSize := uint64(le32(end[12:]))
	cdOffset := uint64(le32(end[16:]))
	tail := uint64(endLen)
	if len(b) >= endLen+locator64Len+end64Len && le32(b[len(b)-endLen-locator64Len:]) == sigLocator64 {
		ra.zip64End = true
		loc := b[len(b)-endLen-locator64Len:]
		off := le64(loc[8:])
		if off != uint64(len(b)-endLen-locator64Len-end64Len) {
			t.Fatalf("zip64 locator points at %d", off)
		}
		e := b[off:]
		if le32(e) != sigEnd64 || le64(e[4:]) != end64Len-12 {
			t.Fatalf("bad zip64 end record")
		}
		n64, cs64, co64 := le64(e[32:]), le64(e[40:]), le64(e[48:])
		if le64(e[24:]) != n64 {
			t.Fatalf("entry counts differ in the zip64 end record")
		}
		if !endNeedsZip64(n64, cs64, co64) {
			t.Fatalf("zip64 end record written but not needed: %d entries, cd %d at %d", n64, cs64, co64)
		}
		for _, f := range []struct{ v32, v64, max uint64 }{{count, n64, max16}, {cdSize, cs64, max32}, {cdOffset, co64, max32}} {
			if f.v32 != min(f.v64, f.max) {
				t.Fatalf("end record field %d does not match zip64 value %d", f.v32, f.v64)
			}
		}
		count, cdSize, cdOffset = n64, cs64, co64
		tail += locator64Len + end64Len
	} else if endNeedsZip64(count, cdSize, cdOffset) {
		t.Fatalf("zip64 end record missing")
	}
	if cdOffset+cdSize+tail != uint64(len(b)) {
		t.Fatalf("central directory (%d at %d) does not end where the end records start", cdSize, cdOffset)
	}

	cd := b[cdOffset : cdOffset+cdSize]
	next := uint64(0) // where the next local header must start
	for i := uint64(0); i < count; i++ {
		if len(cd) < centralHeaderLen || le32(cd) != sigCentral {
			t.Fatalf("central header %d: bad signature", i)
		}
		var e rawEntry
		e.madeBy, e.version = le16(cd[4:]), le16(cd[6:])
		e.flags, e.method = le16(cd[8:]), le16(cd[10:])
		e.time, e.date = le16(cd[12:]), le16(cd[14:])
		e.crc = le32(cd[16:])
		e.csize, e.usize = uint64(le32(cd[20:])), uint64(le32(cd[24:]))
		nameLen, extraLen, commentLen := int(le16(cd[28:])), int(le16(cd[30:])), int(le16(cd[32:]))
		if commentLen != 0 || le16(cd[34:]) != 0 || le16(cd[36:]) != 0 {
			t.Fatalf("central header %d: comment, disk or internal attributes set", i)
		}
		e.attrs = le32(cd[38:])
		e.offset = uint64(le32(cd[42:]))
		e.name = string(cd[centralHeaderLen : centralHeaderLen+nameLen])
		e.centralExtra = cd[centralHeaderLen+nameLen : centralHeaderLen+nameLen+extraLen]
		cd = cd[centralHeaderLen+nameLen+extraLen:]
		if len(e.centralExtra) > 0 {
			x := e.centralExtra
			if le16(x) != extraZip64 || int(le16(x[2:])) != len(x)-4 {
				t.Fatalf("%s: central extra field is not a lone zip64 field: %x", e.name, x)
			}
			x = x[4:]
			for _, p := range []*uint64{&e.usize, &e.csize, &e.offset} {
				if *p == max32 {
					*p = le64(x)
					x = x[8:]
				}
			}
			if len(x) != 0 {
				t.Fatalf("%s: zip64 field has unneeded values", e.name)
			}
		}
		if need := entryNeedsZip64(e.usize, e.csize, e.offset); need != (len(e.centralExtra) > 0) {
			t.Fatalf("%s: zip64 field present=%v, needed=%v", e.name, !need, need)
		}
		if e.madeBy>>8 != creatorUnix {
			t.Fatalf("%s: made by %#x, not Unix", e.name, e.madeBy)
		}
		if e.offset != next {
			t.Fatalf("%s: local header at %d, want %d (gap or data descriptor?)", e.name, e.offset, next)
		}

		// The local header must repeat the central one.
		l := b[e.offset:]
		if le32(l) != sigLocal {
			t.Fatalf("%s: bad local signature", e.name)
		}
		if le16(l[4:]) != e.version || le16(l[6:]) != e.flags || le16(l[8:]) != e.method ||
			le16(l[10:]) != e.time || le16(l[12:]) != e.date || le32(l[14:]) != e.crc {
			t.Fatalf("%s: local header disagrees with central header", e.name)
		}
		e.local32Csize, e.local32Size = le32(l[18:]), le32(l[22:])
		ln, lx := int(le16(l[26:])), int(le16(l[28:]))
		if string(l[localHeaderLen:localHeaderLen+ln]) != e.name {
			t.Fatalf("%s: local name differs", e.name)
		}
		e.localExtra = l[localHeaderLen+ln : localHeaderLen+ln+lx]
		if sizesNeedZip64(e.usize, e.csize) {
			x := e.localExtra
			if e.local32Csize != max32 || e.local32Size != max32 || len(x) != 20 ||
				le16(x) != extraZip64 || le16(x[2:]) != 16 || le64(x[4:]) != e.usize || le64(x[12:]) != e.csize {
				t.Fatalf("%s: bad local zip64 sizes", e.name)
			}
		} else if lx != 0 || uint64(e.local32Csize) != e.csize || uint64(e.local32Size) != e.usize {
			t.Fatalf("%s: local sizes or extra field wrong", e.name)
		}
		next = e.offset + localHeaderLen + uint64(ln+lx) + e.csize

		wantFlags := uint16(0)
		if !isASCII(e.name) {
			wantFlags = flagUTF8
		}
		if e.flags != wantFlags {
			t.Fatalf("%s: flags %#x, want %#x", e.name, e.flags, wantFlags)
		}
		if e.method != methodStore && e.method != methodDeflate {
			t.Fatalf("%s: method %d", e.name, e.method)
		}
		if e.method == methodDeflate && e.csize >= e.usize {
			t.Fatalf("%s: deflated to %d bytes from %d", e.name, e.csize, e.usize)
		}
		if e.method == methodStore && e.csize != e.usize {
			t.Fatalf("%s: stored sizes differ", e.name)
		}
		if n := len(ra.entries); n > 0 && ra.entries[n-1].name >= e.name {
			t.Fatalf("names out of order: %q then %q", ra.entries[n-1].name, e.name)
		}
		ra.entries = append(ra.entries, e)
	}
	if len(cd) != 0 {
		t.Fatalf("%d bytes left in the central directory", len(cd))
	}
	if next != cdOffset {
		t.Fatalf("entries end at %d, central directory starts at %d", next, cdOffset)
	}
	return ra
}

// readBack reads every entry with archive/zip (which checks each CRC) and
// checks its timestamp and that no extra field reached the reader.
func readBack(t testing.TB, b []byte, when time.Time) map[string]want {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("archive/zip: %v", err)
	}
	got := make(map[string]want, len(zr.File))
	for _, f := range zr.File {
		if len(f.Extra) != 0 {
			t.Errorf("%s: archive/zip sees extra %x", f.Name, f.Extra)
		}
		if !f.Modified.Equal(when) || f.Modified.Location() != time.UTC {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, when)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("%s: open: %v", f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: read: %v", f.Name, err)
		}
		if _, dup := got[f.Name]; dup {
			t.Fatalf("%s: twice", f.Name)
		}
		got[f.Name] = want{mode: f.Mode(), data: string(data)}
	}
	return got
}

// model is what an archive of entries must hold: normalised modes and every
// parent folder.
func model(entries []Entry, read func(Entry) string) map[string]want {
	m := make(map[string]want)
	for _, e := range entries {
		name := e.Name
		switch {
		case e.Mode&fs.ModeSymlink != 0:
			m[name] = want{mode: fs.ModeSymlink | 0o777, data: e.Link}
		case e.Mode.IsDir() || strings.HasSuffix(name, "/"):
			name = strings.TrimSuffix(name, "/") + "/"
			m[name] = want{mode: fs.ModeDir | 0o755}
		default:
			perm := fs.FileMode(0o644)
			if e.Mode&0o111 != 0 {
				perm = 0o755
			}
			m[name] = want{mode: perm, data: read(e)}
		}
		for i := 0; i < len(name)-1; i++ {
			if name[i] == '/' {
				m[name[:i+1]] = want{mode: fs.ModeDir | 0o755}
			}
		}
	}
	return m
}

func readEntry(e Entry) string {
	if e.Open == nil {
		return ""
	}
	rc, err := e.Open()
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func compareModel(t testing.TB, got, exp map[string]want) {
	t.Helper()
	for name, w := range exp {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%q missing from the archive", name)
		case g.mode != w.mode:
			t.Errorf("%q: mode %v, want %v", name, g.mode, w.mode)
		case g.data != w.data:
			t.Errorf("%q: content differs (%d bytes, want %d)", name, len(g.data), len(w.data))
		}
	}
	for name := range got {
		if _, ok := exp[name]; !ok {
			t.Errorf("%q in the archive but not expected", name)
		}
	}
}

// checkArchive runs every structural check and compares the content.
func checkArchive(t testing.TB, b []byte, when time.Time, exp map[string]want) rawArchive {
	t.Helper()
	ra := parseRaw(t, b)
	got := readBack(t, b, when)
	compareModel(t, got, exp)
	return ra
}

// node is one thing in a test tree; a trailing "/" makes a folder.
type node struct {
	path string
	perm fs.FileMode
	data string
	link string
}

func pseudoRandom(seed string, n int) string {
	var b []byte
	for i := 0; len(b) < n; i++ {
		s := sha256.Sum256(fmt.Appendf(nil, "%s %d", seed, i))
		b = append(b, s[:]...)
	}
	return string(b[:n])
}

func textLines(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		s := sha256.Sum256(fmt.Appendf(nil, "%d", i))
		fmt.Fprintf(&b, "export const item%06d = { id: %d, key: \"%x\", tags: [\"alpha\", \"beta\"] };\n", i, i%977, s[:6])
	}
	return b.String()[:n]
}

// goldenTree has a bit of everything: nested folders, an executable, a
// non-ASCII name, an empty folder, a symlink, an empty file, content that does
// not compress, and two files above the 1 MiB in-memory limit (one
// compressible, one not).
var goldenTree = []node{
	{path: "README.md", perm: 0o644, data: "# demo layer\n\nFiles for the golden test.\n"},
	{path: "bin/", perm: 0o755},
	{path: "bin/tool", perm: 0o755, data: "#!/bin/sh\necho hello from tool\n"},
	{path: "nodejs/node_modules/pkg/index.js", perm: 0o644, data: strings.Repeat("module.exports = function add(a, b) { return a + b; };\n", 200)},
	{path: "nodejs/node_modules/pkg/package.json", perm: 0o644, data: `{"name":"pkg","version":"1.0.0","main":"index.js"}` + "\n"},
	{path: "nodejs/node_modules/.bin/pkg", link: "../pkg/index.js"},
	{path: "données/café.txt", perm: 0o644, data: "crème brûlée, 日本語\n"},
	{path: "empty/", perm: 0o755},
	{path: "data/random.bin", perm: 0o644, data: pseudoRandom("random", 4096)},
	{path: "data/empty.txt", perm: 0o644},
	{path: "lib/big.js", perm: 0o644, data: textLines(2<<20 + 12345)},
	{path: "lib/big-random.bin", perm: 0o644, data: pseudoRandom("big", 1<<20+777)},
}

// buildTree creates nodes under root in the given order, with the given umask
// and mtime (zero: leave as created).
func buildTree(t testing.TB, root string, nodes []node, umask int, mtime time.Time) {
	t.Helper()
	old := syscall.Umask(umask)
	defer syscall.Umask(old)
	for _, n := range nodes {
		p := filepath.Join(root, filepath.FromSlash(n.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(n.path, "/"):
			err = os.MkdirAll(p, n.perm)
		case n.link != "":
			err = os.Symlink(n.link, p)
		default:
			err = os.WriteFile(p, []byte(n.data), n.perm)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if mtime.IsZero() {
		return
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// treeModel is what an archive of nodes must hold.
func treeModel(nodes []node) map[string]want { return model(memEntries(nodes), readEntry) }

// memEntries turns nodes into in-memory entries.
func memEntries(nodes []node) []Entry {
	var entries []Entry
	for _, n := range nodes {
		e := Entry{Name: n.path, Mode: n.perm, Link: n.link}
		switch {
		case strings.HasSuffix(n.path, "/"):
			e.Mode |= fs.ModeDir
		case n.link != "":
			e.Mode = fs.ModeSymlink
		default:
			e.Size = int64(len(n.data))
			data := n.data
			e.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }
		}
		entries = append(entries, e)
	}
	return entries
}

// tool skips t when an external program is missing.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testneed.Missing(t, fmt.Sprintf("%s not installed", name))
	}
	return p
}

// sortedNames lists the names of a model in byte order.
func sortedNames(m map[string]want) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
