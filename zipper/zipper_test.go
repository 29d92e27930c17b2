package zipper

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
)

const goldenEpoch = "1700000000" // 2023-11-14 22:13:20 UTC

// goldenSHA256 is the SHA-256 of the archive of goldenTree at level 6 and
// goldenEpoch, checked by hand with zipinfo -v and unzip -t. It changes only
// if a byte of the output changes: a new encoder version, or a change of the
// rules in this package. Change it only on purpose.
const goldenSHA256 = "0814a4e0f9485fd45894d950c0be7531e5731208efb39b41c5f16bfc9238fc3b"

func goldenTime(t testing.TB) time.Time {
	t.Helper()
	tm, err := Epoch(func(k string) string {
		if k == EpochVar {
			return goldenEpoch
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// tinyLimits drive every path (file spills, rereads, a budget that allows
// one entry at a time) with small inputs.
func tinyLimits(spillDir string) limits {
	return limits{small: 1000, budget: 12 << 10, spillMem: 4 << 10, chunk: 1 << 10, lookahead: 3, spillDir: spillDir}
}

func TestGolden(t *testing.T) {
	root := t.TempDir()
	buildTree(t, root, goldenTree, 0o022, time.Time{})
	entries, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	when := goldenTime(t)
	out := filepath.Join(t.TempDir(), "layer.zip")
	st, err := WriteFile(t.Context(), out, entries, Options{Level: 6, Time: when})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != goldenSHA256 {
		t.Errorf("golden archive SHA-256 = %s, want %s (encoder %s %s)", got, goldenSHA256, Encoder, EncoderVersion())
	}
	checkArchive(t, b, when, treeModel(goldenTree))
	exp := Stats{Entries: 19, Files: 9, Dirs: 9, Symlinks: 1, Stored: 8, ZippedSize: int64(len(b))}
	for _, n := range goldenTree {
		if !strings.HasSuffix(n.path, "/") {
			exp.UnzippedSize += int64(len(n.data) + len(n.link))
		}
	}
	if st != exp {
		t.Errorf("stats %+v, want %+v", st, exp)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("output file: %v, %v", fi.Mode(), err)
	}

	// Same bytes whatever the workers, limits (in-memory, spilled to a file,
	// reread) or the source of the entries.
	for _, tc := range []struct {
		name    string
		workers int
		lim     limits
		mem     bool
	}{
		{"1 worker", 1, defaultLimits, false},
		{"7 workers", 7, defaultLimits, false},
		{"tiny limits", 3, tinyLimits(t.TempDir()), false},
		{"tiny limits, 1 worker", 1, tinyLimits(t.TempDir()), false},
		{"in-memory entries", 2, defaultLimits, true},
	} {
		es := entries
		if tc.mem {
			es = memEntries(goldenTree)
		}
		var buf bytes.Buffer
		if _, err := write(t.Context(), &buf, es, Options{Level: 6, Time: when, Workers: tc.workers}, tc.lim); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(buf.Bytes(), b) {
			t.Errorf("%s: output differs", tc.name)
		}
		if tc.lim.spillDir != "" {
			if left, _ := os.ReadDir(tc.lim.spillDir); len(left) != 0 {
				t.Errorf("%s: spill files left: %v", tc.name, left)
			}
		}
	}
}

// TestInfoZIP has Info-ZIP's unzip test the archive and list it, and checks
// what zipinfo reports for each entry.
func TestInfoZIP(t *testing.T) {
	unzip := tool(t, "unzip")
	root := t.TempDir()
	buildTree(t, root, goldenTree, 0o022, time.Time{})
	entries, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "layer.zip")
	if _, err := WriteFile(t.Context(), out, entries, Options{Level: 6, Time: goldenTime(t)}); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(unzip, "-t", out).CombinedOutput()
	if err != nil || !strings.Contains(string(res), "No errors detected") {
		t.Fatalf("unzip -t: %v\n%s", err, res)
	}
	// zipinfo -l: one line per entry, with the Unix mode string.
	res, err = exec.Command(unzip, "-Z", "-l", out).CombinedOutput()
	if err != nil {
		t.Fatalf("zipinfo: %v\n%s", err, res)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(string(res), "\n") {
		f := strings.Fields(l)
		if len(f) >= 10 && len(f[0]) == 10 {
			lines[f[len(f)-1]] = l
		}
	}
	for name, pat := range map[string]string{
		"bin/":                         "drwxr-xr-x  2.0 unx        0 b-        0 stor 23-Nov-14 22:13",
		"bin/tool":                     "-rwxr-xr-x  2.0 unx       31 b-",
		"data/random.bin":              "-rw-r--r--  2.0 unx     4096 b-     4096 stor",
		"data/empty.txt":               "-rw-r--r--  2.0 unx        0 b-        0 stor",
		"nodejs/node_modules/.bin/pkg": "lrwxrwxrwx  2.0 unx       15 b-       15 stor",
		"lib/big.js":                   "defN",
		"lib/big-random.bin":           "stor",
	} {
		l, ok := lines[name]
		if !ok {
			t.Errorf("zipinfo does not list %s:\n%s", name, res)
		} else if !strings.Contains(l, pat) {
			t.Errorf("zipinfo line for %s:\n%s\nwant it to contain %q", name, l, pat)
		}
	}
	// Extract and compare with the tree, symlink included.
	dst := t.TempDir()
	if res, err := exec.Command(unzip, "-q", out, "-d", dst).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, res)
	}
	for _, n := range goldenTree {
		p := filepath.Join(dst, filepath.FromSlash(n.path))
		switch {
		case n.link != "":
			if got, err := os.Readlink(p); err != nil || got != n.link {
				t.Errorf("%s: link %q, %v", n.path, got, err)
			}
		case !strings.HasSuffix(n.path, "/"):
			if got, err := os.ReadFile(p); err != nil || string(got) != n.data {
				t.Errorf("%s: extracted content differs (%v)", n.path, err)
			}
		}
	}
}

// TestDeterminism writes the same content from two trees made with different
// umasks, mtimes, creation orders and time zones.
func TestDeterminism(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	when := goldenTime(t)

	build := func(umask int, mtime time.Time, reverse bool, zone *time.Location) []byte {
		root := t.TempDir()
		nodes := slices.Clone(goldenTree)
		if reverse {
			slices.Reverse(nodes)
		}
		buildTree(t, root, nodes, umask, mtime)
		time.Local = zone
		entries, err := Scan(root)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "a.zip")
		if _, err := WriteFile(t.Context(), out, entries, Options{Level: 6, Time: when.In(time.Local)}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := build(0o022, time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), false, time.FixedZone("east", 14*3600))
	b := build(0o077, time.Now(), true, time.FixedZone("west", -11*3600))
	if !bytes.Equal(a, b) {
		t.Fatalf("archives differ: %d and %d bytes", len(a), len(b))
	}
	checkArchive(t, a, when, treeModel(goldenTree))
}

func TestEpoch(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    time.Time
		wantErr string
	}{
		{"", minDOSTime, ""},
		{"0", minDOSTime, ""},
		{"-86400", minDOSTime, ""},
		{"315532799", minDOSTime, ""},
		{"315532800", minDOSTime, ""},
		{"1700000000", time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC), ""},
		{"4354819199", time.Date(2107, 12, 31, 23, 59, 59, 0, time.UTC), ""},
		{"4354819200", time.Time{}, `zipper: SOURCE_DATE_EPOCH="4354819200": after 2107-12-31T23:59:58Z, the last time a zip can hold`},
		{"abc", time.Time{}, `zipper: SOURCE_DATE_EPOCH="abc": not a decimal number of seconds: strconv.ParseInt: parsing "abc": invalid syntax`},
		{"1.5", time.Time{}, `zipper: SOURCE_DATE_EPOCH="1.5": not a decimal number of seconds: strconv.ParseInt: parsing "1.5": invalid syntax`},
		{" 1", time.Time{}, `zipper: SOURCE_DATE_EPOCH=" 1": not a decimal number of seconds: strconv.ParseInt: parsing " 1": invalid syntax`},
	} {
		got, err := Epoch(func(k string) string {
			if k != "SOURCE_DATE_EPOCH" {
				t.Fatalf("Epoch read %s", k)
			}
			return tc.value
		})
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: error %v, want %s", tc.value, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%q: %v, %v; want %v", tc.value, got, err, tc.want)
		}
	}
}

