package config

import (
	"strconv"
	"strings"
)

// lineIndex maps key paths to the line that defines them. The TOML decoder keeps key
// positions private, so this is a small scanner that understands table headers,
// arrays of tables, dotted keys and multi-line strings: enough to point at a line.
type lineIndex map[string]int

func indexLines(src string) lineIndex {
	idx := lineIndex{}
	prefix := ""
	counts := map[string]int{} // array-of-tables path -> elements seen
	lines := strings.Split(src, "\n")
	inMulti := ""
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if inMulti != "" {
			if strings.Contains(line, inMulti) {
				inMulti = ""
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "[[") {
			name := normKey(strings.TrimSuffix(strings.SplitN(line[2:], "]]", 2)[0], ""))
			k := counts[name]
			counts[name] = k + 1
			prefix = name + "[" + strconv.Itoa(k) + "]"
			idx.set(prefix, n)
			continue
		}
		if line[0] == '[' {
			name := normKey(strings.SplitN(line[1:], "]", 2)[0])
			prefix = resolveArrays(name, counts)
			idx.set(prefix, n)
			continue
		}
		eq := strings.Index(line, "=")
		if eq <= 0 {
			continue
		}
		key := normKey(line[:eq])
		full := key
		if prefix != "" {
			full = prefix + "." + key
		}
		idx.set(full, n)
		// Parents of dotted keys point at their first line too.
		for j := strings.LastIndex(full, "."); j > 0; j = strings.LastIndex(full[:j], ".") {
			idx.set(full[:j], n)
		}
		val := strings.TrimSpace(line[eq+1:])
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(val, q) && !strings.Contains(val[3:], q) {
				inMulti = q
			}
		}
	}
	return idx
}

func (idx lineIndex) set(k string, n int) {
	if _, ok := idx[k]; !ok {
		idx[k] = n
	}
}

// resolveArrays turns "layer.a.files.x" into "layer.a.files[N].x" when a header refers
// into the last element of an array of tables.
func resolveArrays(name string, counts map[string]int) string {
	parts := strings.Split(name, ".")
	out := ""
	for _, p := range parts {
		if out == "" {
			out = p
		} else {
			out += "." + p
		}
		if k, ok := counts[stripIdx(out)]; ok && k > 0 {
			out += "[" + strconv.Itoa(k-1) + "]"
		}
	}
	return out
}

func stripIdx(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// normKey removes spaces and quotes around the parts of a dotted key.
func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if len(p) >= 2 && (p[0] == '"' || p[0] == '\'') && p[len(p)-1] == p[0] {
			p = p[1 : len(p)-1]
		}
		parts[i] = p
	}
	return strings.Join(parts, ".")
}

// line finds the line of a key path, or of its closest parent that has one.
func (idx lineIndex) line(key string) int {
	for k := key; k != ""; {
		if n, ok := idx[k]; ok {
			return n
		}
		switch j := strings.LastIndexAny(k, ".["); {
		case j < 0:
			k = ""
		default:
			k = k[:j]
		}
	}
	return 0
}
