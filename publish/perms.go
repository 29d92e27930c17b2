package publish

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/config"
)

// SidPrefix marks the policy statements layerpack made: only those are ever removed.
const SidPrefix = "layerpack-"

// StatementID is the stable id of a permission's statement, so a rerun finds it
// instead of adding a duplicate: layerpack-<account>, layerpack-all, or
// layerpack-org-<organization id>.
func StatementID(p config.Permission) string {
	switch {
	case p.OrganizationID != "":
		return SidPrefix + "org-" + p.OrganizationID
	case p.Principal == "*":
		return SidPrefix + "all"
	}
	return SidPrefix + p.Principal
}

// policySids lists the statement ids of a layer version policy document.
func policySids(doc string) ([]string, error) {
	if doc == "" {
		return nil, nil
	}
	var p struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return nil, err
	}
	// A policy may hold one statement object or a list of them.
	var list []struct{ Sid string }
	if err := json.Unmarshal(p.Statement, &list); err != nil {
		var one struct{ Sid string }
		if err := json.Unmarshal(p.Statement, &one); err != nil {
			return nil, err
		}
		list = append(list, one)
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.Sid)
	}
	return out, nil
}

// permChanges says which configured permissions are missing and which statements
// layerpack made are no longer configured. Foreign statements are never touched.
func permChanges(want []config.Permission, have []string) (add []config.Permission, remove []string) {
	haveSet := map[string]bool{}
	for _, s := range have {
		haveSet[s] = true
	}
	wantSet := map[string]bool{}
	for _, p := range want {
		id := StatementID(p)
		wantSet[id] = true
		if !haveSet[id] {
			add = append(add, p)
			haveSet[id] = true // a permission listed twice is added once
		}
	}
	seen := map[string]bool{}
	for _, s := range have {
		if strings.HasPrefix(s, SidPrefix) && !wantSet[s] && !seen[s] {
			remove = append(remove, s)
			seen[s] = true
		}
	}
	sort.Strings(remove)
	return add, remove
}