// TestTimes checks the MS-DOS conversion: UTC whatever the zone, odd seconds
// rounded down, the zero time as 1980.
func TestTimes(t *testing.T) {
	entries := []Entry{{Name: "f", Size: 0}}
	for _, tc := range []struct {
		in   time.Time
		want time.Time
	}{
		{time.Time{}, minDOSTime},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), minDOSTime},
		{time.Date(2024, 2, 29, 23, 59, 59, 999, time.FixedZone("x", -5*3600)), time.Date(2024, 3, 1, 4, 59, 58, 0, time.UTC)},
		{time.Date(2107, 12, 31, 23, 59, 59, 0, time.UTC), maxDOSTime},
	} {
		var buf bytes.Buffer
		if _, err := Write(t.Context(), &buf, entries, Options{Time: tc.in}); err != nil {
			t.Fatal(err)
		}
		readBack(t, buf.Bytes(), tc.want)
	}
	_, err := Write(t.Context(), io.Discard, entries, Options{Time: time.Date(2108, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err == nil || !strings.Contains(err.Error(), "after 2107") {
		t.Errorf("time after 2107: %v", err)
	}
}

func TestModes(t *testing.T) {
	root := t.TempDir()
	for name, perm := range map[string]fs.FileMode{
		"private": 0o600, "group-w": 0o664, "odd": 0o401, "user-x": 0o700, "group-x": 0o610, "other-x": 0o601, "all": 0o777,
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(name), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, name), perm); err != nil { // umask aside
			t.Fatal(err)
		}
	}
	for _, d := range []string{"d700", "d777", "d500/inner"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "d777"), 0o777)
	os.Chmod(filepath.Join(root, "d500"), 0o500)
	defer os.Chmod(filepath.Join(root, "d500"), 0o700)
	if err := os.Symlink("private", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	entries, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, entries, Options{Level: 6}); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, buf.Bytes(), minDOSTime)
	for name, mode := range map[string]fs.FileMode{
		"private": 0o644, "group-w": 0o644, "odd": 0o755, "user-x": 0o755, "group-x": 0o755, "other-x": 0o755, "all": 0o755,
		"d700/": fs.ModeDir | 0o755, "d777/": fs.ModeDir | 0o755, "d500/": fs.ModeDir | 0o755, "d500/inner/": fs.ModeDir | 0o755,
		"link": fs.ModeSymlink | 0o777,
	} {
		if got[name].mode != mode {
			t.Errorf("%s: mode %v, want %v", name, got[name].mode, mode)
		}
	}
	if got["link"].data != "private" {
		t.Errorf("link content %q", got["link"].data)
	}
	for _, e := range parseRaw(t, buf.Bytes()).entries {
		if e.attrs&0xffff != 0 && e.attrs&0xffff != dosDir {
			t.Errorf("%s: low attribute bits %#x", e.name, e.attrs&0xffff)
		}
		if (e.attrs&dosDir != 0) != strings.HasSuffix(e.name, "/") {
			t.Errorf("%s: MS-DOS folder bit wrong", e.name)
		}
	}
}

