package verify

import (
	"io/fs"
	"testing"
)

func TestSymlinks(t *testing.T) {
	ln := func(name, target string) file { return file{name: name, mode: fs.ModeSymlink | 0o777, data: target} }
	tests := []struct {
		name  string
		files []file
		want  string
	}{
		{"inside", []file{ln("lib/libx.so", "libx.so.1"), {name: "lib/libx.so.1"}, ln("bin/t", "../lib/tool")}, ""},
		{"chain through a link that climbs", []file{ln("lib/deep/deeper/l", "../../.."), ln("lib/x", "deep/deeper/l/../etc/passwd")},
			`error symlink [lib/x] "lib/x" -> "deep/deeper/l/../etc/passwd" leaves /opt: unzipped there it points to /etc/passwd through "lib/deep/deeper/l" -> "../../.."
`},
		{"entry below a link", []file{ln("lib/up", "../../../../etc"), {name: "lib/up/pwned", data: "x"}},
			`error symlink [lib/up] "lib/up" -> "../../../../etc" leaves /opt: unzipped there it points to /etc
error symlink [lib/up/pwned] "lib/up/pwned" is below the symlink "lib/up"; unzip would write it wherever the link points
`},
		{"absolute", []file{ln("lib/abs", "/etc/shadow")},
			`error symlink [lib/abs] "lib/abs" -> "/etc/shadow" is an absolute link; links in a layer must be relative and stay under /opt
`},
		{"loop", []file{ln("a", "b"), ln("b", "a")},
			`error symlink [a] "a" -> "b" does not resolve: more than 40 links in a row
error symlink [b] "b" -> "a" does not resolve: more than 40 links in a row
`},
		{"empty target", []file{ln("e", "")},
			`error symlink [e] "e" is a symlink whose target cannot be read: it is empty
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := check(t, Options{}, tc.files...)
			if got := messages(rep.Findings); got != tc.want {
				t.Errorf("findings:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
