// Package redact hides credentials in text that layerpack shows or hashes: plan
// output, cache-key text, error messages and build logs.
package redact

import (
	"regexp"
	"sort"
	"strings"
)

// userinfo finds the user info of URLs (https://user:password@host/).
var userinfo = regexp.MustCompile(`(://)[^/@\s]+@`)

// URLs replaces the user info of every URL in s with "***".
func URLs(s string) string { return userinfo.ReplaceAllString(s, "${1}***@") }

// Values replaces every occurrence of each secret in s with "***", longest first
// (a token that contains a shorter one is hidden whole). Secrets shorter than 3
// characters are left alone: hiding "a" would garble the text and hide nothing.
func Values(s string, secrets []string) string {
	vs := make([]string, 0, len(secrets))
	for _, v := range secrets {
		if len(v) >= 3 {
			vs = append(vs, v)
		}
	}
	sort.SliceStable(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	for _, v := range vs {
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}
