package symlinks

import (
	"fmt"
	"testing"
)

type ent struct {
	name   string
	kind   Kind
	target string
}

func tree(es ...ent) *Tree {
	t := New()
	for _, e := range es {
		t.Add(e.name, e.kind, e.target)
	}
	return t
}

func link(name, target string) ent { return ent{name, Link, target} }
func dir(name string) ent          { return ent{name, Dir, ""} }
func file(name string) ent         { return ent{name, File, ""} }

func TestCheck(t *testing.T) {
	var chain []ent
	for i := 0; i < 41; i++ {
		chain = append(chain, link(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d", i+1)))
	}
	cases := []struct {
		name  string
		tree  *Tree
		link  string
		err   string
		reach string
	}{
		{"sibling", tree(link("lib/a", "b"), file("lib/b")), "lib/a", "", ""},
		{"up to root", tree(link("lib/deep/deeper/l", "../../..")), "lib/deep/deeper/l", "", ""},
		{"dangling inside", tree(link("bin/x", "../lib/nothing")), "bin/x", "", ""},
		{"dot", tree(link("l", ".")), "l", "", ""},
		{"issue chain", tree(link("lib/deep/deeper/l", "../../.."), link("lib/x", "deep/deeper/l/../etc/passwd")), "lib/x",
			`symlink target "deep/deeper/l/../etc/passwd" leaves the tree through "lib/deep/deeper/l" -> "../../.."`, "/etc/passwd"},
		{"up", tree(link("lib/up", "../../../../etc")), "lib/up", `symlink target "../../../../etc" leaves the tree`, "/etc"},
		{"one above", tree(link("l", "..")), "l", `symlink target ".." leaves the tree`, "/"},
		{"absolute", tree(link("lib/abs", "/etc/shadow")), "lib/abs", `symlink target "/etc/shadow" is absolute`, ""},
		{"through an absolute link", tree(link("lib/abs", "/etc"), link("lib/y", "abs/shadow")), "lib/y",
			`symlink target "abs/shadow" leaves the tree through "lib/abs" -> "/etc"`, "/etc/shadow"},
		{"through an escaping link", tree(link("a/l", "../../x"), link("b", "a/l/y")), "b",
			`symlink target "a/l/y" leaves the tree through "a/l" -> "../../x"`, "/x/y"},
		{"final link followed", tree(link("a", "b"), link("b", "../out")), "a",
			`symlink target "b" leaves the tree through "b" -> "../out"`, "/out"},
		{"loop", tree(link("a", "b"), link("b", "a")), "a", `symlink target "b" does not resolve: more than 40 links in a row`, ""},
		{"41 links", tree(chain...), "c0", `symlink target "c1" does not resolve: more than 40 links in a row`, ""},
		{"40 links", tree(chain[1:]...), "c1", "", ""},
		{"back in is still out", tree(link("lib/l", "../../opt/lib/x")), "lib/l", `symlink target "../../opt/lib/x" leaves the tree`, "/opt/lib/x"},
		{"dir named like link", tree(dir("a"), link("a/b", "../c")), "a/b", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.tree.Check(c.link)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.err {
				t.Fatalf("Check(%q) = %q, want %q", c.link, got, c.err)
			}
			if c.reach != "" {
				if r := err.(*Error).Reached; r != c.reach {
					t.Errorf("Reached = %q, want %q", r, c.reach)
				}
			}
		})
	}
}

func TestLinkedParent(t *testing.T) {
	tr := tree(link("lib/up", "../../../../etc"), file("lib/up/pwned"), dir("lib"))
	if p := tr.LinkedParent("lib/up/pwned"); p != "lib/up" {
		t.Errorf("LinkedParent = %q, want lib/up", p)
	}
	if p := tr.LinkedParent("lib/up"); p != "" {
		t.Errorf("LinkedParent(lib/up) = %q, want none", p)
	}
	if p := tr.LinkedParent("lib/upx/y"); p != "" {
		t.Errorf("LinkedParent(lib/upx/y) = %q, want none", p)
	}
}
