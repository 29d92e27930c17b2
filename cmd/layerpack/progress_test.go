package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/plan"
)

// BuildKit's display writes through engineOut: the live status line is blanked
// first, so the display's cursor moves start from a clean line.
func TestEngineOutClearsStatusLine(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "tty"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ev := newEvents("tty", f, 2)
	out := ev.engineOut()
	if _, ok := out.(ttyFile); !ok {
		t.Fatalf("engineOut in tty mode = %T, want ttyFile (progressui needs an *os.File)", out)
	}
	ev.line("[0/2] zipping")
	if _, err := out.Write([]byte("#1 step\n")); err != nil {
		t.Fatal(err)
	}
	ev.line("[1/2] done")
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := "\r[0/2] zipping" + "\r             \r" + "#1 step\n" + "\r[1/2] done"
	if string(got) != want {
		t.Errorf("terminal got %q\nwant %q", got, want)
	}

	if w := newEvents("plain", f, 1).engineOut(); w != any(f) {
		t.Errorf("plain mode: engineOut = %T, want the writer itself", w)
	}
}

// rawjson's done event says where the time went, stage by stage, in order.
func TestRawJSONStages(t *testing.T) {
	var buf bytes.Buffer
	ev := newEvents("rawjson", &buf, 1)
	it := plan.Item{Layer: &config.Layer{Name: "deps"}, Target: builders.Target{Arch: lambda.X86_64}}
	ev.Done(&pipeline.Result{Item: it, Stages: []pipeline.StageTime{{Name: "key", Duration: 3 * time.Millisecond}, {Name: "zip", Duration: time.Second}}})
	var got struct {
		Event  string
		Stages []struct {
			Name    string
			Seconds float64
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v in %q", err, buf.String())
	}
	if got.Event != "done" || len(got.Stages) != 2 || got.Stages[0].Name != "key" || got.Stages[0].Seconds != 0.003 || got.Stages[1].Name != "zip" || got.Stages[1].Seconds != 1 {
		t.Errorf("done event %+v from %s", got, buf.String())
	}
}