func memFile(name, data string) Entry {
	return Entry{Name: name, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(data)), nil
	}}
}

func TestSymlinks(t *testing.T) {
	link := func(name, target string) Entry { return Entry{Name: name, Mode: fs.ModeSymlink | 0o755, Link: target} }
	for _, tc := range []struct {
		entry   Entry
		wantErr string
	}{
		{link("l", "x"), ""},
		{link("l", "a/b/../c"), ""},
		{link("a/l", "../x"), ""},
		{link("a/b/l", "../../x"), ""},
		{link("l", "."), ""},
		{link("l", ".."), `zipper: entry "l": symlink target ".." leaves the tree`},
		{link("l", "../x"), `zipper: entry "l": symlink target "../x" leaves the tree`},
		{link("a/l", "../../x"), `zipper: entry "a/l": symlink target "../../x" leaves the tree`},
		{link("a/l", "b/../../../x"), `zipper: entry "a/l": symlink target "b/../../../x" leaves the tree`},
		{link("l", "/etc/passwd"), `zipper: entry "l": symlink target "/etc/passwd" is absolute`},
		{link("l", ""), `zipper: entry "l": symlink has an empty target`},
		{link("l/", "x"), `zipper: entry "l/": a symlink name cannot end in /`},
	} {
		var buf bytes.Buffer
		_, err := Write(t.Context(), &buf, []Entry{tc.entry}, Options{Level: 6})
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s -> %s: %v", tc.entry.Name, tc.entry.Link, err)
				continue
			}
			checkArchive(t, buf.Bytes(), minDOSTime, model([]Entry{tc.entry}, readEntry))
		} else if err == nil || err.Error() != tc.wantErr {
			t.Errorf("%s -> %s: error %v, want %s", tc.entry.Name, tc.entry.Link, err, tc.wantErr)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	f := func(name string) Entry { return memFile(name, "x") }
	for _, tc := range []struct {
		entries []Entry
		wantErr string
	}{
		{[]Entry{f("a"), f("b"), f("a")}, `zipper: entry "a": duplicate`},
		{[]Entry{{Name: "d/", Mode: fs.ModeDir}, {Name: "d", Mode: fs.ModeDir}}, `zipper: entry "d/": duplicate`},
		{[]Entry{f("a"), f("a/b")}, `zipper: entry "a/b": "a" is a file, not a folder`},
		{[]Entry{{Name: "a", Mode: fs.ModeSymlink, Link: "x"}, f("a/b/c")}, `zipper: entry "a/b/c": "a" is a symlink, not a folder`},
		{[]Entry{f("a"), {Name: "a/", Mode: fs.ModeDir}}, `zipper: entry "a/": also listed as a file`},
		{[]Entry{f("")}, `zipper: entry "": empty name`},
		{[]Entry{f("/abs")}, `zipper: entry "/abs": name is absolute`},
		{[]Entry{f("a//b")}, `zipper: entry "a//b": name has an empty element`},
		{[]Entry{f("a/./b")}, `zipper: entry "a/./b": name has a "." element`},
		{[]Entry{f("../b")}, `zipper: entry "../b": name has a ".." element`},
		{[]Entry{{Name: "..", Mode: fs.ModeDir}}, `zipper: entry "..": name has a ".." element`},
		{[]Entry{f(`a\b`)}, `zipper: entry "a\\b": name contains a backslash, which some unzip tools read as a separator`},
		{[]Entry{f("a\xffb")}, `zipper: entry "a\xffb": name is not valid UTF-8`},
		{[]Entry{f("a\x00b")}, `zipper: entry "a\x00b": name contains a NUL byte`},
		{[]Entry{f(strings.Repeat("n", 65535))}, `name is 65535 bytes long; a zip allows 65534`},
		{[]Entry{{Name: "p", Mode: fs.ModeNamedPipe}}, `zipper: entry "p": unsupported file type p---------`},
		{[]Entry{{Name: "dev", Mode: fs.ModeDevice | fs.ModeCharDevice}}, `zipper: entry "dev": unsupported file type Dc---------`},
		{[]Entry{{Name: "s", Mode: fs.ModeSocket}}, `zipper: entry "s": unsupported file type S---------`},
		{[]Entry{{Name: "x/", Mode: fs.ModeSocket}}, `zipper: entry "x/": name ends in / but mode is S---------`},
		{[]Entry{{Name: "f", Size: 3}}, `zipper: entry "f": no Open function`},
		{[]Entry{{Name: "f", Size: -1}}, `zipper: entry "f": negative size -1`},
	} {
		_, err := Write(t.Context(), io.Discard, tc.entries, Options{Level: 6})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("error %v, want %s", err, tc.wantErr)
		}
	}
	for _, level := range []int{-1, 10} {
		if _, err := Write(t.Context(), io.Discard, nil, Options{Level: level}); err == nil || !strings.Contains(err.Error(), "want 0 (store) to 9") {
			t.Errorf("level %d: %v", level, err)
		}
	}
}

