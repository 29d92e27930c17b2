package publish

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// callError names the API action, the Lambda layer and the region of a failed call,
// and says what to do for the failures people hit most.
func callError(action, name, region string, err error) error {
	hint := ""
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var maxAttempts *retry.MaxAttemptsError
	switch {
	case code == "AccessDeniedException" || code == "AccessDenied" || status == 403:
		hint = fmt.Sprintf(" (access denied: the credentials need the IAM permission %s on %s)", action, resourceFor(action, name))
	case isThrottle(code) || status == 429:
		hint = " (throttled: the SDK retried with backoff and gave up; rerun later, unchanged versions are skipped)"
	case errors.As(err, &maxAttempts):
		hint = " (the SDK gave up after retrying)"
	}
	return &CallError{Action: action, Name: name, Region: region, Hint: hint, Err: err}
}

// CallError is a failed API call.
type CallError struct {
	Action, Name, Region, Hint string
	Err                        error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("%s %s: %s failed%s: %v", e.Name, e.Region, e.Action, e.Hint, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

func isThrottle(code string) bool {
	switch code {
	case "ThrottlingException", "Throttling", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded":
		return true
	}
	return false
}

func resourceFor(action, name string) string {
	if strings.HasPrefix(action, "s3:") {
		return "the bucket"
	}
	return "layer " + name
}

func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ResourceNotFoundException", "NotFound", "NoSuchKey":
			return true
		}
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 404
}
