// Package hostcmd runs a tool on this machine for a builder (pip, npm, Maven,
// Gradle): its output goes to the job's log, and when it fails the error holds the
// last lines. Both pass through one redaction rule (the user information of URLs,
// and the secret values given), so no builder shows a credential another hides.
package hostcmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/layerpack/layerpack/internal/redact"
)

// Cmd is one command.
type Cmd struct {
	What    string   // how messages name it: "pip install (CPython 3.12)"
	Path    string   // the program
	Args    []string // its arguments
	Dir     string   // working folder
	Env     []string // the whole environment
	Log     io.Writer
	Secrets []string // values shown as *** in the log and the error
	Tail    int      // lines of output the error keeps; 0 means 30
}

// Error is a failed command with the last lines of its output, masked.
type Error struct {
	What  string
	Lines []string
	Err   error
}

func (e *Error) Error() string {
	if len(e.Lines) == 0 {
		return fmt.Sprintf("%s: %v", e.What, e.Err)
	}
	return fmt.Sprintf("%s: %v:\n  %s", e.What, e.Err, strings.Join(e.Lines, "\n  "))
}

func (e *Error) Unwrap() error { return e.Err }

// Output is the kept output, for pattern checks.
func (e *Error) Output() string { return strings.Join(e.Lines, "\n") }

// Mask hides credentials in s by the package's rule.
func Mask(s string, secrets []string) string { return redact.URLs(redact.Values(s, secrets)) }

// Run runs c and returns its whole output (stdout and stderr, masked). A failure
// is an *Error; a cancelled context returns the context's error.
func Run(ctx context.Context, c Cmd) (string, error) {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	var buf bytes.Buffer
	var out io.Writer = &buf
	if c.Log != nil {
		out = io.MultiWriter(&buf, &maskWriter{w: c.Log, secrets: c.Secrets})
	}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	text := Mask(buf.String(), c.Secrets)
	if err == nil {
		return text, nil
	}
	if ctx.Err() != nil {
		return text, ctx.Err()
	}
	n := c.Tail
	if n <= 0 {
		n = 30
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return text, &Error{What: c.What, Lines: lines, Err: err}
}

// maskWriter writes to a log with credentials replaced by ***.
type maskWriter struct {
	w       io.Writer
	secrets []string
	mu      sync.Mutex
}

func (m *maskWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := io.WriteString(m.w, Mask(string(p), m.secrets)); err != nil {
		return 0, err
	}
	return len(p), nil
}
