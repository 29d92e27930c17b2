// Package publish brings Lambda layer versions up to date with built zips: per zip
// and region it reads the newest version of the layer name and publishes a new one
// only when the code (CodeSha256) or the metadata that a version fixes (runtimes,
// architectures, description, licence) differ. Permissions are made to match the
// config on the version in use, and old versions can be deleted (keep = N).
//
// All calls go through the small LambdaAPI / S3API interfaces, so tests can use a
// fake or a real client pointed at an emulator.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/layerpack/layerpack/config"
	lam "github.com/layerpack/layerpack/lambda"
)

// Zip is one built zip to publish, with the metadata its version gets.
type Zip struct {
	Layer       string // layerpack layer name
	Arch        string // x86_64 or arm64
	Path        string // the zip file
	CodeSha256  string // from the build (the manifest): the file must still have it
	Size        int64
	Name        string // Lambda layer name
	Runtimes    []string
	Description string
	LicenseInfo string
	Permissions []config.Permission
}

// Options for Run.
type Options struct {
	Regions  []string
	S3Bucket string // {region} is replaced; needed for zips above DirectLimit
	S3Prefix string
	Keep     int  // 0 keeps every version
	DryRun   bool // no write call; say what would be done
	// DirectLimit is the largest zip sent inline; 0 means Lambda's 50 MB.
	DirectLimit int64
	Parallel    int // (zip, region) pairs worked on at once; <= 0 means 4
	Open        Opener
	Out         io.Writer // one line per decision and change; nil discards
}

// Status of a result.
const (
	StatusNew       = "new"
	StatusUnchanged = "unchanged"
	StatusDryRun    = "would-publish"
)

// Result is what happened to one zip in one region.
type Result struct {
	Layer, Arch, Region, Name string
	Status                    string // StatusNew, StatusUnchanged, StatusDryRun; "" when Err is set
	Reason                    string // why a new version was (or would be) published
	LayerArn, LayerVersionArn string
	Version                   int64
	PermissionsAdded          []string
	PermissionsRemoved        []string
	Deleted                   []int64 // versions removed by keep = N
	Err                       error
}

