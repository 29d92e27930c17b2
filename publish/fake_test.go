package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/layerpack/layerpack/config"
)

// fakeLambda answers every call with err, or as an empty account would.
type fakeLambda struct {
	LambdaAPI // nil: a call not overridden panics, which fails the test
	errFor    map[string]error
	calls     []string
}

func (f *fakeLambda) err(op string) error {
	f.calls = append(f.calls, op)
	return f.errFor[op]
}

func (f *fakeLambda) ListLayerVersions(context.Context, *lambda.ListLayerVersionsInput, ...func(*lambda.Options)) (*lambda.ListLayerVersionsOutput, error) {
	if err := f.err("ListLayerVersions"); err != nil {
		return nil, err
	}
	return &lambda.ListLayerVersionsOutput{}, nil
}

func (f *fakeLambda) PublishLayerVersion(_ context.Context, in *lambda.PublishLayerVersionInput, _ ...func(*lambda.Options)) (*lambda.PublishLayerVersionOutput, error) {
	if err := f.err("PublishLayerVersion"); err != nil {
		return nil, err
	}
	arn := "arn:aws:lambda:us-east-1:123456789012:layer:" + *in.LayerName
	return &lambda.PublishLayerVersionOutput{LayerArn: &arn, LayerVersionArn: aws.String(arn + ":1"), Version: 1}, nil
}

func (f *fakeLambda) AddLayerVersionPermission(context.Context, *lambda.AddLayerVersionPermissionInput, ...func(*lambda.Options)) (*lambda.AddLayerVersionPermissionOutput, error) {
	if err := f.err("AddLayerVersionPermission"); err != nil {
		return nil, err
	}
	return &lambda.AddLayerVersionPermissionOutput{}, nil
}

func accessDenied() error {
	return &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to perform: lambda:PublishLayerVersion"}
}

func TestAccessDeniedNamesActionLayerRegion(t *testing.T) {
	z := makeZip(t, t.TempDir(), "greet", "arm64", "v1")
	z.Permissions = []config.Permission{{Principal: "*"}}
	for _, op := range []string{"ListLayerVersions", "PublishLayerVersion", "AddLayerVersionPermission"} {
		t.Run(op, func(t *testing.T) {
			f := &fakeLambda{errFor: map[string]error{op: accessDenied()}}
			o := Options{Regions: []string{"eu-central-1"}, Open: func(context.Context, string) (Clients, error) { return Clients{Lambda: f}, nil }}
			res, err := Run(context.Background(), []Zip{z}, o)
			want := fmt.Sprintf("greet-arm64 eu-central-1: lambda:%s failed (access denied: the credentials need the IAM permission lambda:%s on layer greet-arm64)", op, op)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant prefix %s", err, want)
			}
			var ce *CallError
			if !errors.As(res[0].Err, &ce) || ce.Action != "lambda:"+op || ce.Region != "eu-central-1" {
				t.Errorf("result error = %#v", res[0].Err)
			}
			if f.calls[len(f.calls)-1] != op {
				t.Errorf("calls after the failure: %v", f.calls)
			}
		})
	}
}

func TestThrottlingMessage(t *testing.T) {
	z := makeZip(t, t.TempDir(), "greet", "arm64", "v1")
	f := &fakeLambda{errFor: map[string]error{"ListLayerVersions": &smithy.GenericAPIError{Code: "TooManyRequestsException", Message: "Rate exceeded"}}}
	o := Options{Regions: []string{"us-east-1"}, Open: func(context.Context, string) (Clients, error) { return Clients{Lambda: f}, nil }}
	_, err := Run(context.Background(), []Zip{z}, o)
	if err == nil || !strings.Contains(err.Error(), "greet-arm64 us-east-1: lambda:ListLayerVersions failed (throttled: the SDK retried with backoff and gave up; rerun later, unchanged versions are skipped): api error TooManyRequestsException: Rate exceeded") {
		t.Errorf("err = %v", err)
	}
}

// Throttling is retried by the SDK's own retryer: a real client against a server
// that throttles twice, then answers.
func TestThrottlingRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if n.Add(1) <= 2 {
			w.Header().Set("X-Amzn-Errortype", "TooManyRequestsException")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"Rate exceeded","Type":"User"}`)
			return
		}
		fmt.Fprint(w, `{"LayerVersions":[]}`)
	}))
	defer srv.Close()
	c := lambda.New(lambda.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.AnonymousCredentials{},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.NewExponentialJitterBackoff(10 * time.Millisecond)
		}),
	})
	out, err := c.ListLayerVersions(context.Background(), &lambda.ListLayerVersionsInput{LayerName: aws.String("x")})
	if err != nil || out == nil || n.Load() != 3 {
		t.Fatalf("after %d requests: %v", n.Load(), err)
	}
}

func TestStatementIDs(t *testing.T) {
	for p, want := range map[config.Permission]string{
		{Principal: "123456789012"}:                      "layerpack-123456789012",
		{Principal: "*"}:                                 "layerpack-all",
		{Principal: "*", OrganizationID: "o-abc123defg"}: "layerpack-org-o-abc123defg",
	} {
		if got := StatementID(p); got != want {
			t.Errorf("%+v: %s, want %s", p, got, want)
		}
	}
	add, remove := permChanges([]config.Permission{{Principal: "*"}, {Principal: "*"}}, []string{"layerpack-111111111111", "other", "layerpack-111111111111"})
	if len(add) != 1 || len(remove) != 1 || remove[0] != "layerpack-111111111111" {
		t.Errorf("add %v remove %v", add, remove)
	}
}

// A zip changed after the build is never sent, and nothing is called.
func TestChangedZipNotPublished(t *testing.T) {
	z := makeZip(t, t.TempDir(), "greet", "arm64", "v1")
	z.CodeSha256 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	f := &fakeLambda{}
	o := Options{Regions: []string{"us-east-1"}, Open: func(context.Context, string) (Clients, error) { return Clients{Lambda: f}, nil }}
	_, err := Run(context.Background(), []Zip{z}, o)
	if err == nil || !strings.Contains(err.Error(), "it changed after the build and is not published") || len(f.calls) != 0 {
		t.Errorf("err = %v, calls %v", err, f.calls)
	}
}
