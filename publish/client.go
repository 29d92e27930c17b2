package publish

import (
	"context"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// LambdaAPI is the part of the Lambda client that publishing uses; *lambda.Client
// implements it, and unit tests give a fake.
type LambdaAPI interface {
	ListLayerVersions(context.Context, *lambda.ListLayerVersionsInput, ...func(*lambda.Options)) (*lambda.ListLayerVersionsOutput, error)
	GetLayerVersion(context.Context, *lambda.GetLayerVersionInput, ...func(*lambda.Options)) (*lambda.GetLayerVersionOutput, error)
	PublishLayerVersion(context.Context, *lambda.PublishLayerVersionInput, ...func(*lambda.Options)) (*lambda.PublishLayerVersionOutput, error)
	DeleteLayerVersion(context.Context, *lambda.DeleteLayerVersionInput, ...func(*lambda.Options)) (*lambda.DeleteLayerVersionOutput, error)
	GetLayerVersionPolicy(context.Context, *lambda.GetLayerVersionPolicyInput, ...func(*lambda.Options)) (*lambda.GetLayerVersionPolicyOutput, error)
	AddLayerVersionPermission(context.Context, *lambda.AddLayerVersionPermissionInput, ...func(*lambda.Options)) (*lambda.AddLayerVersionPermissionOutput, error)
	RemoveLayerVersionPermission(context.Context, *lambda.RemoveLayerVersionPermissionInput, ...func(*lambda.Options)) (*lambda.RemoveLayerVersionPermissionOutput, error)
}

// S3API is the part of the S3 client used for zips above the direct-upload limit.
type S3API interface {
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Clients are the API clients of one region.
type Clients struct {
	Lambda LambdaAPI
	S3     S3API
}

// Opener returns the clients of a region.
type Opener func(ctx context.Context, region string) (Clients, error)

// AWS loads the SDK's default configuration (environment, shared config and
// credentials files with profile, SSO, web identity, container and instance
// metadata; AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> are read by the SDK
// itself) and returns an Opener and the configured region ("" when none).
// extra lets tests add options (an HTTP client that counts calls).
func AWS(ctx context.Context, profile string, extra ...func(*awsconfig.LoadOptions) error) (Opener, string, error) {
	opts := append([]func(*awsconfig.LoadOptions) error{}, extra...)
	if profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The SDK's message names the profile or file; it holds no secret.
		return nil, "", fmt.Errorf("loading the AWS configuration: %w", err)
	}
	open := func(_ context.Context, region string) (Clients, error) {
		c := cfg.Copy()
		c.Region = region
		return Clients{
			Lambda: lambda.NewFromConfig(c),
			S3: s3.NewFromConfig(c, func(o *s3.Options) {
				// An emulator on a local address cannot serve bucket host names.
				o.UsePathStyle = o.BaseEndpoint != nil
			}),
		}, nil
	}
	return open, cfg.Region, nil
}
