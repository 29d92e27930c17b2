package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/rogpeppe/go-internal/testscript"
)

// sbomls FILE prints the package URLs of a CycloneDX document, sorted, one a line,
// after decoding it with cyclonedx-go.
func cmdSbomls(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: sbomls FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var bom cdx.BOM
	ts.Check(cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom))
	var purls []string
	if bom.Components != nil {
		for _, c := range *bom.Components {
			purls = append(purls, c.PackageURL)
		}
	}
	sort.Strings(purls)
	for _, p := range purls {
		fmt.Fprintln(ts.Stdout(), p)
	}
}

var pinned = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)`)

// lockpurls FILE prints the package URLs a lockfile says a layer installs: the
// name==version pins of a requirements file, or the non-dev packages of a
// package-lock.json.
func cmdLockpurls(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: lockpurls requirements.txt|package-lock.json")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var purls []string
	if strings.HasSuffix(args[0], ".json") {
		var lock struct {
			Packages map[string]struct {
				Version string `json:"version"`
				Dev     bool   `json:"dev"`
				Name    string `json:"name"`
			} `json:"packages"`
		}
		ts.Check(json.Unmarshal(b, &lock))
		for path, p := range lock.Packages {
			i := strings.LastIndex(path, "node_modules/")
			if i < 0 || p.Dev {
				continue
			}
			name := path[i+len("node_modules/"):]
			if p.Name != "" {
				name = p.Name
			}
			purls = append(purls, "pkg:npm/"+strings.Replace(name, "@", "%40", 1)+"@"+p.Version)
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if m := pinned.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
				purls = append(purls, "pkg:pypi/"+pypiNorm(m[1])+"@"+m[2])
			}
		}
	}
	sort.Strings(purls)
	for _, p := range purls {
		fmt.Fprintln(ts.Stdout(), p)
	}
}

func pypiNorm(n string) string {
	return regexp.MustCompile(`[-_.]+`).ReplaceAllString(strings.ToLower(n), "-")
}
