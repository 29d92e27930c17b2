package redact

import "testing"

func TestURLs(t *testing.T) {
	in := "--index-url https://u:p@h/simple --extra-index-url https://tok@x/y http://plain/z"
	want := "--index-url https://***@h/simple --extra-index-url https://***@x/y http://plain/z"
	if got := URLs(in); got != want {
		t.Errorf("URLs(%q) = %q, want %q", in, got, want)
	}
}

func TestValues(t *testing.T) {
	// The longer secret contains the shorter: replaced first, it leaves no tail.
	got := Values("token=abc123xyz pass=abc x=ab", []string{"ab", "abc", "abc123xyz"})
	if want := "token=*** pass=*** x=ab"; got != want {
		t.Errorf("Values = %q, want %q", got, want)
	}
}
