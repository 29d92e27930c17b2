package engine

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
)

// Two solves at once share one display: plain mode numbers vertices per display,
// so separate displays would both print "#1".
func TestSharedDisplayOneDisplayForConcurrentSolves(t *testing.T) {
	var buf bytes.Buffer
	s := &sharedDisplay{out: &syncWriter{w: &buf}, mode: progressui.PlainMode}

	start := make(chan struct{})
	var wg sync.WaitGroup
	var errs [2]error
	for i, name := range []string{"step-a", "step-b"} {
		ch, detach, err := s.attach()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			now := time.Now()
			v := &client.Vertex{Digest: digest.FromString(name), Name: name, Started: &now}
			ch <- &client.SolveStatus{Vertexes: []*client.Vertex{v}}
			done := now.Add(time.Millisecond)
			v2 := *v
			v2.Completed = &done
			ch <- &client.SolveStatus{Vertexes: []*client.Vertex{&v2}}
			errs[i] = detach()
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	for _, want := range []string{"#1 step-", "#2 step-"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q (one display for both solves):\n%s", want, out)
		}
	}
	if s.cur != nil || s.users != 0 {
		t.Errorf("display still open after the last detach: users=%d", s.users)
	}

	// A later solve gets a new display, after the first has finished.
	_, detach, err := s.attach()
	if err != nil {
		t.Fatal(err)
	}
	if err := detach(); err != nil {
		t.Fatal(err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