// TestOrder checks sorting by bytes, implied folders, and that listing a
// folder or not changes nothing.
func TestOrder(t *testing.T) {
	entries := []Entry{memFile("b", "1"), memFile("a-b", "2"), memFile("a/x", "3"), memFile("a/B", "4"), memFile("Z", "5"), memFile("é/x", "6"), memFile("a.b/c/d", "7")}
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, entries, Options{Level: 6}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range parseRaw(t, buf.Bytes()).entries {
		names = append(names, e.name)
	}
	want := []string{"Z", "a-b", "a.b/", "a.b/c/", "a.b/c/d", "a/", "a/B", "a/x", "b", "é/", "é/x"}
	if !slices.Equal(names, want) {
		t.Errorf("order %q, want %q", names, want)
	}
	var buf2 bytes.Buffer
	more := append(slices.Clone(entries), Entry{Name: "a", Mode: fs.ModeDir | 0o700}, Entry{Name: "a.b/c/", Mode: 0})
	if _, err := Write(t.Context(), &buf2, more, Options{Level: 6}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Error("listing parent folders changed the output")
	}
}

func TestMethods(t *testing.T) {
	compressible := strings.Repeat("abcdefgh", 1000)
	random := pseudoRandom("m", 3000)
	entries := []Entry{
		memFile("text.txt", compressible),
		memFile("random.bin", random),
		memFile("empty", ""),
		memFile("one", "x"),
		memFile("lib.jar", compressible),
		memFile("large.txt", strings.Repeat(compressible, 3)),
		memFile("large.bin", pseudoRandom("l", 5000)),
		{Name: "link", Mode: fs.ModeSymlink, Link: strings.Repeat("d/", 100) + "x"},
	}
	store := func(name string) bool { return strings.HasSuffix(name, ".jar") }
	for _, tc := range []struct {
		level  int
		lim    limits
		stored []string
	}{
		{6, defaultLimits, []string{"empty", "large.bin", "lib.jar", "one", "random.bin"}},
		{6, tinyLimits(""), []string{"empty", "large.bin", "lib.jar", "one", "random.bin"}},
		{1, tinyLimits(""), []string{"empty", "large.bin", "lib.jar", "one", "random.bin"}},
		{9, defaultLimits, []string{"empty", "large.bin", "lib.jar", "one", "random.bin"}},
		{0, defaultLimits, []string{"empty", "large.bin", "large.txt", "lib.jar", "link", "one", "random.bin", "text.txt"}},
		{0, tinyLimits(""), []string{"empty", "large.bin", "large.txt", "lib.jar", "link", "one", "random.bin", "text.txt"}},
	} {
		var buf bytes.Buffer
		st, err := write(t.Context(), &buf, entries, Options{Level: tc.level, Store: store}, tc.lim)
		if err != nil {
			t.Fatal(err)
		}
		var stored []string
		for _, e := range checkArchive(t, buf.Bytes(), minDOSTime, model(entries, readEntry)).entries {
			if e.method == methodStore {
				stored = append(stored, e.name)
			}
		}
		if !slices.Equal(stored, tc.stored) || st.Stored != len(tc.stored) {
			t.Errorf("level %d, small %d: stored %q (%d), want %q", tc.level, tc.lim.small, stored, st.Stored, tc.stored)
		}
	}
}

