package publish

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/internal/mototest"
	"github.com/layerpack/layerpack/internal/testneed"
	"github.com/layerpack/layerpack/manifest"
)

func TestPublishVersions(t *testing.T) {
	moto(t)
	c := &counter{}
	o := Options{Regions: []string{"us-east-1"}, Open: opener(t, c)}
	dir := t.TempDir()
	z := makeZip(t, dir, "greet", "arm64", "v1")

	step := func(what string, z Zip, wantStatus string, wantVersion int64) {
		t.Helper()
		res := runOK(t, []Zip{z}, o)
		if r := res[0]; r.Status != wantStatus || r.Version != wantVersion {
			t.Fatalf("%s: status %s version %d, want %s %d (%+v)", what, r.Status, r.Version, wantStatus, wantVersion, r)
		}
		if got := versions(t, "us-east-1", z.Name); int64(len(got)) != wantVersion {
			t.Fatalf("%s: the layer has versions %v, want %d", what, got, wantVersion)
		}
	}
	step("first publish", z, StatusNew, 1)
	c.reset()
	step("rerun", z, StatusUnchanged, 1)
	if n := c.total.Load(); n > 3 || c.writes.Load() != 0 {
		t.Errorf("an unchanged publish made %d calls (%d writes): %v", n, c.writes.Load(), c.calls)
	}
	z = makeZip(t, dir, "greet", "arm64", "v2")
	step("file changed", z, StatusNew, 2)
	z.Description = "hello tools, reworded"
	step("description changed", z, StatusNew, 3)
	z.Runtimes = []string{"provided.al2023", "provided.al2"}
	step("runtimes changed", z, StatusNew, 4)
	step("rerun after all changes", z, StatusUnchanged, 4)
	got, err := lambdaClient(t, "us-east-1").GetLayerVersion(context.Background(), &lambda.GetLayerVersionInput{LayerName: &z.Name, VersionNumber: aws.Int64(4)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Content.CodeSha256) != z.CodeSha256 || aws.ToString(got.Description) != z.Description || len(got.CompatibleRuntimes) != 2 || string(got.CompatibleArchitectures[0]) != "arm64" {
		t.Errorf("version 4 = %+v / %+v", got, got.Content)
	}
}

func TestPublishTwoRegions(t *testing.T) {
	moto(t)
	o := Options{Regions: []string{"us-east-1", "eu-west-1"}, Open: opener(t, &counter{})}
	z := makeZip(t, t.TempDir(), "greet", "x86_64", "v1")
	res := runOK(t, []Zip{z}, o)
	for i, region := range o.Regions {
		r := res[i]
		if r.Region != region || r.Status != StatusNew || !strings.HasPrefix(r.LayerVersionArn, "arn:aws:lambda:"+region+":") || !strings.HasSuffix(r.LayerVersionArn, ":layer:greet-x86_64:1") {
			t.Errorf("region %s: %+v", region, r)
		}
		if got := versions(t, region, z.Name); len(got) != 1 {
			t.Errorf("region %s has versions %v", region, got)
		}
	}
	res = runOK(t, []Zip{z}, o)
	if res[0].Status != StatusUnchanged || res[1].Status != StatusUnchanged {
		t.Errorf("rerun: %+v", res)
	}
}

// policy returns the statement ids of a version's policy.
func policy(t *testing.T, name string, v int64) []string {
	t.Helper()
	out, err := lambdaClient(t, "us-east-1").GetLayerVersionPolicy(context.Background(), &lambda.GetLayerVersionPolicyInput{LayerName: &name, VersionNumber: &v})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	sids, err := policySids(aws.ToString(out.Policy))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(sids)
	return sids
}

func TestPublishPermissions(t *testing.T) {
	moto(t)
	o := Options{Regions: []string{"us-east-1"}, Open: opener(t, &counter{})}
	z := makeZip(t, t.TempDir(), "greet", "arm64", "v1")
	z.Permissions = []config.Permission{{Principal: "123456789012"}, {Principal: "*"}, {Principal: "*", OrganizationID: "o-abc123defg"}}
	want := []string{"layerpack-123456789012", "layerpack-all", "layerpack-org-o-abc123defg"}
	for run := 1; run <= 3; run++ {
		res := runOK(t, []Zip{z}, o)
		if got := policy(t, z.Name, 1); !slices.Equal(got, want) {
			t.Fatalf("run %d: policy statements %v, want each of %v exactly once", run, got, want)
		}
		if run > 1 && len(res[0].PermissionsAdded) != 0 {
			t.Errorf("run %d added %v again", run, res[0].PermissionsAdded)
		}
	}
	// A statement another tool made stays; one layerpack made and the config no
	// longer lists goes.
	_, err := lambdaClient(t, "us-east-1").AddLayerVersionPermission(context.Background(), &lambda.AddLayerVersionPermissionInput{
		LayerName: &z.Name, VersionNumber: aws.Int64(1), StatementId: aws.String("terraform-share"),
		Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("210987654321"),
	})
	if err != nil {
		t.Fatal(err)
	}
	z.Permissions = z.Permissions[:1]
	res := runOK(t, []Zip{z}, o)
	if got, want := policy(t, z.Name, 1), []string{"layerpack-123456789012", "terraform-share"}; !slices.Equal(got, want) {
		t.Errorf("after removing two permissions: %v, want %v", got, want)
	}
	if got := res[0].PermissionsRemoved; !slices.Equal(got, []string{"layerpack-all", "layerpack-org-o-abc123defg"}) {
		t.Errorf("removed = %v", got)
	}
	// A new version gets the permissions too.
	z2 := makeZip(t, t.TempDir(), "greet", "arm64", "v2")
	z2.Permissions = z.Permissions
	if res := runOK(t, []Zip{z2}, o); res[0].Version != 2 {
		t.Fatalf("%+v", res[0])
	}
	if got := policy(t, z.Name, 2); !slices.Equal(got, []string{"layerpack-123456789012"}) {
		t.Errorf("version 2 policy: %v", got)
	}
}

func TestPublishThroughS3(t *testing.T) {
	moto(t)
	c := &counter{}
	o := Options{Regions: []string{"us-east-1"}, Open: opener(t, c), S3Bucket: "artifacts-{region}", S3Prefix: "layers/", DirectLimit: 10}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("artifacts-us-east-1")}); err != nil {
		t.Fatal(err)
	}
	z := makeZip(t, t.TempDir(), "big", "x86_64", "v1")
	res := runOK(t, []Zip{z}, o)
	if res[0].Status != StatusNew || c.get("PUT s3") != 1 {
		t.Fatalf("first run: %+v, calls %v", res[0], c.calls)
	}
	objs, err := s3c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("artifacts-us-east-1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Contents) != 1 || !strings.HasPrefix(aws.ToString(objs.Contents[0].Key), "layers/big-x86_64/") || !strings.HasSuffix(aws.ToString(objs.Contents[0].Key), ".zip") {
		t.Errorf("objects: %+v", objs.Contents)
	}
	// A new version of the same bytes (the description changed) reuses the object.
	c.reset()
	z.Description = "other"
	res = runOK(t, []Zip{z}, o)
	if res[0].Status != StatusNew || res[0].Version != 2 || c.get("PUT s3") != 0 || c.get("HEAD s3") != 1 {
		t.Errorf("second run: %+v, calls %v", res[0], c.calls)
	}
	// Over the limit without a bucket: an error before any call.
	c.reset()
	o.S3Bucket = ""
	_, err = Run(context.Background(), []Zip{z}, o)
	if err == nil || !strings.Contains(err.Error(), "over Lambda's direct-upload limit of 10: set [publish] s3_bucket") || c.total.Load() != 0 {
		t.Errorf("err = %v after %d calls", err, c.total.Load())
	}
}

