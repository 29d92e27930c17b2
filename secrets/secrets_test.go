package secrets

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{".env", "A=1\n", "a dotenv file of environment variables"},
		{"app/.env.production", "", "a dotenv file of environment variables"},
		{".env.example", "A=\n", ""},
		{".env.sample", "A=\n", ""},
		{".env.template", "A=\n", ""},
		{".envrc", "export A=1\n", ""},
		{"python/.env", "A=1\n", "a dotenv file of environment variables"},
		{".ssh/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...\n", "a PEM private key (OPENSSH PRIVATE KEY)"},
		{"certs/server.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN RSA PRIVATE KEY-----\n", "a PEM private key (RSA PRIVATE KEY)"},
		{"certs/ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", ""},
		{"certs/pub.key", "-----BEGIN PUBLIC KEY-----\nMIIB\n", ""},
		{"k.key", "-----BEGIN PRIVATE KEY-----\n", "a PEM private key (PRIVATE KEY)"},
		{"k.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", "a PEM private key (ENCRYPTED PRIVATE KEY)"},
		{"k.asc", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n", "a PEM private key (PGP PRIVATE KEY BLOCK)"},
		{"bin/tool", "\x7fELF" + strings.Repeat("\x00", 100) + "-----BEGIN EC PRIVATE KEY-----", "a PEM private key (EC PRIVATE KEY)"},
		{"late.txt", strings.Repeat("x", HeadLimit) + "-----BEGIN RSA PRIVATE KEY-----", ""},
		{"me.ppk", "PuTTY-User-Key-File-3: ssh-ed25519\n", "a PuTTY private key"},
		{"nodejs/.npmrc", "//registry.npmjs.org/:_authToken=npm_abc123\n", "an npm config with _authToken"},
		{"nodejs/.npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n", ""},
		{"nodejs/.npmrc", "registry=https://registry.npmjs.org/\n", ""},
		{".npmrc", "_auth = dXNlcjpwYXNz\n", "an npm config with _auth"},
		{".yarnrc.yml", "npmAuthToken: abc\n", "a Yarn config with npmAuthToken"},
		{".yarnrc.yml", "npmAuthToken: \"${NPM_TOKEN}\"\n", ""},
		{".pypirc", "[pypi]\nusername = __token__\npassword = pypi-AgEI\n", "a PyPI config with a password"},
		{".pypirc", "[pypi]\nusername = __token__\n", ""},
		{".netrc", "machine example.com login me password s3cret\n", "a netrc with a password"},
		{".netrc", "machine example.com login me\n", ""},
		{".aws/credentials", "[default]\n", "AWS credentials"},
		{"home/.aws/config", "[default]\n", ""},
		{".docker/config.json", `{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}`, "a Docker config with an auth"},
		{".docker/config.json", `{"credsStore": "desktop"}`, ""},
		{".git-credentials", "https://me:ghp_abc@github.com\n", "stored Git credentials"},
		{"nodejs/node_modules/ssh2/test/fixtures/id_rsa", "-----BEGIN RSA PRIVATE KEY-----\n", ""},
		{"python/lib/python3.12/site-packages/x/.env", "A=1", ""},
		{"ruby/gems/3.3.0/gems/net-ssh-7.0/test/key", "-----BEGIN RSA PRIVATE KEY-----\n", ""},
		{".git/config", "-----BEGIN RSA PRIVATE KEY-----\n", ""},
	}
	for _, tc := range tests {
		f, err := Check(tc.name, strings.NewReader(tc.content))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if f != nil {
			got = f.Reason
			if f.Name != tc.name {
				t.Errorf("%s: Name = %q", tc.name, f.Name)
			}
		}
		if got != tc.want {
			t.Errorf("Check(%q, %.40q) = %q, want %q", tc.name, tc.content, got, tc.want)
		}
	}
}

func TestIsVCS(t *testing.T) {
	for name, want := range map[string]bool{
		".git/": true, ".git/config": true, "a/.hg/store": true, "x/.svn/": true, "sub/.git": true,
		".gitignore": false, "a/git/x": false, ".github/workflows/x.yml": false,
	} {
		if got := IsVCS(name); got != want {
			t.Errorf("IsVCS(%q) = %v", name, got)
		}
	}
	if r := VCSRoot("a/.git/objects/x"); r != "a/.git/" {
		t.Errorf("VCSRoot = %q", r)
	}
}

func TestAllowed(t *testing.T) {
	pats := []string{".env", "certs/", "**/*.pem"}
	for name, want := range map[string]bool{
		".env": true, "a/.env": false, "certs/a/b.key": true, "x/y.pem": true, "y.pem": true, ".env.prod": false,
	} {
		if got := Allowed(name, pats); got != want {
			t.Errorf("Allowed(%q) = %v", name, got)
		}
	}
	if err := ValidatePatterns([]string{"a[", "b"}); err == nil || err.Error() != `"a[" is not a valid pattern` {
		t.Errorf("ValidatePatterns = %v", err)
	}
}

func TestParseRecord(t *testing.T) {
	rec := "tornado/__init__.py,sha256=abc,123\ntornado/test/test.key,sha256=def,456\n\"odd,name.py\",,\n../../escape,,\ntornado-6.4.dist-info/RECORD,,\n"
	got, err := ParseRecord("python/tornado-6.4.dist-info/RECORD", strings.NewReader(rec))
	if err != nil {
		t.Fatal(err)
	}
	want := "python/tornado/__init__.py python/tornado/test/test.key python/odd,name.py python/tornado-6.4.dist-info/RECORD"
	if strings.Join(got, " ") != want {
		t.Errorf("ParseRecord = %q\nwant %q", strings.Join(got, " "), want)
	}
	if !IsRecord("python/tornado-6.4.dist-info/RECORD") || IsRecord("python/RECORD") {
		t.Error("IsRecord")
	}
}