// TestUTF8Flag: the flag is set exactly for non-ASCII names (parseRaw checks
// every entry; this makes sure both cases occur).
func TestUTF8Flag(t *testing.T) {
	var buf bytes.Buffer
	entries := []Entry{memFile("ascii.txt", "a"), memFile("naïve.txt", "b"), memFile("日本/語", "c")}
	if _, err := Write(t.Context(), &buf, entries, Options{Level: 6}); err != nil {
		t.Fatal(err)
	}
	flags := map[string]uint16{}
	for _, e := range checkArchive(t, buf.Bytes(), minDOSTime, model(entries, readEntry)).entries {
		flags[e.name] = e.flags
	}
	if flags["ascii.txt"] != 0 || flags["naïve.txt"] != flagUTF8 || flags["日本/"] != flagUTF8 || flags["日本/語"] != flagUTF8 {
		t.Errorf("flags %v", flags)
	}
}

func TestZip64Decisions(t *testing.T) {
	const m = max32
	for _, tc := range []struct {
		usize, csize, offset uint64
		sizes, entry         bool
	}{
		{0, 0, 0, false, false},
		{m - 1, m - 1, m - 1, false, false},
		{m, 10, 0, true, true},
		{m + 1, m - 1, 0, true, true},
		{10, m, 0, true, true},
		{10, 10, m, false, true},
		{1 << 40, 1 << 20, 1 << 33, true, true},
	} {
		if got := sizesNeedZip64(tc.usize, tc.csize); got != tc.sizes {
			t.Errorf("sizesNeedZip64(%d, %d) = %v", tc.usize, tc.csize, got)
		}
		if got := entryNeedsZip64(tc.usize, tc.csize, tc.offset); got != tc.entry {
			t.Errorf("entryNeedsZip64(%d, %d, %d) = %v", tc.usize, tc.csize, tc.offset, got)
		}
	}
	for _, tc := range []struct {
		entries, size, offset uint64
		want                  bool
	}{
		{0, 0, 0, false},
		{65534, m - 1, m - 1, false},
		{65535, 0, 0, true},
		{1, m, 0, true},
		{1, 0, m, true},
	} {
		if got := endNeedsZip64(tc.entries, tc.size, tc.offset); got != tc.want {
			t.Errorf("endNeedsZip64(%d, %d, %d) = %v", tc.entries, tc.size, tc.offset, got)
		}
	}
	// The records themselves, as written and parsed back.
	r := record{name: "big", method: methodStore, usize: m + 5, csize: m + 5, offset: m + 7}
	local := appendLocal(nil, &r, dosTime{})
	if len(local) != localHeaderLen+3+20 {
		t.Errorf("local header with zip64 sizes is %d bytes", len(local))
	}
	central := appendCentral(nil, &r, dosTime{})
	if len(central) != centralHeaderLen+3+4+24 {
		t.Errorf("central header with three zip64 values is %d bytes", len(central))
	}
	r = record{name: "far", offset: m}
	if n := len(appendLocal(nil, &r, dosTime{})); n != localHeaderLen+3 {
		t.Errorf("local header of a small entry at a zip64 offset is %d bytes", n)
	}
	if n := len(appendCentral(nil, &r, dosTime{})); n != centralHeaderLen+3+4+8 {
		t.Errorf("central header with a zip64 offset is %d bytes", n)
	}
	if n := len(appendEnd(nil, 65534, m-1, 100)); n != endLen {
		t.Errorf("end records without zip64 are %d bytes", n)
	}
	if n := len(appendEnd(nil, 65535, 0, 100)); n != endLen+locator64Len+end64Len {
		t.Errorf("end records with zip64 are %d bytes", n)
	}
}

// TestManyEntries crosses the 16-bit entry count.
func TestManyEntries(t *testing.T) {
	for _, n := range []int{65534, 65535} {
		entries := make([]Entry, n)
		for i := range entries {
			entries[i] = Entry{Name: fmt.Sprintf("f%05d", i)}
		}
		var buf bytes.Buffer
		st, err := Write(t.Context(), &buf, entries, Options{Level: 6})
		if err != nil {
			t.Fatal(err)
		}
		ra := checkArchive(t, buf.Bytes(), minDOSTime, model(entries, readEntry))
		if st.Entries != n || ra.zip64End != (n >= 65535) {
			t.Errorf("%d entries: stats %+v, zip64 end %v", n, st, ra.zip64End)
		}
		if unzip, err := exec.LookPath("unzip"); err == nil && n == 65535 {
			p := filepath.Join(t.TempDir(), "many.zip")
			os.WriteFile(p, buf.Bytes(), 0o644)
			if res, err := exec.Command(unzip, "-tq", p).CombinedOutput(); err != nil {
				t.Errorf("unzip -t: %v\n%s", err, res)
			}
		}
	}
}

