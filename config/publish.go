package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/layerpack/layerpack/lambda"
)

// Publish is [publish]: where `layerpack publish` sends the zips. All optional.
type Publish struct {
	// Regions to publish to; empty means the AWS SDK's configured region.
	Regions []string
	// Name is the Lambda layer name; {layer} and {arch} are replaced. Default "{layer}-{arch}".
	Name string
	// S3Bucket holds zips above the direct-upload limit; {region} is replaced.
	S3Bucket string
	S3Prefix string
	// Keep is how many of the newest versions to keep; 0 keeps every version.
	Keep        int
	Permissions []Permission
}

// Permission is one [[publish.permissions]] entry: who may use the layer versions.
type Permission struct {
	Principal      string // an account id or "*"
	OrganizationID string // optional, with Principal "*": only this organization
}

// LayerPublish is [layer.NAME.publish]: a layer's own settings. All optional.
type LayerPublish struct {
	Name        string       // overrides [publish] name
	Permissions []Permission // when set (even empty), replaces [publish] permissions
	HasPerms    bool         `json:"-"`
	Skip        bool         // never publish this layer
}

// DefaultPublishName is the layer name template when none is configured.
const DefaultPublishName = "{layer}-{arch}"

var (
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRe = regexp.MustCompile(`^[0-9]{12}$`)
	orgRe     = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	bucketRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

var publishKeys = []string{"regions", "name", "s3_bucket", "s3_prefix", "keep", "permissions"}

func decodePublish(root *table, f *File) {
	f.Publish = Publish{Name: DefaultPublishName}
	t := root.table("publish")
	if t == nil {
		return
	}
	t.strs("regions", &f.Publish.Regions)
	t.str("name", &f.Publish.Name)
	t.str("s3_bucket", &f.Publish.S3Bucket)
	t.str("s3_prefix", &f.Publish.S3Prefix)
	t.integer("keep", &f.Publish.Keep)
	f.Publish.Permissions = decodePermissions(t)
	t.done(publishKeys...)
}

func decodePermissions(t *table) []Permission {
	var out []Permission
	for _, pt := range t.tables("permissions") {
		var p Permission
		pt.str("principal", &p.Principal)
		pt.str("organization_id", &p.OrganizationID)
		pt.done("principal", "organization_id")
		out = append(out, p)
	}
	return out
}

func decodeLayerPublish(t *table, l *Layer) {
	pt := t.table("publish")
	if pt == nil {
		return
	}
	lp := &LayerPublish{}
	pt.str("name", &lp.Name)
	if pt.has("permissions") {
		lp.HasPerms = true
		lp.Permissions = decodePermissions(pt)
	}
	boolField(pt, "skip", &lp.Skip)
	pt.done("name", "permissions", "skip")
	l.Publish = lp
}

func validatePublish(w *walker, f *File) {
	p := &f.Publish
	seen := map[string]bool{}
	for i, r := range p.Regions {
		k := fmt.Sprintf("publish.regions[%d]", i)
		if !regionRe.MatchString(r) {
			w.errorf(k, "%q is not an AWS region like \"us-east-1\"", r)
		}
		if seen[r] {
			w.errorf(k, "region %q is listed twice", r)
		}
		seen[r] = true
	}
	if p.Regions != nil && len(p.Regions) == 0 {
		w.errorf("publish.regions", "must list at least one region, or be left out to use the SDK's configured region")
	}
	globalOK := checkNameTemplate(w, "publish.name", p.Name)
	if p.S3Bucket != "" {
		b := strings.ReplaceAll(p.S3Bucket, "{region}", "us-east-1")
		if strings.Contains(b, "{") || !bucketRe.MatchString(b) {
			w.errorf("publish.s3_bucket", "%q is not an S3 bucket name (3-63 of a-z 0-9 . -; {region} is replaced)", p.S3Bucket)
		}
	}
	if strings.HasPrefix(p.S3Prefix, "/") {
		w.errorf("publish.s3_prefix", "%q must not start with \"/\"", p.S3Prefix)
	}
	if p.Keep < 0 {
		w.errorf("publish.keep", "must be 0 (keep every version) or the number of newest versions to keep, not %d", p.Keep)
	}
	validatePermissions(w, "publish.permissions", p.Permissions)
	names := map[string]string{} // published layer name -> "layer (arch)" that uses it
	for _, l := range f.Layers {
		lp := l.Publish
		tmpl, key, ok := p.Name, "publish.name", globalOK
		if lp != nil {
			if lp.Name != "" {
				tmpl, key = lp.Name, "layer."+l.Name+".publish.name"
				ok = checkNameTemplate(w, key, lp.Name)
			}
			validatePermissions(w, "layer."+l.Name+".publish.permissions", lp.Permissions)
			if lp.Skip {
				continue
			}
		}
		arches := f.ArchList(l)
		if !ok || hasDupArch(arches) {
			continue // already reported
		}
		if len(arches) > 1 && !strings.Contains(tmpl, "{arch}") {
			w.errorf(key, "%q has no {arch}, but layer %q is built for %d architectures: each needs its own Lambda layer name", tmpl, l.Name, len(arches))
			continue
		}
		for _, a := range arches {
			n := f.PublishName(l, a)
			if other, ok := names[n]; ok {
				w.errorf(key, "layer %q (%s) would publish to Lambda layer %q, as %s does", l.Name, a, n, other)
			}
			names[n] = fmt.Sprintf("layer %q (%s)", l.Name, a)
		}
	}
}

func checkNameTemplate(w *walker, key, tmpl string) bool {
	n := strings.NewReplacer("{layer}", "x", "{arch}", "arm64").Replace(tmpl)
	if strings.ContainsAny(n, "{}") {
		w.errorf(key, "%q: only {layer} and {arch} can be replaced", tmpl)
		return false
	}
	if !layerName.MatchString(n) {
		w.errorf(key, "%q does not make a Lambda layer name (1 to 140 of A-Z a-z 0-9 _ -)", tmpl)
		return false
	}
	return true
}

func hasDupArch(as []lambda.Arch) bool {
	seen := map[lambda.Arch]bool{}
	for _, a := range as {
		if seen[a] {
			return true
		}
		seen[a] = true
	}
	return false
}

func validatePermissions(w *walker, key string, ps []Permission) {
	seen := map[Permission]bool{}
	for i, p := range ps {
		k := fmt.Sprintf("%s[%d]", key, i)
		switch {
		case p.Principal == "":
			w.errorf(k+".principal", "required: an account id (12 digits) or \"*\"")
		case p.Principal != "*" && !accountRe.MatchString(p.Principal):
			w.errorf(k+".principal", "%q is not an account id (12 digits) or \"*\"", p.Principal)
		}
		if p.OrganizationID != "" {
			if !orgRe.MatchString(p.OrganizationID) {
				w.errorf(k+".organization_id", "%q is not an organization id like \"o-abc123defg\"", p.OrganizationID)
			}
			if p.Principal != "*" {
				w.errorf(k+".organization_id", "needs principal = \"*\" (Lambda grants an organization through all accounts)")
			}
		}
		if seen[p] {
			w.errorf(k, "the same permission is listed twice")
		}
		seen[p] = true
	}
}

// PublishName is the Lambda layer name a layer's zip for arch is published as.
func (f *File) PublishName(l *Layer, a lambda.Arch) string {
	tmpl := f.Publish.Name
	if l.Publish != nil && l.Publish.Name != "" {
		tmpl = l.Publish.Name
	}
	return strings.NewReplacer("{layer}", l.Name, "{arch}", string(a)).Replace(tmpl)
}

// PublishPermissions is who may use a layer's versions: its own list, else [publish]'s.
func (f *File) PublishPermissions(l *Layer) []Permission {
	if l.Publish != nil && l.Publish.HasPerms {
		return l.Publish.Permissions
	}
	return f.Publish.Permissions
}