// Run publishes every zip to every region. It returns one result per zip and
// region (in that order) and an error joining the failures; the results of the
// pairs that succeeded are valid either way.
func Run(ctx context.Context, zips []Zip, o Options) ([]Result, error) {
	if o.DirectLimit <= 0 {
		o.DirectLimit = lam.MaxDirectUpload
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if len(o.Regions) == 0 {
		return nil, errors.New("no region to publish to: set [publish] regions, --region or AWS_REGION")
	}
	// Everything that can be checked without a call fails before the first one.
	var errs []error
	for _, z := range zips {
		if z.Size > o.DirectLimit && o.S3Bucket == "" {
			errs = append(errs, fmt.Errorf("layer %s (%s): %s is %d bytes, over Lambda's direct-upload limit of %d: set [publish] s3_bucket", z.Layer, z.Arch, z.Path, z.Size, o.DirectLimit))
		}
		if sum, err := lam.FileCodeSha256(z.Path); err != nil {
			errs = append(errs, fmt.Errorf("layer %s (%s): %w", z.Layer, z.Arch, err))
		} else if sum != z.CodeSha256 {
			errs = append(errs, fmt.Errorf("layer %s (%s): %s has CodeSha256 %s, but the build recorded %s: it changed after the build and is not published", z.Layer, z.Arch, z.Path, sum, z.CodeSha256))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	clients := map[string]Clients{}
	for _, r := range o.Regions {
		c, err := o.Open(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("region %s: %w", r, err)
		}
		clients[r] = c
	}

	results := make([]Result, len(zips)*len(o.Regions))
	done := make([]bool, len(results))
	p := &printer{w: o.Out, results: results, done: done}
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, z := range zips {
		for j, region := range o.Regions {
			k := i*len(o.Regions) + j
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				u := &unit{z: z, region: region, c: clients[region], o: &o}
				u.res = Result{Layer: z.Layer, Arch: z.Arch, Region: region, Name: z.Name}
				if err := ctx.Err(); err != nil {
					u.res.Err = err
				} else if err := u.run(ctx); err != nil {
					u.res.Err = err
				}
				p.finish(k, u.res, u.lines)
			}()
		}
	}
	wg.Wait()
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return results, errors.Join(errs...)
}

// printer writes each pair's lines in the order of the pairs, as soon as every
// earlier pair is done, so output is the same on every run.
type printer struct {
	mu      sync.Mutex
	w       io.Writer
	results []Result
	done    []bool
	lines   [][]string
	next    int
}

func (p *printer) finish(k int, r Result, lines []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lines == nil {
		p.lines = make([][]string, len(p.results))
	}
	p.results[k], p.done[k], p.lines[k] = r, true, lines
	for p.next < len(p.done) && p.done[p.next] {
		for _, l := range p.lines[p.next] {
			fmt.Fprintln(p.w, l)
		}
		p.lines[p.next] = nil
		p.next++
	}
}

// unit is one zip in one region.
type unit struct {
	z      Zip
	region string
	c      Clients
	o      *Options
	res    Result
	lines  []string
}

func (u *unit) say(format string, args ...any) {
	u.lines = append(u.lines, u.z.Name+" "+u.region+" "+fmt.Sprintf(format, args...))
}

func (u *unit) fail(action string, err error) error {
	err = callError(action, u.z.Name, u.region, err)
	u.say("error: %v", err)
	return err
}

func (u *unit) run(ctx context.Context) error {
	z := u.z
	// The newest version: Lambda lists newest first. The list items carry the
	// metadata but not CodeSha256. With keep = N, N+1 items say whether old
	// versions are left to delete, in the same call.
	limit := int32(1)
	if u.o.Keep > 0 {
		limit = int32(min(u.o.Keep+1, 50))
	}
	list, err := u.c.Lambda.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: &z.Name, MaxItems: &limit})
	if err != nil {
		return u.fail("lambda:ListLayerVersions", err)
	}
	var newest *ltypes.LayerVersionsListItem
	for i := range list.LayerVersions {
		if v := &list.LayerVersions[i]; newest == nil || v.Version > newest.Version {
			newest = v
		}
	}
	reason := "new layer"
	if newest != nil {
		reason = u.metaDiff(newest)
		if reason == "" {
			got, err := u.c.Lambda.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: &z.Name, VersionNumber: &newest.Version})
			if err != nil {
				return u.fail("lambda:GetLayerVersion", err)
			}
			if got.Content == nil || aws.ToString(got.Content.CodeSha256) != z.CodeSha256 {
				reason = "code changed"
			}
		}
	}
	published := false
	if reason == "" {
		u.res.Status = StatusUnchanged
		u.setVersion(aws.ToString(newest.LayerVersionArn), newest.Version)
		u.say("unchanged %s", u.res.LayerVersionArn)
	} else if u.o.DryRun {
		u.res.Status, u.res.Reason = StatusDryRun, reason
		u.say("would publish (%s)", reason)
	} else {
		out, err := u.publish(ctx)
		if err != nil {
			return err
		}
		published = true
		u.res.Status, u.res.Reason = StatusNew, reason
		u.res.LayerArn = aws.ToString(out.LayerArn)
		u.res.LayerVersionArn, u.res.Version = aws.ToString(out.LayerVersionArn), out.Version
		u.say("published %s (%s)", u.res.LayerVersionArn, reason)
	}
	if u.res.Version > 0 {
		if err := u.permissions(ctx, published); err != nil {
			return err
		}
	}
	if u.o.Keep > 0 && (published || u.res.Status == StatusDryRun || len(list.LayerVersions) > u.o.Keep || list.NextMarker != nil) {
		return u.retain(ctx)
	}
	return nil
}

func (u *unit) setVersion(arn string, v int64) {
	u.res.LayerVersionArn, u.res.Version = arn, v
	if i := strings.LastIndex(arn, ":"); i > 0 {
		u.res.LayerArn = arn[:i]
	}
}

