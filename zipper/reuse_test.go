package zipper

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// memReuse is a Reuse store in memory that counts its calls.
type memReuse struct {
	mu         sync.Mutex
	blobs      map[string][]byte
	gets, hits int
	puts       int
}

func newMemReuse() *memReuse { return &memReuse{blobs: map[string][]byte{}} }

func (m *memReuse) Get(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	b, ok := m.blobs[key]
	if ok {
		m.hits++
	}
	return bytes.Clone(b), ok
}

func (m *memReuse) Put(key string, blob []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	m.blobs[key] = bytes.Clone(blob)
}

func (m *memReuse) reset() { m.gets, m.hits, m.puts = 0, 0, 0 }

// reuseTree adds, to the golden tree, files that share content (one blob for
// two entries) and large files that spill to disk under tinyLimits.
var reuseTree = append(append([]node(nil), goldenTree...),
	node{path: "copy/index.js", perm: 0o644, data: goldenTree[3].data},
	node{path: "copy/big.js", perm: 0o644, data: textLines(9000)},
	node{path: "copy/mid.js", perm: 0o644, data: textLines(3000)},
	node{path: "copy/mid-random.bin", perm: 0o644, data: pseudoRandom("mid", 3000)},
)

// TestReuseSameBytes flips entries between reused and freshly compressed
// (missing, truncated and garbled blobs) and compares the archives byte for byte.
func TestReuseSameBytes(t *testing.T) {
	when := goldenTime(t)
	for _, tc := range []struct {
		name string
		lim  limits
	}{
		{"default limits", defaultLimits},
		{"tiny limits", tinyLimits(t.TempDir())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries := memEntries(reuseTree)
			run := func(r Reuse) []byte {
				t.Helper()
				var buf bytes.Buffer
				opt := Options{Level: 6, Time: when, Workers: 3}
				if r != nil {
					opt.Reuse = r
				}
				if _, err := write(t.Context(), &buf, entries, opt, tc.lim); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			}
			want := run(nil)
			store := newMemReuse()
			if got := run(store); !bytes.Equal(got, want) {
				t.Fatal("first run with an empty store: output differs")
			}
			// copy/index.js has the content of another entry: one hit at most.
			if store.hits > 1 || store.puts == 0 {
				t.Fatalf("empty store: %d hits, %d puts; want at most 1 hit and some puts", store.hits, store.puts)
			}
			full := len(store.blobs)
			store.reset()
			if got := run(store); !bytes.Equal(got, want) {
				t.Fatal("run from a full store: output differs")
			}
			// Under tiny limits lib/big.js compresses past spillMem: it is never stored.
			misses := 0
			if tc.lim.spillMem < 1<<20 {
				misses = 1
			}
			if store.hits != store.gets-misses || store.hits == 0 || store.puts != 0 {
				t.Fatalf("full store: %d gets, %d hits, %d puts; want %d misses and no puts", store.gets, store.hits, store.puts, misses)
			}

			rng := rand.New(rand.NewPCG(1, 2))
			keys := make([]string, 0, full)
			for k := range store.blobs {
				keys = append(keys, k)
			}
			for round := range 12 {
				for _, k := range keys {
					b := store.blobs[k]
					switch rng.IntN(5) {
					case 0:
						delete(store.blobs, k)
					case 1:
						if len(b) > 0 {
							store.blobs[k] = b[:rng.IntN(len(b))]
						}
					case 2:
						if len(b) > 0 {
							c := bytes.Clone(b)
							c[rng.IntN(len(c))] ^= 1 << rng.IntN(8)
							store.blobs[k] = c
						}
					}
				}
				store.reset()
				if got := run(store); !bytes.Equal(got, want) {
					t.Fatalf("round %d: output differs", round)
				}
				if store.puts == 0 && round == 0 {
					t.Fatal("damaged blobs were not replaced")
				}
			}
		})
	}
}

// TestReuseGolden: the golden archive is the same when its entries come from the
// store (those above defaultLimits.reuseMin).
func TestReuseGolden(t *testing.T) {
	when := goldenTime(t)
	store := newMemReuse()
	for i := range 2 {
		var buf bytes.Buffer
		if _, err := Write(t.Context(), &buf, memEntries(goldenTree), Options{Level: 6, Time: when, Reuse: store}); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf.Bytes())
		if got := hex.EncodeToString(sum[:]); got != goldenSHA256 {
			t.Errorf("run %d: SHA-256 %s, want %s", i, got, goldenSHA256)
		}
	}
	if store.hits == 0 {
		t.Error("the second run reused nothing")
	}
}

