package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/layerpack/layerpack/internal/bytesize"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/plan"
	"github.com/layerpack/layerpack/zipper"
)

// progressMode resolves "auto": a live line on a terminal, plain lines elsewhere (CI logs).
func progressMode(mode string, e *env) string {
	if mode != "auto" {
		return mode
	}
	if e.getenv("CI") == "" {
		if f, ok := e.stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return "tty"
			}
		}
	}
	return "plain"
}

// events prints build progress in one of the modes.
type events struct {
	mode  string
	w     io.Writer
	total int

	mu      sync.Mutex
	done    int
	zipping map[string]zipper.Progress
	last    time.Time
	width   int
}

func newEvents(mode string, w io.Writer, total int) *events {
	return &events{mode: mode, w: w, total: total, zipping: map[string]zipper.Progress{}}
}

func name(it *plan.Item) string { return it.Layer.Name + " (" + string(it.Target.Arch) + ")" }

// log is where builders' own output goes: shown in plain mode, kept off a live tty line.
func (ev *events) log() io.Writer {
	if ev.mode == "plain" {
		return ev.w
	}
	return io.Discard
}

func (ev *events) Start(it *plan.Item) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	switch ev.mode {
	case "plain":
		fmt.Fprintf(ev.w, "building %s\n", name(it))
	case "rawjson":
		ev.json(map[string]any{"event": "start", "layer": it.Layer.Name, "arch": it.Target.Arch})
	}
}

func (ev *events) Zip(it *plan.Item, p zipper.Progress) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.zipping[name(it)] = p
	if ev.mode != "tty" || time.Since(ev.last) < 100*time.Millisecond {
		return
	}
	ev.last = time.Now()
	var files, totalFiles int
	var bytes, totalBytes int64
	for _, z := range ev.zipping {
		files += z.Files
		totalFiles += z.TotalFiles
		bytes += z.Bytes
		totalBytes += z.TotalBytes
	}
	ev.line(fmt.Sprintf("[%d/%d] zipping: %d/%d files, %s/%s", ev.done, ev.total, files, totalFiles, bytesize.Format(bytes), bytesize.Format(totalBytes)))
}

func (ev *events) Done(r *pipeline.Result) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.done++
	delete(ev.zipping, name(&r.Item))
	switch ev.mode {
	case "plain":
		status := "built"
		switch {
		case r.Err != nil:
			status = "FAILED"
		case r.Cached:
			status = "up to date"
		}
		extra := ""
		if r.Saved != "" {
			extra = ", " + r.Saved
		}
		if r.Copied > 0 {
			extra += fmt.Sprintf(", %d files copied from the last build", r.Copied)
		}
		fmt.Fprintf(ev.w, "%s %s in %s%s\n", status, name(&r.Item), r.Duration.Round(time.Millisecond), extra)
	case "tty":
		ev.line(fmt.Sprintf("[%d/%d] %s done", ev.done, ev.total, name(&r.Item)))
	case "rawjson":
		m := map[string]any{"event": "done", "layer": r.Item.Layer.Name, "arch": r.Item.Target.Arch,
			"cached": r.Cached, "code_sha256": r.CodeSha256, "seconds": r.Duration.Seconds()}
		if r.Err != nil {
			m["error"] = r.Err.Error()
		}
		if r.Copied > 0 {
			m["copied"] = r.Copied
		}
		stages := make([]map[string]any, 0, len(r.Stages))
		for _, s := range r.Stages {
			stages = append(stages, map[string]any{"name": s.Name, "seconds": s.Duration.Seconds()})
		}
		m["stages"] = stages
		ev.json(m)
	}
}

// engineOut is where the BuildKit progress display writes. On a terminal it clears
// the live status line before each write: the display redraws its region by moving
// the cursor up from the line after it, which is where the status line sits, so
// both share the screen. It stays an *os.File underneath because progressui's tty
// mode needs a console.
func (ev *events) engineOut() io.Writer {
	f, ok := ev.w.(*os.File)
	if ev.mode != "tty" || !ok {
		return ev.w
	}
	return ttyFile{File: f, ev: ev}
}

type ttyFile struct {
	*os.File
	ev *events
}

func (t ttyFile) Write(p []byte) (int, error) {
	t.ev.mu.Lock()
	defer t.ev.mu.Unlock()
	t.ev.clearLine()
	return t.File.Write(p)
}

// clearLine blanks the live status line and leaves the cursor at its start.
// Callers hold ev.mu.
func (ev *events) clearLine() {
	if ev.width > 0 {
		fmt.Fprintf(ev.w, "\r%*s\r", ev.width, "")
		ev.width = 0
	}
}

// line rewrites the live status line.
func (ev *events) line(s string) {
	pad := ev.width - len(s)
	if pad < 0 {
		pad = 0
	}
	fmt.Fprintf(ev.w, "\r%s%*s", s, pad, "")
	ev.width = len(s)
}

func (ev *events) json(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(ev.w, "%s\n", b)
}

// finish clears the live line so the summary starts on a clean one.
func (ev *events) finish() {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.mode == "tty" {
		ev.clearLine()
	}
}