// metaDiff says which metadata of the newest version differs from what would be
// published ("" when all equal). A version's metadata is immutable, so any
// difference needs a new version (Terraform forces one too).
func (u *unit) metaDiff(v *ltypes.LayerVersionsListItem) string {
	var rts []string
	for _, r := range v.CompatibleRuntimes {
		rts = append(rts, string(r))
	}
	var arches []string
	for _, a := range v.CompatibleArchitectures {
		arches = append(arches, string(a))
	}
	switch {
	case !sameSet(rts, u.z.Runtimes):
		return "compatible runtimes changed"
	case !sameSet(arches, []string{u.z.Arch}):
		return "compatible architectures changed"
	case aws.ToString(v.Description) != u.z.Description:
		return "description changed"
	case aws.ToString(v.LicenseInfo) != u.z.LicenseInfo:
		return "licence changed"
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func (u *unit) publish(ctx context.Context) (*lambda.PublishLayerVersionOutput, error) {
	z := u.z
	in := &lambda.PublishLayerVersionInput{
		LayerName:               &z.Name,
		CompatibleArchitectures: []ltypes.Architecture{ltypes.Architecture(z.Arch)},
		Description:             &z.Description,
		LicenseInfo:             &z.LicenseInfo,
	}
	if z.LicenseInfo == "" {
		in.LicenseInfo = nil // Lambda refuses an empty licence
	}
	for _, r := range z.Runtimes {
		in.CompatibleRuntimes = append(in.CompatibleRuntimes, ltypes.Runtime(r))
	}
	if z.Size > u.o.DirectLimit {
		bucket, key, err := u.upload(ctx)
		if err != nil {
			return nil, err
		}
		in.Content = &ltypes.LayerVersionContentInput{S3Bucket: &bucket, S3Key: &key}
	} else {
		b, err := readChecked(z)
		if err != nil {
			return nil, err
		}
		in.Content = &ltypes.LayerVersionContentInput{ZipFile: b}
	}
	out, err := u.c.Lambda.PublishLayerVersion(ctx, in)
	if err != nil {
		return nil, u.fail("lambda:PublishLayerVersion", err)
	}
	if out.Content != nil && aws.ToString(out.Content.CodeSha256) != "" && *out.Content.CodeSha256 != z.CodeSha256 {
		got := *out.Content.CodeSha256
		return nil, fmt.Errorf("%s %s: version %d has CodeSha256 %s, not the zip's %s", z.Name, u.region, out.Version, got, z.CodeSha256)
	}
	return out, nil
}

// readChecked reads the zip and checks that the bytes sent are the ones built.
func readChecked(z Zip) ([]byte, error) {
	b, err := os.ReadFile(z.Path)
	if err != nil {
		return nil, fmt.Errorf("layer %s (%s): %w", z.Layer, z.Arch, err)
	}
	sum := sha256.Sum256(b)
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != z.CodeSha256 {
		return nil, fmt.Errorf("layer %s (%s): %s has CodeSha256 %s, but the build recorded %s: it changed after the build and is not published", z.Layer, z.Arch, z.Path, got, z.CodeSha256)
	}
	return b, nil
}

// shaMetaKey is object metadata that repeats the checksum, for S3 implementations
// that do not return x-amz-checksum-sha256 on HEAD (moto among them).
const shaMetaKey = "codesha256"

// upload puts the zip at a content-addressed key, unless an object with its
// checksum is already there. S3's SHA-256 checksum is the same base64 value as
// CodeSha256, and S3 refuses the upload when the bytes do not match it.
func (u *unit) upload(ctx context.Context) (bucket, key string, err error) {
	z := u.z
	bucket = strings.ReplaceAll(u.o.S3Bucket, "{region}", u.region)
	raw, err := base64.StdEncoding.DecodeString(z.CodeSha256)
	if err != nil {
		return "", "", fmt.Errorf("layer %s (%s): bad CodeSha256 %q", z.Layer, z.Arch, z.CodeSha256)
	}
	key = u.o.S3Prefix + z.Name + "/" + hex.EncodeToString(raw) + ".zip"
	head, err := u.c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, ChecksumMode: s3types.ChecksumModeEnabled})
	switch {
	case err == nil && (aws.ToString(head.ChecksumSHA256) == z.CodeSha256 || head.Metadata[shaMetaKey] == z.CodeSha256):
		u.say("s3://%s/%s exists, upload skipped", bucket, key)
		return bucket, key, nil
	case err != nil && !isNotFound(err):
		return "", "", u.fail("s3:GetObject (HeadObject)", err)
	}
	// Streamed from the file: S3 checks it against ChecksumSHA256 and refuses other
	// bytes, so a zip changed since the build cannot become an object.
	f, err := os.Open(z.Path)
	if err != nil {
		return "", "", fmt.Errorf("layer %s (%s): %w", z.Layer, z.Arch, err)
	}
	defer f.Close()
	_, err = u.c.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: f, ContentLength: aws.Int64(z.Size),
		ChecksumSHA256: &z.CodeSha256, ContentType: aws.String("application/zip"),
		Metadata: map[string]string{shaMetaKey: z.CodeSha256},
	})
	if err != nil {
		return "", "", u.fail("s3:PutObject", err)
	}
	u.say("uploaded s3://%s/%s", bucket, key)
	return bucket, key, nil
}