// TestReuseKeys: a blob is found only for the same content and level.
func TestReuseKeys(t *testing.T) {
	when := goldenTime(t)
	store := newMemReuse()
	one := func(data string, level int) {
		t.Helper()
		e := []Entry{{Name: "a.txt", Mode: 0o644, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(data)), nil
		}}}
		if _, err := Write(t.Context(), io.Discard, e, Options{Level: level, Time: when, Reuse: store}); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.Repeat("the same line again\n", 300) // above defaultLimits.reuseMin
	one(text, 6)
	one(text, 9)
	one(text+"!", 6)
	if store.hits != 0 || len(store.blobs) != 3 {
		t.Fatalf("%d hits, %d blobs; want 0 and 3 (level and content make the key)", store.hits, len(store.blobs))
	}
	one(text, 9)
	if store.hits != 1 {
		t.Fatalf("%d hits, want 1", store.hits)
	}
}

// TestReuseChangedFile: when a large file changes between its hash and its
// compression, nothing is stored under the first read's key.
func TestReuseChangedFile(t *testing.T) {
	when := goldenTime(t)
	store := newMemReuse()
	a, b := textLines(5000), textLines(5000)
	b = b[:100] + "X" + b[101:]
	calls := 0
	e := []Entry{{Name: "big.js", Mode: 0o644, Size: int64(len(a)), Open: func() (io.ReadCloser, error) {
		calls++
		if calls == 1 {
			return io.NopCloser(strings.NewReader(a)), nil
		}
		return io.NopCloser(strings.NewReader(b)), nil
	}}}
	lim := tinyLimits(t.TempDir())
	lim.spillMem = 64 << 10
	var buf bytes.Buffer
	if _, err := write(t.Context(), &buf, e, Options{Level: 6, Time: when, Reuse: store, Workers: 1}, lim); err != nil {
		t.Fatal(err)
	}
	if store.puts != 0 {
		t.Errorf("%d puts for a file that changed between reads; want none", store.puts)
	}
}

// TestReuseSmallFiles: files under reuseMin are compressed, never looked up.
func TestReuseSmallFiles(t *testing.T) {
	store := newMemReuse()
	data := strings.Repeat("a", int(defaultLimits.reuseMin)-1)
	e := []Entry{{Name: "a.txt", Mode: 0o644, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(data)), nil
	}}}
	if _, err := Write(t.Context(), io.Discard, e, Options{Level: 6, Reuse: store}); err != nil {
		t.Fatal(err)
	}
	if store.gets+store.puts != 0 {
		t.Errorf("%d gets, %d puts for a file under reuseMin", store.gets, store.puts)
	}
}

// smallMem is a memReuse that also takes small entries (SmallReuse).
type smallMem struct {
	*memReuse
	small *memReuse
}

func (s smallMem) GetSmall(key string) ([]byte, bool) { return s.small.Get(key) }
func (s smallMem) PutSmall(key string, blob []byte)   { s.small.Put(key, blob) }

// withSums gives every regular file of entries its Sum, and an Open that records.
func withSums(entries []Entry, opens *[]string, mu *sync.Mutex) []Entry {
	out := make([]Entry, len(entries))
	for i, e := range entries {
		if e.Open != nil {
			rc, _ := e.Open()
			b, _ := io.ReadAll(rc)
			s := sha256.Sum256(b)
			e.Sum = s[:]
			open := e.Open
			name := e.Name
			e.Open = func() (io.ReadCloser, error) {
				mu.Lock()
				*opens = append(*opens, name)
				mu.Unlock()
				return open()
			}
		}
		out[i] = e
	}
	return out
}

// TestReuseKnownSums: with Entry.Sum, a file found in the store is copied
// without being opened, small files through SmallReuse; the archive and what
// Inspect is told are those of a clean Write.
func TestReuseKnownSums(t *testing.T) {
	when := goldenTime(t)
	var mu sync.Mutex
	var opens []string
	entries := withSums(memEntries(reuseTree), &opens, &mu)
	opened := func() []string {
		mu.Lock()
		defer mu.Unlock()
		s := slices.Clone(opens)
		slices.Sort(s)
		return s
	}
	type seen struct {
		size int64
		crc  uint32
		head string
	}
	write := func(r Reuse, less func(string) bool) ([]byte, map[string]seen) {
		t.Helper()
		got := map[string]seen{}
		var smu sync.Mutex
		opt := Options{Level: 6, Time: when, Reuse: r, InspectLess: less, Inspect: func(name string, size int64, crc uint32, head []byte) {
			smu.Lock()
			got[name] = seen{size, crc, string(head)}
			smu.Unlock()
		}}
		var buf bytes.Buffer
		if _, err := Write(t.Context(), &buf, entries, opt); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), got
	}
	want, wantSeen := write(nil, nil)
	store := smallMem{newMemReuse(), newMemReuse()}
	if b, _ := write(store, nil); !bytes.Equal(b, want) {
		t.Fatal("empty store: archive differs")
	}
	if store.small.puts == 0 {
		t.Fatal("no small entry went to PutSmall")
	}
	files := 0
	for _, e := range entries {
		if e.Open != nil {
			files++
		}
	}
	for _, less := range []func(string) bool{nil, func(string) bool { return true }} {
		opens = nil
		b, gotSeen := write(store, less)
		if !bytes.Equal(b, want) {
			t.Fatal("full store: archive differs")
		}
		// Only what the store keeps no bytes of is read: incompressible files
		// of 4 KiB or more (a large one twice: hashed, then copied), and the
		// empty file (read to check it is still empty).
		if want := []string{"data/empty.txt", "data/random.bin", "lib/big-random.bin", "lib/big-random.bin"}; !slices.Equal(opened(), want) {
			t.Errorf("opened %q with the store full, want %q", opened(), want)
		}
		for name, w := range wantSeen {
			g := gotSeen[name]
			if g.size != w.size || g.crc != w.crc {
				t.Errorf("%s: Inspect got size %d crc %08x, want %d %08x", name, g.size, g.crc, w.size, w.crc)
			}
			if less == nil && g.head != w.head {
				t.Errorf("%s: Inspect got a head of %d bytes, want %d", name, len(g.head), len(w.head))
			}
			if less != nil && !strings.HasPrefix(w.head, g.head) || len(g.head) < min(len(w.head), InspectShort) {
				t.Errorf("%s: Inspect got a head of %d bytes, not a prefix of the file's first %d", name, len(g.head), InspectShort)
			}
		}
	}
	// A wrong Sum finds nothing (or a blob of another size) and is read as usual.
	opens = nil
	for i := range entries {
		if entries[i].Sum != nil {
			entries[i].Sum = bytes.Repeat([]byte{byte(i)}, 32)
		}
	}
	if b, _ := write(store, nil); !bytes.Equal(b, want) {
		t.Fatal("wrong sums: archive differs")
	}
	if len(opened()) < files {
		t.Errorf("wrong sums: %d of %d files opened, want all", len(opened()), files)
	}
}