// TestLarge4GiB zips a file of zeros just over 4 GiB followed by a small
// file, so both sizes of the first and the offset of the second need zip64.
// The archive is written sparse, so it takes no disk space to speak of.
func TestLarge4GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 4 GiB twice")
	}
	const size = 1<<32 + 10
	entries := []Entry{
		{Name: "big.bin", Size: size, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(io.LimitReader(zeroReader{}, size)), nil
		}},
		memFile("small.txt", "after the big one\n"),
	}
	out := filepath.Join(t.TempDir(), "big.zip")
	of, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	// Store it (deflate would only cost time); write holes for zeros.
	hw := &holeWriter{f: of}
	st, err := Write(t.Context(), hw, entries, Options{Level: 6, Store: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if err := of.Truncate(hw.off); err != nil {
		t.Fatal(err)
	}
	of.Close()
	if st.ZippedSize != hw.off || st.UnzippedSize != size+18 {
		t.Errorf("stats %+v, wrote %d", st, hw.off)
	}
	b := readSparse(t, out)
	ra := parseRaw(t, b)
	if len(ra.entries) != 2 || ra.entries[0].usize != size || ra.entries[0].local32Size != max32 ||
		ra.entries[1].offset <= max32 || len(ra.entries[1].localExtra) != 0 || len(ra.entries[1].centralExtra) != 12 {
		t.Fatalf("zip64 fields wrong: %+v", ra.entries)
	}
	if !ra.zip64End {
		t.Errorf("no zip64 end record, but the central directory starts above 4 GiB")
	}
	// archive/zip: read the small file (its offset is in the zip64 field).
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == "small.txt" {
			rc, _ := f.Open()
			got, _ := io.ReadAll(rc)
			if string(got) != "after the big one\n" {
				t.Errorf("small.txt: %q", got)
			}
		} else if f.UncompressedSize64 != size {
			t.Errorf("%s: size %d", f.Name, f.UncompressedSize64)
		}
	}
	// Info-ZIP: list every header (zip64 fields included) and test the small
	// file, found through its zip64 offset. Testing the big one would read
	// 4 GiB through unzip's small buffers, which takes half a minute.
	if unzip, err := exec.LookPath("unzip"); err == nil {
		res, err := exec.Command(unzip, "-Z", "-v", out).CombinedOutput()
		if err != nil || !strings.Contains(string(res), "uncompressed size:                              4294967306 bytes") {
			t.Errorf("zipinfo -v: %v\n%s", err, res)
		}
		if res, err := exec.Command(unzip, "-t", out, "small.txt").CombinedOutput(); err != nil || !strings.Contains(string(res), "No errors detected") {
			t.Errorf("unzip -t: %v\n%s", err, res)
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// holeWriter writes to a file, seeking over blocks of zeros so a 4 GiB
// archive of zeros takes no disk space.
type holeWriter struct {
	f   *os.File
	off int64
}

var zeros = make([]byte, 1<<16)

func (h *holeWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), len(zeros))
		if bytes.Equal(p[:k], zeros[:k]) {
			h.off += int64(k)
		} else {
			if _, err := h.f.WriteAt(p[:k], h.off); err != nil {
				return 0, err
			}
			h.off += int64(k)
		}
		p = p[k:]
	}
	return n, nil
}

