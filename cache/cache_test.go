package cache

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestTreeHashIgnoresMtimesAndModesButNotContent(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	f := filepath.Join(dir, "a", "f.txt")
	os.WriteFile(f, []byte("one"), 0o644)
	h := c.NewHasher()
	first, err := h.Path(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Chtimes(f, time.Unix(1e9, 0), time.Unix(1e9, 0))
	os.Chmod(f, 0o600)
	if got, _ := c.NewHasher().Path(dir); got != first {
		t.Errorf("mtime or read bits changed the hash")
	}
	os.Chmod(f, 0o700)
	if got, _ := c.NewHasher().Path(dir); got == first {
		t.Errorf("execute bit did not change the hash")
	}
	os.Chmod(f, 0o644)
	os.WriteFile(f, []byte("two"), 0o644)
	if got, _ := c.NewHasher().Path(dir); got == first {
		t.Errorf("content change not seen (memo in use)")
	}
	if got, _ := h.Path(dir); got != first {
		t.Errorf("a tree is hashed once per run")
	}
	os.Symlink("f.txt", filepath.Join(dir, "a", "link"))
	if got, _ := c.NewHasher().Path(dir); got == first {
		t.Errorf("new symlink not seen")
	}
}

// The memo survives between runs and is used: a file whose stat data is unchanged
// is not read again.
func TestHasherMemo(t *testing.T) {
	c, _ := Open(t.TempDir())
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("content"), 0o644)
	h := c.NewHasher()
	sum, err := h.Path(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	// Make the file unreadable: only the memo can answer now.
	os.Chmod(f, 0)
	defer os.Chmod(f, 0o644)
	if os.Geteuid() == 0 {
		// root reads anything; check the memo directly instead.
		h2 := c.NewHasher()
		<-h2.loaded
		abs, _ := filepath.Abs(f)
		if _, ok := h2.memo[abs]; !ok {
			t.Fatal("memo not saved")
		}
		return
	}
	if got, err := c.NewHasher().Path(f); err != nil || got != sum {
		t.Errorf("memo not used: %v %v", got, err)
	}
}

func TestPutGet(t *testing.T) {
	c, _ := Open(t.TempDir())
	zip := filepath.Join(t.TempDir(), "x.zip")
	os.WriteFile(zip, []byte("PK-data"), 0o644)
	if _, _, ok := c.Get("k1"); ok {
		t.Fatal("hit on empty cache")
	}
	if err := c.Put(&Entry{Key: "k1", CodeSha256: "s", Size: 7}, zip); err != nil {
		t.Fatal(err)
	}
	e, p, ok := c.Get("k1")
	if !ok || e.CodeSha256 != "s" {
		t.Fatalf("miss after put: %+v", e)
	}
	if b, _ := os.ReadFile(p); string(b) != "PK-data" {
		t.Errorf("cached zip = %q", b)
	}
	// Rewriting the output in place (it shares the cached file) makes a miss.
	os.WriteFile(zip, []byte("PK-edit"), 0o644)
	os.Chtimes(zip, time.Unix(2e9, 0), time.Unix(2e9, 0))
	if _, _, ok := c.Get("k1"); ok {
		t.Error("hit after the cached zip was modified")
	}
	// An entry whose zip is gone is a miss, not an error.
	c.Put(&Entry{Key: "k2", Size: 7}, zip)
	os.Remove(filepath.Join(c.Dir, "zips", "k2.zip"))
	if _, _, ok := c.Get("k2"); ok {
		t.Error("hit without zip")
	}
	// A corrupt entry is a miss.
	os.WriteFile(filepath.Join(c.Dir, "zips", "k3.json"), []byte("{"), 0o644)
	if _, _, ok := c.Get("k3"); ok {
		t.Error("hit on corrupt entry")
	}
}

func TestLockExcludes(t *testing.T) {
	c, _ := Open(t.TempDir())
	var mu sync.Mutex
	inside, max := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := c.Lock("k")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			if inside > max {
				max = inside
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if max != 1 {
		t.Errorf("%d holders at once", max)
	}
}

func TestKeyStable(t *testing.T) {
	if Key([]string{"a", "b"}) == Key([]string{"ab"}) {
		t.Error("line boundaries do not count")
	}
	if Key([]string{"a"}) != "87428fc522803d31065e7bce3cf03fe4" {
		t.Errorf("Key changed: %s (every cache key would change)", Key([]string{"a"}))
	}
}
