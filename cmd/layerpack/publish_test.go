package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/layerpack/layerpack/internal/mototest"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/manifest"
	"github.com/layerpack/layerpack/report"
)

const secretKey = "s3cr3t-key-never-printed"

// TestPublishCommand runs `layerpack publish` and `layerpack build --publish`, for
// real, against moto's server: files-only layers, so no BuildKit is needed.
func TestPublishCommand(t *testing.T) {
	bin := testneed.Env(t, mototest.EnvVar)
	srv, err := mototest.Start(bin, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)

	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("layerpack.toml", `[layer.tools]
description = "small tools"
compatible_runtimes = ["provided.al2023"]
[[layer.tools.files]]
src = "scripts"
dest = "bin"
mode = "0755"

[publish]
regions = ["us-east-1", "eu-west-1"]
[[publish.permissions]]
principal = "*"
`)
	write("scripts/hello", "#!/bin/sh\necho hello\n")
	ghOut := filepath.Join(dir, "github-output")
	env := os.Environ()
	for k, v := range mototest.Env(srv, t.TempDir()) {
		env = append(env, k+"="+v)
	}
	env = append(env, "AWS_SECRET_ACCESS_KEY="+secretKey, "XDG_CACHE_HOME="+t.TempDir(), "LAYERPACK_CACHE_DIR=",
		"SOURCE_DATE_EPOCH=", "GITHUB_OUTPUT="+ghOut, "AWS_MAX_ATTEMPTS=1")
	var all strings.Builder
	lp := func(wantCode int, extraEnv []string, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command("layerpack", args...)
		cmd.Dir = dir
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		all.WriteString(stdout.String() + stderr.String())
		if code != wantCode {
			t.Fatalf("layerpack %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	// First publish: both architectures, both regions, version 1.
	out, _ := lp(0, nil, "publish", "--progress", "quiet")
	for _, want := range []string{
		"tools-x86_64 us-east-1 published arn:aws:lambda:us-east-1:123456789012:layer:tools-x86_64:1 (new layer)\n",
		"tools-x86_64 eu-west-1 published arn:aws:lambda:eu-west-1:123456789012:layer:tools-x86_64:1 (new layer)\n",
		"tools-arm64 us-east-1 published arn:aws:lambda:us-east-1:123456789012:layer:tools-arm64:1 (new layer)\n",
		"tools-arm64 eu-west-1 permission layerpack-all added to version 1\n",
		"dist/tools-arm64.zip  ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first publish: no %q in\n%s", want, out)
		}
	}
	gh, err := os.ReadFile(ghOut)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tools-arm64-layer-version-arn=arn:aws:lambda:us-east-1:123456789012:layer:tools-arm64:1\n",
		"tools-x86_64-eu-west-1-layer-version-arn=arn:aws:lambda:eu-west-1:123456789012:layer:tools-x86_64:1\n",
	} {
		if !strings.Contains(string(gh), want) {
			t.Errorf("GITHUB_OUTPUT lacks %q:\n%s", want, gh)
		}
	}
	m, err := manifest.Read(filepath.Join(dir, "dist", manifest.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if len(l.Published) != 2 || l.Published[0].Region != "us-east-1" || l.Published[1].Status != "new" || l.Published[1].LayerName != "tools-"+l.Architecture {
			t.Errorf("manifest %s: published %+v", l.Architecture, l.Published)
		}
	}

	// A rerun: the cached build and nothing new; --json on stdout, the rest on stderr.
	out, errOut := lp(0, nil, "publish", "--json", "--progress", "quiet")
	var doc report.Report
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	res := doc.Published
	if doc.Command != "publish" || !doc.OK || len(doc.Layers) != 2 {
		t.Errorf("--json document: command %q, ok %v, %d layers", doc.Command, doc.OK, len(doc.Layers))
	}
	if len(res) != 4 {
		t.Fatalf("--json: %d results", len(res))
	}
	for _, r := range res {
		if r.Status != "unchanged" || r.Version != 1 || len(r.PermissionsAdded) != 0 {
			t.Errorf("rerun: %+v", r)
		}
	}
	if !strings.Contains(errOut, "(cached)") || !strings.Contains(errOut, "tools-arm64 eu-west-1 unchanged arn:") {
		t.Errorf("rerun stderr:\n%s", errOut)
	}

	// A changed file: a dry run says so and changes nothing.
	write("scripts/hello", "#!/bin/sh\necho hello, world\n")
	out, _ = lp(0, nil, "publish", "--dry-run", "--region", "eu-west-1", "--progress", "quiet")
	if !strings.Contains(out, "tools-x86_64 eu-west-1 would publish (code changed)\n") || strings.Contains(out, "us-east-1") {
		t.Errorf("dry run:\n%s", out)
	}
	if n := countVersions(t, srv, "eu-west-1", "tools-x86_64"); n != 1 {
		t.Errorf("after the dry run: %d versions", n)
	}

	// build --publish, one architecture: only it gets version 2.
	out, _ = lp(0, nil, "build", "--publish", "--arch", "arm64", "--progress", "quiet")
	if !strings.Contains(out, "tools-arm64 eu-west-1 published arn:aws:lambda:eu-west-1:123456789012:layer:tools-arm64:2 (code changed)\n") || strings.Contains(out, "tools-x86_64 ") {
		t.Errorf("build --publish:\n%s", out)
	}
	if n := countVersions(t, srv, "us-east-1", "tools-x86_64"); n != 1 {
		t.Errorf("x86_64 has %d versions", n)
	}

	// No emulator: exit 1, and the message names the call, the layer and the region.
	_, errOut = lp(1, []string{"AWS_ENDPOINT_URL=http://127.0.0.1:1"}, "publish", "--region", "us-east-1", "--arch", "x86_64", "--progress", "quiet")
	if !strings.Contains(errOut, "tools-x86_64 us-east-1: lambda:ListLayerVersions failed") || !strings.Contains(errOut, "connection refused") {
		t.Errorf("unreachable endpoint:\n%s", errOut)
	}

	// No region anywhere: a usage error.
	write("layerpack.toml", strings.Replace(mustRead(t, filepath.Join(dir, "layerpack.toml")), `regions = ["us-east-1", "eu-west-1"]`, "", 1))
	_, errOut = lp(2, []string{"AWS_REGION=", "AWS_DEFAULT_REGION="}, "publish", "--progress", "quiet")
	if !strings.Contains(errOut, "no region to publish to") {
		t.Errorf("no region:\n%s", errOut)
	}

	// --profile: the region and credentials of a shared config profile.
	awsDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(awsDir, "config"), []byte("[profile ci]\nregion = ap-south-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(awsDir, "credentials"), []byte("[ci]\naws_access_key_id = testing\naws_secret_access_key = "+secretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	profEnv := []string{"AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=",
		"AWS_CONFIG_FILE=" + filepath.Join(awsDir, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(awsDir, "credentials")}
	out, _ = lp(0, profEnv, "publish", "--profile", "ci", "--arch", "x86_64", "--progress", "quiet")
	if !strings.Contains(out, "tools-x86_64 ap-south-1 published arn:aws:lambda:ap-south-1:123456789012:layer:tools-x86_64:1 (new layer)\n") {
		t.Errorf("--profile ci:\n%s", out)
	}
	_, errOut = lp(1, profEnv, "publish", "--profile", "nope", "--progress", "quiet")
	if !strings.Contains(errOut, "loading the AWS configuration") || !strings.Contains(errOut, "nope") {
		t.Errorf("unknown profile:\n%s", errOut)
	}

	mf := mustRead(t, filepath.Join(dir, "dist", manifest.FileName))
	if strings.Contains(all.String()+mf+string(gh), secretKey) {
		t.Error("the secret access key appears in output, the manifest or GITHUB_OUTPUT")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func countVersions(t *testing.T, srv *mototest.Server, region, name string) int {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region),
		awsconfig.WithBaseEndpoint(srv.Addr), awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewFromConfig(cfg).ListLayerVersions(context.Background(), &lambda.ListLayerVersionsInput{LayerName: &name})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.LayerVersions)
}
