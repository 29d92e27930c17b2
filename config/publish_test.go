package config

import (
	"strings"
	"testing"
)

func TestParsePublish(t *testing.T) {
	dir := writeTree(t)
	src := `
[publish]
regions = ["us-east-1", "eu-west-1"]
s3_bucket = "artifacts-{region}"
s3_prefix = "layers/"
keep = 3
[[publish.permissions]]
principal = "123456789012"
[[publish.permissions]]
principal = "*"
organization_id = "o-abc123defg"

[layer.a]
compatible_runtimes = ["python3.12"]
[[layer.a.files]]
src = "scripts"
[layer.a.publish]
name = "tools-{arch}"
permissions = []

[layer.b]
compatible_runtimes = ["python3.12"]
[[layer.b.files]]
src = "scripts"

[layer.c]
compatible_runtimes = ["python3.12"]
[[layer.c.files]]
src = "scripts"
[layer.c.publish]
skip = true
`
	f, err := Parse("l.toml", dir, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Publish
	if len(p.Regions) != 2 || p.S3Bucket != "artifacts-{region}" || p.S3Prefix != "layers/" || p.Keep != 3 || len(p.Permissions) != 2 {
		t.Errorf("publish = %+v", p)
	}
	if p.Permissions[1] != (Permission{Principal: "*", OrganizationID: "o-abc123defg"}) {
		t.Errorf("permission = %+v", p.Permissions[1])
	}
	a, b, c := f.Layer("a"), f.Layer("b"), f.Layer("c")
	if got := f.PublishName(a, "arm64"); got != "tools-arm64" {
		t.Errorf("layer a name = %q", got)
	}
	if got := f.PublishName(b, "x86_64"); got != "b-x86_64" {
		t.Errorf("default name = %q", got)
	}
	if got := f.PublishPermissions(a); len(got) != 0 {
		t.Errorf("an empty per-layer list must replace the global one: %v", got)
	}
	if got := f.PublishPermissions(b); len(got) != 2 {
		t.Errorf("layer b inherits the global permissions: %v", got)
	}
	if c.Publish == nil || !c.Publish.Skip {
		t.Errorf("skip not decoded: %+v", c.Publish)
	}
}

func TestPublishErrors(t *testing.T) {
	dir := writeTree(t)
	const layer = "[layer.a]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.a.files]]\nsrc = \"scripts\"\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown key", "[publish]\nregion = \"us-east-1\"\n" + layer,
			[]string{`l.toml:2: publish.region: unknown key (known keys: regions, name, s3_bucket, s3_prefix, keep, permissions)`}},
		{"bad region", "[publish]\nregions = [\"us-east-1\", \"Frankfurt\", \"us-east-1\"]\n" + layer,
			[]string{`l.toml:2: publish.regions[1]: "Frankfurt" is not an AWS region like "us-east-1"`,
				`l.toml:2: publish.regions[2]: region "us-east-1" is listed twice`}},
		{"keep", "[publish]\nkeep = -1\n" + layer,
			[]string{`l.toml:2: publish.keep: must be 0 (keep every version) or the number of newest versions to keep, not -1`}},
		{"keep type", "[publish]\nkeep = \"all\"\n" + layer,
			[]string{`l.toml:2: publish.keep: must be an integer, not a string`}},
		{"bad placeholder", "[publish]\nname = \"{layer}-{region}\"\n" + layer,
			[]string{`l.toml:2: publish.name: "{layer}-{region}": only {layer} and {arch} can be replaced`}},
		{"no arch in name", "[publish]\nname = \"shared\"\n" + layer,
			[]string{`l.toml:2: publish.name: "shared" has no {arch}, but layer "a" is built for 2 architectures: each needs its own Lambda layer name`}},
		{"bad bucket", "[publish]\ns3_bucket = \"My_Bucket\"\n" + layer,
			[]string{`l.toml:2: publish.s3_bucket: "My_Bucket" is not an S3 bucket name (3-63 of a-z 0-9 . -; {region} is replaced)`}},
		{"permissions", "[publish]\n[[publish.permissions]]\nprincipal = \"12345\"\n[[publish.permissions]]\nprincipal = \"123456789012\"\norganization_id = \"o-abc123defg\"\n[[publish.permissions]]\norg = 1\n" + layer,
			[]string{
				`l.toml:3: publish.permissions[0].principal: "12345" is not an account id (12 digits) or "*"`,
				`l.toml:6: publish.permissions[1].organization_id: needs principal = "*" (Lambda grants an organization through all accounts)`,
				`l.toml:7: publish.permissions[2].principal: required: an account id (12 digits) or "*"`,
				`l.toml:8: publish.permissions[2].org: unknown key (known keys: principal, organization_id)`,
			}},
		{"layer publish", layer + "[layer.a.publish]\nname = \"a b\"\nskip = \"yes\"\n",
			[]string{`l.toml:6: layer.a.publish.name: "a b" does not make a Lambda layer name (1 to 140 of A-Z a-z 0-9 _ -)`,
				`l.toml:7: layer.a.publish.skip: must be true or false, not a string`}},
		{"same name twice", layer + "[layer.a.publish]\nname = \"x-{arch}\"\n[layer.b]\ncompatible_runtimes = [\"python3.12\"]\n[[layer.b.files]]\nsrc = \"scripts\"\n[layer.b.publish]\nname = \"x-{arch}\"\n",
			[]string{`l.toml:12: layer.b.publish.name: layer "b" (x86_64) would publish to Lambda layer "x-x86_64", as layer "a" (x86_64) does`,
				`l.toml:12: layer.b.publish.name: layer "b" (arm64) would publish to Lambda layer "x-arm64", as layer "a" (arm64) does`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("l.toml", dir, []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
