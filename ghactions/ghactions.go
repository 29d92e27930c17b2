// Package ghactions writes what GitHub Actions reads from a step: outputs
// ($GITHUB_OUTPUT), the job summary ($GITHUB_STEP_SUMMARY) and workflow
// annotations (::error file=...,line=...::). Every writer is a no-op when its
// variable is unset, so commands call it unconditionally.
package ghactions

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Outputs appends name=value pairs to the file named by $GITHUB_OUTPUT (getenv
// supplies the environment). Names are written in sorted order so the file is the
// same on every run; values with newlines use the heredoc form with a random
// delimiter, so a value cannot end the block early and inject another output.
func Outputs(getenv func(string) string, kv map[string]string) error {
	path := getenv("GITHUB_OUTPUT")
	if path == "" || len(kv) == 0 {
		return nil
	}
	names := make([]string, 0, len(kv))
	for k := range kv {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		if strings.ContainsAny(k, "\r\n=") {
			return fmt.Errorf("GITHUB_OUTPUT: bad output name %q", k)
		}
		v := kv[k]
		if !strings.ContainsAny(v, "\r\n") {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
			continue
		}
		delim := "ghadelimiter_" + randomHex()
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", k, delim, v, delim)
	}
	return appendFile(path, b.String(), "GITHUB_OUTPUT")
}

// Summary appends Markdown to the file named by $GITHUB_STEP_SUMMARY.
func Summary(getenv func(string) string, markdown string) error {
	path := getenv("GITHUB_STEP_SUMMARY")
	if path == "" || markdown == "" {
		return nil
	}
	return appendFile(path, markdown, "GITHUB_STEP_SUMMARY")
}

// Enabled reports whether the process runs as a GitHub Actions step.
func Enabled(getenv func(string) string) bool { return getenv("GITHUB_ACTIONS") == "true" }

// Annotation writes one workflow command (level "error", "warning" or "notice") to
// w; file and line are left out when empty / zero. Message text is escaped as the
// runner expects, so a message cannot start a second command.
func Annotation(w io.Writer, level, file string, line int, msg string) {
	props := []string{}
	if file != "" {
		props = append(props, "file="+escapeProp(file))
		if line > 0 {
			props = append(props, fmt.Sprintf("line=%d", line))
		}
	}
	p := ""
	if len(props) > 0 {
		p = " " + strings.Join(props, ",")
	}
	fmt.Fprintf(w, "::%s%s::%s\n", level, p, escapeData(msg))
}

func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

func appendFile(path, s, what string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", what, err)
	}
	return f.Close()
}

func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