func TestPublishKeep(t *testing.T) {
	moto(t)
	o := Options{Regions: []string{"us-east-1"}, Open: opener(t, &counter{}), Keep: 2}
	dir := t.TempDir()
	for i := 1; i <= 4; i++ {
		z := makeZip(t, dir, "greet", "arm64", fmt.Sprint("v", i))
		res := runOK(t, []Zip{z}, o)
		want := []int64{int64(i), int64(i - 1)}
		if i == 1 {
			want = want[:1]
		}
		if got := versions(t, "us-east-1", z.Name); !slices.Equal(got, want) {
			t.Fatalf("after publish %d: versions %v, want %v", i, got, want)
		}
		if i >= 3 && !slices.Equal(res[0].Deleted, []int64{int64(i - 2)}) {
			t.Errorf("publish %d deleted %v", i, res[0].Deleted)
		}
	}
}

// state is everything the emulator holds that publishing can change.
func state(t *testing.T, names ...string) string {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		for _, v := range versions(t, "us-east-1", n) {
			fmt.Fprintf(&b, "%s:%d %v\n", n, v, policy(t, n, v))
		}
	}
	return b.String()
}

func TestPublishDryRun(t *testing.T) {
	moto(t)
	c := &counter{}
	o := Options{Regions: []string{"us-east-1"}, Open: opener(t, c), Keep: 1}
	dir := t.TempDir()
	a := makeZip(t, dir, "a", "arm64", "v1")
	a.Permissions = []config.Permission{{Principal: "123456789012"}}
	b := makeZip(t, dir, "b", "arm64", "v1")
	runOK(t, []Zip{a, b}, o)
	before := state(t, a.Name, b.Name, "c-arm64")
	// Every kind of change: new code, a new permission, a new layer.
	a = makeZip(t, dir, "a", "arm64", "v2")
	b.Permissions = []config.Permission{{Principal: "*"}}
	cz := makeZip(t, dir, "c", "arm64", "v1")
	c.reset()
	o.DryRun = true
	var out strings.Builder
	o.Out = &out
	res, err := Run(context.Background(), []Zip{a, b, cz}, o)
	if err != nil {
		t.Fatal(err)
	}
	if c.writes.Load() != 0 {
		t.Errorf("dry run made %d write calls: %v", c.writes.Load(), c.calls)
	}
	if after := state(t, a.Name, b.Name, "c-arm64"); after != before {
		t.Errorf("state changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	want := "a-arm64 us-east-1 would publish (code changed)\n" +
		"a-arm64 us-east-1 would delete version 1 (keep = 1)\n" +
		"b-arm64 us-east-1 unchanged arn:aws:lambda:us-east-1:123456789012:layer:b-arm64:1\n" +
		"b-arm64 us-east-1 permission layerpack-all would be added to version 1\n" +
		"c-arm64 us-east-1 would publish (new layer)\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if res[0].Status != StatusDryRun || res[2].Status != StatusDryRun {
		t.Errorf("%+v", res)
	}
}

// The emulator of the second region dies during the run: the first region's work
// is kept and recorded, the error names the call, layer and region, and a rerun
// finishes the rest.
func TestPublishEmulatorStopped(t *testing.T) {
	main := moto(t)
	bin := testneed.Env(t, mototest.EnvVar)
	second, err := mototest.Start(bin, 0)
	if err != nil {
		t.Fatal(err)
	}
	port := second.Port
	t.Cleanup(func() { second.Stop() })
	endpoints := map[string]string{"us-east-1": main.Addr, "eu-west-1": second.Addr}
	var killed atomic.Bool
	c := &counter{before: func(r *http.Request) {
		// Stop the second emulator just before its first call of the run.
		if r.URL.Host == second.Host() && killed.CompareAndSwap(false, true) {
			second.Stop()
		}
	}}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithHTTPClient(&http.Client{Transport: c}))
	if err != nil {
		t.Fatal(err)
	}
	open := func(_ context.Context, region string) (Clients, error) {
		cc := cfg.Copy()
		cc.Region = region
		return Clients{Lambda: lambda.NewFromConfig(cc, func(o *lambda.Options) { o.BaseEndpoint = aws.String(endpoints[region]) })}, nil
	}
	o := Options{Regions: []string{"us-east-1", "eu-west-1"}, Open: open, Parallel: 1}
	dir := t.TempDir()
	z := makeZip(t, dir, "greet", "arm64", "v1")
	mpath := writeManifest(t, dir, z)
	// Version 1 exists in us-east-1 only.
	killed.Store(true)
	o.Regions = []string{"us-east-1"}
	if _, err := Run(context.Background(), []Zip{z}, o); err != nil {
		t.Fatal(err)
	}
	o.Regions = []string{"us-east-1", "eu-west-1"}
	z2 := makeZip(t, dir, "greet", "arm64", "v2")
	writeManifest(t, dir, z2)
	killed.Store(false)
	res, err := Run(context.Background(), []Zip{z2}, o)
	if err == nil {
		t.Fatal("no error with the second region's emulator stopped")
	}
	msg := err.Error()
	if !strings.Contains(msg, "greet-arm64 eu-west-1: lambda:ListLayerVersions failed") || !strings.Contains(msg, "connect: connection refused") {
		t.Errorf("error = %v", err)
	}
	if res[0].Err != nil || res[0].Status != StatusNew || res[0].Version != 2 || res[1].Err == nil {
		t.Fatalf("results: %+v", res)
	}
	if err := Record(mpath, res); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Read(mpath)
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Layers[0].Published; len(p) != 1 || p[0].Region != "us-east-1" || p[0].Version != 2 || p[0].Status != "new" {
		t.Errorf("manifest records %+v", p)
	}
	// The emulator is back (on the same port); a rerun finishes the rest.
	second, err = mototest.Start(bin, port)
	if err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	res = runOK(t, []Zip{z2}, o)
	if res[0].Status != StatusUnchanged || res[0].Version != 2 || res[1].Status != StatusNew || res[1].Version != 1 {
		t.Errorf("rerun: %+v", res)
	}
	if err := Record(mpath, res); err != nil {
		t.Fatal(err)
	}
	if m, _ = manifest.Read(mpath); len(m.Layers[0].Published) != 2 {
		t.Errorf("manifest after the rerun: %+v", m.Layers[0].Published)
	}
}