// A file held whole goes to the in-memory store whatever its size (a file a
// blob costs more); one of 4 KiB or more is also found in the plain store,
// where a SmallReuse sends what it does not keep.
func TestSmallReuseRouting(t *testing.T) {
	data := textLines(10 << 10) // over 4 KiB, held whole
	if len(data) < 4<<10 || int64(len(data)) > defaultLimits.small {
		t.Fatalf("fixture of %d bytes is not a 4 KiB+ file held whole", len(data))
	}
	entries := []Entry{memFile("a.js", data)}
	opt := Options{Level: 6, Time: goldenTime(t)}
	var want bytes.Buffer
	if _, err := Write(t.Context(), &want, entries, opt); err != nil {
		t.Fatal(err)
	}
	first := smallMem{newMemReuse(), newMemReuse()}
	opt.Reuse = first
	var got bytes.Buffer
	if _, err := Write(t.Context(), &got, entries, opt); err != nil {
		t.Fatal(err)
	}
	if first.small.puts != 1 || first.puts != 0 {
		t.Fatalf("PutSmall %d, Put %d: want the entry in the in-memory store", first.small.puts, first.puts)
	}
	// The same blob, now in the plain store only: still found there.
	moved := smallMem{newMemReuse(), newMemReuse()}
	moved.blobs = first.small.blobs
	opt.Reuse = moved
	got.Reset()
	if _, err := Write(t.Context(), &got, entries, opt); err != nil {
		t.Fatal(err)
	}
	if moved.hits != 1 || !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("plain-store hits %d (want 1); archive same: %v", moved.hits, bytes.Equal(got.Bytes(), want.Bytes()))
	}
}

// Every blob keeps the first bytes of its own file: a buffer given back to the
// pool while its head was still to be stored would let another file's bytes in.
func TestBlobHeads(t *testing.T) {
	var entries []Entry
	want := map[string]string{} // reuse key -> the file
	z := &zw{salt: reuseSalt(6)}
	for i := range 200 {
		data := fmt.Sprintf("file %03d ", i) + textLines(5<<10+i*37)
		entries = append(entries, memFile(fmt.Sprintf("f%03d.js", i), data))
		s := sha256.Sum256([]byte(data))
		want[z.reuseKey(s[:])] = data
	}
	for _, store := range []Reuse{newMemReuse(), smallMem{newMemReuse(), newMemReuse()}} {
		opt := Options{Level: 6, Time: goldenTime(t), Reuse: store, Workers: 4}
		if _, err := Write(t.Context(), io.Discard, entries, opt); err != nil {
			t.Fatal(err)
		}
		blobs := map[string][]byte{}
		switch s := store.(type) {
		case *memReuse:
			blobs = s.blobs
		case smallMem:
			maps.Copy(blobs, s.blobs)
			maps.Copy(blobs, s.small.blobs)
		}
		if len(blobs) != len(entries) {
			t.Fatalf("%T: %d blobs for %d files", store, len(blobs), len(entries))
		}
		for key, b := range blobs {
			data, known := want[key]
			if !known {
				t.Fatalf("%T: a blob under an unknown key", store)
			}
			_, _, head, _, ok := decodeBlob(b, int64(len(data)))
			if !ok || string(head) != data[:InspectShort] {
				t.Fatalf("%T: blob %s (ok %v) has head %q, want %q", store, key[:8], ok, head, data[:InspectShort])
			}
		}
	}
}
