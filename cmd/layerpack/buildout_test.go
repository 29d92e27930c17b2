package main

import (
	"fmt"
	"os"
	"regexp"

	"github.com/rogpeppe/go-internal/testscript"
)

var durationMS = regexp.MustCompile(`"duration_ms": [0-9]+`)

// jsonnorm FILE prints a --json document with every duration_ms set to 0, the one
// value that differs between runs.
func cmdJSONNorm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: jsonnorm FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if !durationMS.Match(b) && len(b) > 0 && neg {
		return
	}
	fmt.Fprint(ts.Stdout(), durationMS.ReplaceAllString(string(b), `"duration_ms": 0`))
}
