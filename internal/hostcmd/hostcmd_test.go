package hostcmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestRunMasksLogAndError(t *testing.T) {
	var log bytes.Buffer
	script := `echo "fetching https://user:pw@example.test/simple token=s3cr3tvalue"; i=0; while [ $i -lt 40 ]; do echo line$i; i=$((i+1)); done; exit 3`
	_, err := Run(context.Background(), Cmd{What: "fetch", Path: "/bin/sh", Args: []string{"-c", script},
		Env: os.Environ(), Log: &log, Secrets: []string{"s3cr3tvalue"}, Tail: 5})
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if len(ce.Lines) != 5 || ce.Lines[4] != "line39" {
		t.Errorf("kept lines %q, want the last 5", ce.Lines)
	}
	if !strings.HasPrefix(err.Error(), "fetch: exit status 3:\n  line35") {
		t.Errorf("error = %q", err)
	}
	if s := log.String(); strings.Contains(s, "pw@") || strings.Contains(s, "s3cr3tvalue") || !strings.Contains(s, "https://***@example.test") {
		t.Errorf("log not masked:\n%s", s)
	}
}

func TestRunOK(t *testing.T) {
	out, err := Run(context.Background(), Cmd{What: "echo", Path: "/bin/echo", Args: []string{"hi"}})
	if err != nil || out != "hi\n" {
		t.Fatalf("out %q, err %v", out, err)
	}
}
