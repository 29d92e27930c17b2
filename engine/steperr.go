package engine

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	digest "github.com/opencontainers/go-digest"

	"github.com/layerpack/layerpack/lambda"
)

// tailLines is how many lines of a failing step's output its error carries.
const tailLines = 20

// StepError is a step that failed. Its message names the step, gives the exit
// code and the last lines of the step's output, so that the reason shows even
// with --progress quiet.
type StepError struct {
	Step     string
	Arch     lambda.Arch
	ExitCode int      // -1 when the step did not get to exit (image, mount or daemon failure)
	Lines    []string // last lines of the step's output
	Err      error    // BuildKit's error
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %q (%s) failed", e.Step, e.Arch)
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " with exit code %d", e.ExitCode)
	} else {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if len(e.Lines) > 0 {
		b.WriteString("; last lines of its output:")
		for _, l := range e.Lines {
			b.WriteString("\n  | ")
			b.WriteString(l)
		}
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

var exitCodeRE = regexp.MustCompile(`exit code: (\d+)`)

func newStepError(s *Step, err error, tail *logTail) *StepError {
	code := -1
	var ee *gatewaypb.ExitError
	if errors.As(err, &ee) {
		code = int(ee.ExitCode)
	} else if m := exitCodeRE.FindStringSubmatch(err.Error()); m != nil {
		code, _ = strconv.Atoi(m[1])
	}
	return &StepError{Step: s.Name, Arch: s.Arch, ExitCode: code, Lines: tail.failed(), Err: err}
}

// logTail keeps the last lines of output of every vertex of a solve, and which
// vertex failed. BuildKit reads a container's stdout and stderr through separate
// pipes and may deliver a late stdout chunk after an error line on stderr; each
// stream is therefore kept on its own, and the two are merged by the time the
// daemon read them when the error is made.
type logTail struct {
	max int

	mu      sync.Mutex
	streams map[digest.Digest]map[int]*streamTail
	seq     int
	failedV digest.Digest
	lastV   digest.Digest // the last vertex that logged
}

type streamTail struct {
	lines   []tailLine
	partial tailLine
}

type tailLine struct {
	text string
	at   time.Time
	seq  int
}

func newLogTail(max int) *logTail {
	return &logTail{max: max, streams: map[digest.Digest]map[int]*streamTail{}}
}

func (t *logTail) add(ss *client.SolveStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range ss.Vertexes {
		if v.Error != "" && t.failedV == "" {
			t.failedV = v.Digest
		}
	}
	for _, l := range ss.Logs {
		t.lastV = l.Vertex
		byStream := t.streams[l.Vertex]
		if byStream == nil {
			byStream = map[int]*streamTail{}
			t.streams[l.Vertex] = byStream
		}
		st := byStream[l.Stream]
		if st == nil {
			st = &streamTail{}
			byStream[l.Stream] = st
		}
		parts := strings.Split(st.partial.text+string(l.Data), "\n")
		for _, p := range parts[:len(parts)-1] {
			t.seq++
			st.lines = append(st.lines, tailLine{strings.TrimRight(p, "\r"), l.Timestamp, t.seq})
		}
		if len(st.lines) > t.max {
			st.lines = st.lines[len(st.lines)-t.max:]
		}
		t.seq++
		st.partial = tailLine{parts[len(parts)-1], l.Timestamp, t.seq}
	}
}

// stderrLag is how much later than its timestamp a stderr line is taken to be
// when merged with stdout: the daemon reads the two pipes at the same time, so a
// program's last stdout lines often carry a later timestamp than the error it
// printed after them.
const stderrLag = 10 * time.Millisecond

// failed returns the last lines of the vertex that failed (or, when none is
// known, of the last one that logged), unfinished lines included. Stderr, where
// the reason usually is, gets at least half of the lines when it has that many.
func (t *logTail) failed() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.failedV
	if t.streams[v] == nil {
		v = t.lastV
	}
	var out, errs []tailLine
	for stream, st := range t.streams[v] {
		ls := append([]tailLine(nil), st.lines...)
		if st.partial.text != "" {
			ls = append(ls, st.partial)
		}
		if stream == 2 {
			for i := range ls {
				ls[i].at = ls[i].at.Add(stderrLag)
			}
			errs = append(errs, ls...)
		} else {
			out = append(out, ls...)
		}
	}
	nErr := min(len(errs), max((t.max+1)/2, t.max-len(out)))
	nOut := min(len(out), t.max-nErr)
	all := append(out[len(out)-nOut:], errs[len(errs)-nErr:]...)
	sort.Slice(all, func(i, j int) bool {
		if !all[i].at.Equal(all[j].at) {
			return all[i].at.Before(all[j].at)
		}
		return all[i].seq < all[j].seq
	})
	lines := make([]string, len(all))
	for i, l := range all {
		lines[i] = l.text
	}
	return lines
}