// permissions makes the version's policy hold the configured statements. A version
// published in this run has no policy yet, so it is not read.
func (u *unit) permissions(ctx context.Context, fresh bool) error {
	z, v := u.z, u.res.Version
	var have []string
	if !fresh {
		pol, err := u.c.Lambda.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: &z.Name, VersionNumber: &v})
		switch {
		case err == nil:
			if have, err = policySids(aws.ToString(pol.Policy)); err != nil {
				return fmt.Errorf("%s %s: reading the policy of version %d: %w", z.Name, u.region, v, err)
			}
		case isNotFound(err): // no policy yet
		default:
			return u.fail("lambda:GetLayerVersionPolicy", err)
		}
	}
	add, remove := permChanges(z.Permissions, have)
	verb := ""
	if u.o.DryRun {
		verb = "would be "
	}
	for _, p := range add {
		sid := StatementID(p)
		if !u.o.DryRun {
			in := &lambda.AddLayerVersionPermissionInput{
				LayerName: &z.Name, VersionNumber: &v, StatementId: &sid,
				Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String(p.Principal),
			}
			if p.OrganizationID != "" {
				in.OrganizationId = aws.String(p.OrganizationID)
			}
			if _, err := u.c.Lambda.AddLayerVersionPermission(ctx, in); err != nil {
				return u.fail("lambda:AddLayerVersionPermission", err)
			}
		}
		u.res.PermissionsAdded = append(u.res.PermissionsAdded, sid)
		u.say("permission %s %sadded to version %d", sid, verb, v)
	}
	for _, sid := range remove {
		if !u.o.DryRun {
			if _, err := u.c.Lambda.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{
				LayerName: &z.Name, VersionNumber: &v, StatementId: aws.String(sid),
			}); err != nil {
				return u.fail("lambda:RemoveLayerVersionPermission", err)
			}
		}
		u.res.PermissionsRemoved = append(u.res.PermissionsRemoved, sid)
		u.say("permission %s %sremoved from version %d (no longer configured)", sid, verb, v)
	}
	return nil
}

// retain deletes the versions older than the newest Keep, never the one in use.
func (u *unit) retain(ctx context.Context) error {
	z := u.z
	var all []int64
	var marker *string
	for {
		out, err := u.c.Lambda.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: &z.Name, Marker: marker, MaxItems: aws.Int32(50)})
		if err != nil {
			return u.fail("lambda:ListLayerVersions", err)
		}
		for _, v := range out.LayerVersions {
			all = append(all, v.Version)
		}
		if out.NextMarker == nil || *out.NextMarker == "" || len(out.LayerVersions) == 0 {
			break
		}
		marker = out.NextMarker
	}
	sort.Slice(all, func(i, j int) bool { return all[i] > all[j] })
	all = slices.Compact(all)
	// The version in use counts as one of the kept ones; in a dry run the one that
	// would be published does too.
	keep := u.o.Keep
	if u.res.Status == StatusDryRun {
		keep--
	}
	if keep < 0 {
		keep = 0
	}
	kept := 0
	for _, v := range all {
		if v == u.res.Version || kept < keep {
			kept++ // the version in use is newest, so it is one of these
			continue
		}
		if !u.o.DryRun {
			if _, err := u.c.Lambda.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: &z.Name, VersionNumber: aws.Int64(v)}); err != nil {
				return u.fail("lambda:DeleteLayerVersion", err)
			}
			u.say("deleted version %d (keep = %d)", v, u.o.Keep)
		} else {
			u.say("would delete version %d (keep = %d)", v, u.o.Keep)
		}
		u.res.Deleted = append(u.res.Deleted, v)
	}
	return nil
}