// readSparse maps the archive read-only: the parser touches only the pages
// holding records, not the 4 GiB of holes between them.
func readSparse(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return b
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var opens atomic.Int32
	endless := func() (io.ReadCloser, error) {
		opens.Add(1)
		return io.NopCloser(&cancelReader{after: 3 << 20, cancel: cancel}), nil
	}
	entries := []Entry{
		{Name: "a/big", Size: 1 << 40, Open: endless},
		memFile("a/small", "small"),
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.zip")
	start := time.Now()
	_, err := WriteFile(ctx, out, entries, Options{Level: 6})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}

	// Already cancelled: nothing is created.
	if _, err := WriteFile(ctx, out, entries, Options{Level: 6}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

type cancelReader struct {
	n, after int64
	cancel   func()
}

func (r *cancelReader) Read(p []byte) (int, error) {
	if r.n >= r.after {
		r.cancel()
	}
	for i := range p {
		p[i] = byte(r.n + int64(i))
	}
	r.n += int64(len(p))
	return len(p), nil
}

// exactFile is a source that is an ExactReader.
type exactFile struct{ *strings.Reader }

func (exactFile) Close() error { return nil }

func (e exactFile) ReadExact(buf []byte) (int, bool, error) {
	n, _ := io.ReadFull(e.Reader, buf)
	return n, e.Reader.Len() > 0, nil
}

func exactOpen(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return exactFile{strings.NewReader(s)}, nil }
}

// A source that is an ExactReader gives the archive a plain one gives.
func TestExactReaderSameBytes(t *testing.T) {
	for _, lim := range []limits{defaultLimits, {small: 2, budget: 1 << 20, spillMem: 4 << 10, chunk: 2, lookahead: 4}} {
		var plain, exact bytes.Buffer
		for _, c := range []struct {
			buf  *bytes.Buffer
			open func(string) func() (io.ReadCloser, error)
		}{
			{&plain, func(s string) func() (io.ReadCloser, error) {
				return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
			}},
			{&exact, exactOpen},
		} {
			var entries []Entry
			for i, s := range []string{"", "a", "abcdef", strings.Repeat("layer ", 5000), strings.Repeat("x", 4096)} {
				entries = append(entries, Entry{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(len(s)), Open: c.open(s)})
			}
			if _, err := write(t.Context(), c.buf, entries, Options{Level: 6, Time: goldenTime(t)}, lim); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(plain.Bytes(), exact.Bytes()) {
			t.Errorf("small %d: an ExactReader source changed the archive", lim.small)
		}
	}
}

func TestErrors(t *testing.T) {
	failOpen := func() (io.ReadCloser, error) { return nil, errBoom }
	failRead := func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(strings.NewReader("abc"), errReader{errBoom})), nil
	}
	failClose := func() (io.ReadCloser, error) { return closeErr{strings.NewReader("abcdef")}, nil }
	short := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }
	long := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abcdefgh")), nil }
	for _, lim := range []limits{defaultLimits, {small: 2, budget: 1 << 20, spillMem: 4 << 10, chunk: 2, lookahead: 4}} {
		for _, tc := range []struct {
			open    func() (io.ReadCloser, error)
			wantErr string
			is      error
		}{
			{failOpen, `zipper: entry "d/f": open: boom`, errBoom},
			{failRead, `zipper: entry "d/f": read: boom`, errBoom},
			{failClose, `zipper: entry "d/f": close: boom`, errBoom},
			{short, `zipper: entry "d/f": file changed while zipping: read 3 of 6 bytes`, ErrChanged},
			{long, `zipper: entry "d/f": file changed while zipping: more than 6 bytes`, ErrChanged},
			{exactOpen("abc"), `zipper: entry "d/f": file changed while zipping: read 3 of 6 bytes`, ErrChanged},
			{exactOpen("abcdefgh"), `zipper: entry "d/f": file changed while zipping: more than 6 bytes`, ErrChanged},
		} {
			entries := []Entry{memFile("a", "a"), {Name: "d/f", Size: 6, Open: tc.open}, memFile("z", "z")}
			_, err := write(t.Context(), io.Discard, entries, Options{Level: 6}, lim)
			if err == nil || err.Error() != tc.wantErr || !errors.Is(err, tc.is) {
				t.Errorf("small %d: error %v, want %s", lim.small, err, tc.wantErr)
			}
		}
	}

	// The error reported is the first failing entry in archive order, even
	// when a later one fails first.
	slowFail := func() (io.ReadCloser, error) { time.Sleep(50 * time.Millisecond); return nil, errBoom }
	entries := []Entry{{Name: "a", Size: 1, Open: slowFail}, {Name: "b", Size: 1, Open: failOpen}}
	_, err := Write(t.Context(), io.Discard, entries, Options{Level: 6, Workers: 2})
	if err == nil || err.Error() != `zipper: entry "a": open: boom` {
		t.Errorf("error %v, want the one of a", err)
	}

	// A failing writer names the entry and the call.
	_, err = Write(t.Context(), errWriter{errBoom}, []Entry{memFile("x", pseudoRandom("x", 2<<20))}, Options{Level: 6})
	if err == nil || !strings.Contains(err.Error(), `zipper: entry "x": write: boom`) || !errors.Is(err, errBoom) {
		t.Errorf("error %v", err)
	}

	// A large stored file that changes between its two reads.
	var n atomic.Int32
	changing := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(pseudoRandom(fmt.Sprint(n.Add(1)), 2<<20))), nil
	}
	_, err = Write(t.Context(), io.Discard, []Entry{{Name: "c", Size: 2 << 20, Open: changing}}, Options{Level: 6})
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), `entry "c"`) {
		t.Errorf("error %v, want ErrChanged", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

type closeErr struct{ io.Reader }

func (closeErr) Close() error { return errBoom }

var errBoom = errors.New("boom")

func TestWriteFileKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "layer.zip")
	if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := WriteFile(t.Context(), out, []Entry{{Name: "f", Size: 1, Open: func() (io.ReadCloser, error) { return nil, errors.New("nope") }}}, Options{})
	if err == nil {
		t.Fatal("no error")
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("target changed to %q", b)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := WriteFile(t.Context(), out, []Entry{memFile("f", "new")}, Options{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	checkArchive(t, b, minDOSTime, model([]Entry{memFile("f", "new")}, readEntry))
}

func TestProgress(t *testing.T) {
	var mu sync.Mutex
	var calls []Progress
	var inCall atomic.Bool
	var returned atomic.Bool
	fn := func(p Progress) {
		if !inCall.CompareAndSwap(false, true) {
			t.Error("concurrent Progress calls")
		}
		if returned.Load() {
			t.Error("Progress called after Write returned")
		}
		time.Sleep(time.Millisecond)
		mu.Lock()
		calls = append(calls, p)
		mu.Unlock()
		inCall.Store(false)
	}
	entries := memEntries(goldenTree)
	st, err := Write(t.Context(), io.Discard, entries, Options{Level: 6, Progress: fn})
	returned.Store(true)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(calls) == 0 {
		t.Fatal("no Progress call")
	}
	last := calls[len(calls)-1]
	want := Progress{Files: 10, TotalFiles: 10, Bytes: st.UnzippedSize, TotalBytes: st.UnzippedSize}
	if last != want {
		t.Errorf("last progress %+v, want %+v", last, want)
	}
}

// TestFlateReset: a compressor reused after Reset gives the bytes of a fresh
// one, whatever it compressed before. Workers rely on this.
func TestFlateReset(t *testing.T) {
	in := []byte(textLines(300_000))
	for _, level := range []int{1, 6, 9} {
		var fresh bytes.Buffer
		fw, _ := flate.NewWriter(&fresh, level)
		fw.Write(in)
		fw.Close()
		for _, before := range []string{pseudoRandom("r", 200_000), string(in[1000:]), textLines(70_000)} {
			var reused bytes.Buffer
			fw.Reset(io.Discard)
			fw.Write([]byte(before))
			fw.Close()
			fw.Reset(&reused)
			fw.Write(in)
			fw.Close()
			if !bytes.Equal(fresh.Bytes(), reused.Bytes()) {
				t.Errorf("level %d: output after Reset differs", level)
			}
		}
	}
}

func TestEncoderVersion(t *testing.T) {
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var pinned string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(f) >= 2 && f[0] == encoderModule {
			pinned = f[1]
		}
	}
	if pinned == "" {
		t.Fatalf("go.mod does not require %s", encoderModule)
	}
	if encoderVersion != pinned {
		t.Errorf("fallback version %s, go.mod pins %s", encoderVersion, pinned)
	}
	if v := EncoderVersion(); v != pinned {
		t.Errorf("EncoderVersion() = %s, go.mod pins %s", v, pinned)
	}
	if !strings.HasPrefix(Encoder, encoderModule+"/") {
		t.Errorf("Encoder %s is not in module %s", Encoder, encoderModule)
	}
}

func TestScan(t *testing.T) {
	root := t.TempDir()
	buildTree(t, root, goldenTree, 0o022, time.Time{})
	// Scan through a symlink to the root gives the same entries.
	link := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	a, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Scan(link)
	if err != nil {
		t.Fatal(err)
	}
	names := func(es []Entry) (n []string) {
		for _, e := range es {
			n = append(n, e.Name)
		}
		return n
	}
	if !slices.Equal(names(a), names(b)) {
		t.Errorf("scan via symlink: %q vs %q", names(b), names(a))
	}
	want := sortedNames(treeModel(goldenTree))
	got := names(a)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("scan found %q, want %q", got, want)
	}
	if _, err := Scan(filepath.Join(root, "README.md")); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("scan of a file: %v", err)
	}
	if _, err := Scan(filepath.Join(root, "missing")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("scan of a missing folder: %v", err)
	}
}

