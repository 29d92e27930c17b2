package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a config file, located by file, line (when known) and key path.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // key path, e.g. layer.tools.files[0].src
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a file; Load reports all of them, not only the first.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		// Unknown lines (0) go last, then by line, then key.
		la, lb := a.Line, b.Line
		if la == 0 {
			la = 1 << 30
		}
		if lb == 0 {
			lb = 1 << 30
		}
		if la != lb {
			return la < lb
		}
		return a.Key < b.Key
	})
}

// MaxErrors is how many errors are reported one by one; the rest are counted, so a
// file of a million unknown keys prints a screenful, not a million lines.
const MaxErrors = 50

func (es Errors) capped() Errors {
	if len(es) <= MaxErrors {
		return es
	}
	more := &Error{File: es[0].File, Msg: fmt.Sprintf("and %d more errors", len(es)-MaxErrors)}
	return append(es[:MaxErrors:MaxErrors], more)
}
