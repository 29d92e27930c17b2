package config

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
)

// walker decodes a generic TOML tree into typed fields, strictly: every key must be
// consumed, and every wrong type is reported with its key path. Errors are collected
// so one run shows all of them.
type walker struct {
	file  string
	lines lineIndex
	errs  Errors
}

func (w *walker) errorf(key, format string, args ...any) {
	w.errs = append(w.errs, &Error{File: w.file, Line: w.lines.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// table is one TOML table being decoded.
type table struct {
	w    *walker
	path string
	m    map[string]any
	used map[string]bool
	// asked are the keys a decoder read, in order: the known keys that done
	// lists when it is given none, so each key is named once, where it is read.
	asked []string
}

func (w *walker) root(m map[string]any) *table {
	return &table{w: w, m: m, used: map[string]bool{}}
}

func (t *table) key(k string) string {
	if t.path == "" {
		return k
	}
	return t.path + "." + k
}

func (t *table) has(k string) bool {
	_, ok := t.m[k]
	return ok
}

func (t *table) take(k string) (any, bool) {
	if !slices.Contains(t.asked, k) {
		t.asked = append(t.asked, k)
	}
	v, ok := t.m[k]
	if ok {
		t.used[k] = true
	}
	return v, ok
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

func (t *table) str(k string, dst *string) bool {
	v, ok := t.take(k)
	if !ok {
		return false
	}
	s, isStr := v.(string)
	if !isStr {
		t.w.errorf(t.key(k), "must be a string, not %s", typeName(v))
		return false
	}
	*dst = s
	return true
}

func (t *table) integer(k string, dst *int) bool {
	v, ok := t.take(k)
	if !ok {
		return false
	}
	n, isInt := v.(int64)
	if !isInt {
		t.w.errorf(t.key(k), "must be an integer, not %s", typeName(v))
		return false
	}
	*dst = int(n)
	return true
}

func (t *table) boolean(k string, dst **bool) bool {
	v, ok := t.take(k)
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		t.w.errorf(t.key(k), "must be true or false, not %s", typeName(v))
		return false
	}
	*dst = &b
	return true
}

func (t *table) strs(k string, dst *[]string) bool {
	v, ok := t.take(k)
	if !ok {
		return false
	}
	arr, isArr := v.([]any)
	if !isArr {
		t.w.errorf(t.key(k), "must be an array of strings, not %s", typeName(v))
		return false
	}
	out := make([]string, 0, len(arr))
	good := true
	for i, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			t.w.errorf(t.key(k)+"["+strconv.Itoa(i)+"]", "must be a string, not %s", typeName(e))
			good = false
			continue
		}
		out = append(out, s)
	}
	*dst = out
	return good
}

func (t *table) strMap(k string, dst *map[string]string) bool {
	sub := t.table(k)
	if sub == nil {
		return false
	}
	out := map[string]string{}
	for _, name := range sub.keys() {
		var s string
		if sub.str(name, &s) {
			out[name] = s
		}
	}
	*dst = out
	return true
}

// table returns the sub-table at k, or nil when absent or not a table.
func (t *table) table(k string) *table {
	v, ok := t.take(k)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		t.w.errorf(t.key(k), "must be a table, not %s", typeName(v))
		return nil
	}
	return &table{w: t.w, path: t.key(k), m: m, used: map[string]bool{}}
}

// tables returns the elements of an array of tables at k.
func (t *table) tables(k string) []*table {
	v, ok := t.take(k)
	if !ok {
		return nil
	}
	var ms []map[string]any
	switch a := v.(type) {
	case []map[string]any:
		ms = a
	case []any:
		for i, e := range a {
			m, isMap := e.(map[string]any)
			if !isMap {
				t.w.errorf(fmt.Sprintf("%s[%d]", t.key(k), i), "must be a table, not %s", typeName(e))
				continue
			}
			ms = append(ms, m)
		}
	default:
		t.w.errorf(t.key(k), "must be an array of tables ([[%s]]), not %s", t.key(k), typeName(v))
		return nil
	}
	out := make([]*table, len(ms))
	for i, m := range ms {
		out[i] = &table{w: t.w, path: fmt.Sprintf("%s[%d]", t.key(k), i), m: m, used: map[string]bool{}}
	}
	return out
}

// keys lists the table's keys in sorted order and marks them used.
func (t *table) keys() []string {
	ks := make([]string, 0, len(t.m))
	for k := range t.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// done reports every key that no field consumed.
func (t *table) done(known ...string) {
	if len(known) == 0 {
		known = t.asked
	}
	for _, k := range t.keys() {
		if !t.used[k] {
			msg := "unknown key"
			if len(known) > 0 {
				msg = fmt.Sprintf("unknown key (known keys: %s)", joinQuoted(known))
			}
			t.w.errorf(t.key(k), "%s", msg)
		}
	}
}

func joinQuoted(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