// TestMemoryBounded zips two 192 MiB files and many small ones while sampling
// the heap: holding either big file whole, or letting small ones pile up
// beyond the budget, would push the peak past the limit.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 400 MB")
	}
	text := []byte(textLines(1 << 20))
	const big = 192 << 20
	gen := func(seed int) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) {
			return io.NopCloser(io.LimitReader(&textReader{text: text, off: seed * 7919}, big)), nil
		}
	}
	entries := []Entry{{Name: "a/big1.txt", Size: big, Open: gen(1)}, {Name: "b/big2.txt", Size: big, Open: gen(2)}}
	for i := range 3000 {
		n := 1000 + i*331%60000
		off := i * 104729 % (len(text) - n)
		entries = append(entries, memFile(fmt.Sprintf("c/%04d.js", i), string(text[off:off+n])))
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	})
	_, err := write(t.Context(), io.Discard, entries, Options{Level: 1, Workers: 4}, defaultLimits)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("heap in use grew by at most %d MiB", grew>>20)
	if limit := int64(defaultLimits.budget) * 2; grew > limit {
		t.Errorf("heap in use grew by %d MiB, more than %d MiB", grew>>20, limit>>20)
	}
}

// textReader repeats text from an offset.
type textReader struct {
	text []byte
	off  int
}

func (r *textReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.text[r.off%len(r.text):])
		r.off += k
		n += k
	}
	return n, nil
}
