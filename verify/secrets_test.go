package verify

import "testing"

func TestSecrets(t *testing.T) {
	files := []file{
		{name: ".env", data: "DB_PASSWORD=hunter2\n"},
		{name: ".env.example", data: "DB_PASSWORD=\n"},
		{name: "nodejs/.npmrc", data: "//registry.npmjs.org/:_authToken=npm_0123456789\n"},
		{name: ".ssh/id_rsa", data: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"},
		{name: ".aws/credentials", data: "[default]\naws_access_key_id = AKIA\n"},
		{name: "certs/ca.pem", data: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
		{name: ".git/"}, {name: ".git/config", data: "[core]\n"}, {name: ".git/HEAD", data: "ref: refs/heads/main\n"},
	}
	rep := check(t, Options{}, files...)
	want := `error secret [.aws/credentials] ".aws/credentials" looks like credentials (AWS credentials); layers are often shared, so leave it out, or allow it with allow_secrets = [".aws/credentials"] in the layer's config
error secret [.env] ".env" looks like credentials (a dotenv file of environment variables); layers are often shared, so leave it out, or allow it with allow_secrets = [".env"] in the layer's config
error secret [.ssh/id_rsa] ".ssh/id_rsa" looks like credentials (a PEM private key (OPENSSH PRIVATE KEY)); layers are often shared, so leave it out, or allow it with allow_secrets = [".ssh/id_rsa"] in the layer's config
error secret [nodejs/.npmrc] "nodejs/.npmrc" looks like credentials (an npm config with _authToken); layers are often shared, so leave it out, or allow it with allow_secrets = ["nodejs/.npmrc"] in the layer's config
warning vcs [.git/] ".git/" is version-control data (3 entries): history and config, which may hold credentials, are no use in a layer; builds leave it out
`
	if got := messages(rep.Findings); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
	// A package pip installed into python/ lists its test key in RECORD.
	rep = check(t, Options{},
		file{name: "python/tornado-6.4.dist-info/RECORD", data: "tornado/test/test.key,sha256=x,10\n"},
		file{name: "python/tornado/test/test.key", data: "-----BEGIN PRIVATE KEY-----\n"},
		file{name: "python/app/deploy.key", data: "-----BEGIN PRIVATE KEY-----\n"})
	if got, want := messages(rep.Findings), `error secret [python/app/deploy.key] "python/app/deploy.key" looks like credentials (a PEM private key (PRIVATE KEY)); layers are often shared, so leave it out, or allow it with allow_secrets = ["python/app/deploy.key"] in the layer's config
`; got != want {
		t.Errorf("with a RECORD:\n%s\nwant:\n%s", got, want)
	}
	rep = check(t, Options{AllowSecrets: []string{".env", ".ssh/", "**/.npmrc", ".aws/*", ".git/**"}}, files...)
	if got := messages(rep.Findings); got != "" {
		t.Errorf("with allow_secrets:\n%s", got)
	}
	if _, err := Reader(zipReader(t, files...), Options{AllowSecrets: []string{"a["}}); err == nil || err.Error() != `verify: allow_secrets: "a[" is not a valid pattern` {
		t.Errorf("bad pattern: %v", err)
	}
}
