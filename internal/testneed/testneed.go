// Package testneed is the one place tests ask for something outside the process
// (a tool on PATH, a daemon, a variable set by scripts/testenv.sh). Outside CI a
// missing need skips the test with the reason; with CI set it fails it, so a CI run
// can never pass by skipping (goreleaser's testlib does the same).
package testneed

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the CI variable is set (to anything but "" or "false").
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Missing skips t with why, or fails it under CI.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI is set but %s (scripts/testenv.sh setup installs it; eval \"$(scripts/testenv.sh env)\" exports it)", why)
	}
	t.Skip("skipped: " + why + " (run scripts/testenv.sh setup, then eval \"$(scripts/testenv.sh env)\")")
}

// Tool returns the path of a program on PATH, or calls Missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not on PATH")
	}
	return p
}

// Env returns the value of a variable, or calls Missing when it is empty.
func Env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, name+" is not set")
	}
	return v
}
