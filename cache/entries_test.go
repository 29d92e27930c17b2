package cache

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func key(i int) string { return fmt.Sprintf("%064x", i+1) }

func TestEntriesPutGet(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := c.Entries()
	if _, ok := e.Get(key(1)); ok {
		t.Fatal("hit in an empty store")
	}
	e.Put(key(1), []byte("blob one"))
	if b, ok := e.Get(key(1)); !ok || string(b) != "blob one" {
		t.Fatalf("Get = %q, %v", b, ok)
	}
	// Another process's store sees it (the same folder).
	if b, ok := c.Entries().Get(key(1)); !ok || string(b) != "blob one" {
		t.Fatalf("second store: Get = %q, %v", b, ok)
	}
	for _, bad := range []string{"", "../../etc/passwd", "ABCDEF0123456789ABCDEF", strings.Repeat("g", 64)} {
		e.Put(bad, []byte("x"))
		if _, ok := e.Get(bad); ok {
			t.Errorf("key %q accepted", bad)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Dir, "entries")); len(ents) != 1 {
		t.Errorf("entries folder holds %d shards, want 1", len(ents))
	}
}

// TestEntriesConcurrent: runs writing and reading the same keys at once only ever
// see whole blobs.
func TestEntriesConcurrent(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 10000+i) }
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := range 4 {
		wg.Go(func() {
			e := c.Entries() // one store per "process"
			for i := range 50 {
				e.Put(key(i), blob(i))
				if b, ok := e.Get(key((i + w) % 50)); ok && !bytes.Equal(b, blob((i+w)%50)) {
					errs <- fmt.Sprintf("key %d: torn blob of %d bytes", (i+w)%50, len(b))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	matches, _ := filepath.Glob(filepath.Join(c.Dir, "entries", "*", ".*"))
	if len(matches) != 0 {
		t.Errorf("temp files left: %v", matches)
	}
}

func TestEntriesPrune(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := c.Entries()
	now := time.Now()
	for i := range 10 {
		e.Put(key(i), make([]byte, 1000))
		// key(0) is the oldest, key(9) the newest; key(0..1) are past the age limit.
		when := now.Add(-time.Duration(10-i) * 24 * time.Hour)
		os.Chtimes(e.path(key(i)), when, when)
	}
	// A temp file of a process that no longer runs, and one of this process.
	dead := filepath.Join(e.dir, key(0)[:2], "."+key(42)+".tmp-p999999999-1")
	os.WriteFile(dead, []byte("torn"), 0o644)
	live, _ := os.CreateTemp(filepath.Join(e.dir, key(0)[:2]), "."+key(43)+".tmp-p"+fmt.Sprint(os.Getpid())+"-*")
	live.Close()

	removed := e.Prune(5000, 8*24*time.Hour+time.Hour, now)
	for i := range 10 {
		_, ok := e.Get(key(i))
		if want := i >= 5; ok != want {
			t.Errorf("key %d present = %v, want %v", i, ok, want)
		}
	}
	if removed != 6 {
		t.Errorf("removed %d, want 6 (2 too old, 3 over the size, 1 dead temp file)", removed)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Error("the dead run's temp file is still there")
	}
	if _, err := os.Stat(live.Name()); err != nil {
		t.Errorf("the live run's temp file was removed: %v", err)
	}
}

func TestEntriesGetRefreshesAge(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := c.Entries()
	e.Put(key(1), []byte("x"))
	old := time.Now().Add(-10 * 24 * time.Hour)
	os.Chtimes(e.path(key(1)), old, old)
	e.Get(key(1))
	if st, err := os.Stat(e.path(key(1))); err != nil || time.Since(st.ModTime()) > time.Hour {
		t.Fatalf("a hit did not refresh the blob's age: %v %v", st.ModTime(), err)
	}
	if n := e.Prune(1<<30, 5*24*time.Hour, time.Now()); n != 0 {
		t.Errorf("a blob just used was pruned")
	}
}