func writeManifest(t *testing.T, dir string, z Zip) string {
	t.Helper()
	m := &manifest.Manifest{Layers: []manifest.Layer{{Name: z.Layer, Architecture: z.Arch, File: z.Name + ".zip", CodeSha256: z.CodeSha256}}}
	p := dir + "/" + manifest.FileName
	if err := m.Write(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The figure the issue asks for: an unchanged publish of 10 layers x 2
// architectures x 2 regions, its API calls and its wall time.
func TestUnchangedPublishCalls(t *testing.T) {
	moto(t)
	c := &counter{}
	o := Options{Regions: []string{"us-east-1", "eu-west-1"}, Open: opener(t, c)}
	dir := t.TempDir()
	var zips []Zip
	for i := 0; i < 10; i++ {
		for _, a := range []string{"x86_64", "arm64"} {
			z := makeZip(t, dir, fmt.Sprint("layer", i), a, fmt.Sprint(i, a))
			z.Permissions = []config.Permission{{Principal: "123456789012"}}
			zips = append(zips, z)
		}
	}
	runOK(t, zips, o)
	c.reset()
	start := time.Now()
	res := runOK(t, zips, o)
	took := time.Since(start)
	for _, r := range res {
		if r.Status != StatusUnchanged {
			t.Fatalf("%+v", r)
		}
	}
	pairs := int64(len(zips) * len(o.Regions))
	t.Logf("unchanged publish of %d layer-arch-region pairs: %d API calls (%.2f per pair), %d writes, %v wall time; calls %v",
		pairs, c.total.Load(), float64(c.total.Load())/float64(pairs), c.writes.Load(), took, c.calls)
	if c.total.Load() > 3*pairs || c.writes.Load() != 0 {
		t.Errorf("%d calls for %d pairs (target <= 3 each), %d writes", c.total.Load(), pairs, c.writes.Load())
	}
}

// The service-specific endpoint variables win over AWS_ENDPOINT_URL: the SDK reads
// them itself, for Lambda and for S3.
func TestServiceEndpointVariables(t *testing.T) {
	srv := moto(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing listens there
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", srv.Addr)
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Addr)
	c := &counter{}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("artifacts-us-east-1")}); err != nil {
		t.Fatal(err)
	}
	o := Options{Regions: []string{"us-east-1"}, Open: opener(t, c), S3Bucket: "artifacts-{region}", DirectLimit: 10}
	res := runOK(t, []Zip{makeZip(t, t.TempDir(), "big", "arm64", "v1")}, o)
	if res[0].Status != StatusNew || c.get("PUT s3") != 1 {
		t.Errorf("%+v, calls %v", res[0], c.calls)
	}
}
