package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
)

// The distribution spec's error codes, and two of Docker's registry for
// server-side failures (which the spec leaves open).
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeUnavailable         = "UNAVAILABLE"            // 503: storage or database unreachable
	codeUnknown             = "UNKNOWN"                // 500: a bug or an unclassified failure
	codePolicyViolation     = "PROJECTPOLICYVIOLATION" // 412: a project policy refuses a pull, as Harbor answers
)

// apiError is an error with the OCI code and HTTP status it is answered
// with. Handlers attach codes where the class alone is ambiguous (a missing
// blob during a manifest push is MANIFEST_BLOB_UNKNOWN, not BLOB_UNKNOWN).
type apiError struct {
	status int
	code   string
	err    error
	detail any
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

// withCode attaches an OCI code and status to err.
func withCode(status int, code string, err error) error {
	if err == nil {
		return nil
	}
	return &apiError{status: status, code: code, err: err}
}

// clientGone marks a response that failed after its status was sent (the
// client went away or stalled); it is logged, never answered.
func clientGone(err error) error {
	return &apiError{status: statusClientGone, code: "CLIENT_GONE", err: err}
}

// statusClientGone is the status logged for responses cut short by the
// client (nginx's convention).
const statusClientGone = 499

// codes names the codes a handler answers for the ambiguous classes.
type codes struct {
	notFound string // for errdefs.ErrNotFound
	invalid  string // for errdefs.ErrInvalidArgument
}

// toAPI maps any error to the code and status it is answered with.
func toAPI(err error, c codes) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var miss *meta.MissingError
	switch {
	case errors.As(err, &miss):
		return &apiError{status: http.StatusBadRequest, code: codeManifestBlobUnknown, err: err, detail: map[string]string{"digest": miss.Digest}}
	case errdefs.IsNotFound(err):
		code := c.notFound
		if code == "" {
			code = codeNameUnknown
		}
		return &apiError{status: http.StatusNotFound, code: code, err: err}
	case errdefs.IsCorrupt(err):
		return &apiError{status: http.StatusBadRequest, code: codeDigestInvalid, err: err}
	case errdefs.IsInvalidArgument(err):
		code := c.invalid
		if code == "" {
			code = codeUnsupported
		}
		return &apiError{status: http.StatusBadRequest, code: code, err: err}
	case errors.Is(err, errdefs.ErrTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeSizeInvalid, err: err}
	case errdefs.IsUnauthorized(err):
		return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, err: err}
	case errors.Is(err, errdefs.ErrDenied):
		return &apiError{status: http.StatusForbidden, code: codeDenied, err: err}
	case errors.Is(err, errdefs.ErrConflict):
		return &apiError{status: http.StatusConflict, code: codeDenied, err: err}
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		return &apiError{status: http.StatusPreconditionFailed, code: codePolicyViolation, err: err}
	case errors.Is(err, errdefs.ErrUnsupported):
		return &apiError{status: http.StatusBadRequest, code: codeUnsupported, err: err}
	case errors.Is(err, errdefs.ErrThrottled):
		return &apiError{status: http.StatusTooManyRequests, code: codeTooManyRequests, err: err}
	case errors.Is(err, errdefs.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, err: err}
	}
	return &apiError{status: http.StatusInternalServerError, code: codeUnknown, err: err}
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError answers a request with e. Internal errors are answered with a
// generic message; their text goes to the log only.
func writeError(w http.ResponseWriter, req *http.Request, e *apiError) {
	msg := e.err.Error()
	if e.status >= 500 && e.code == codeUnknown {
		msg = "internal error; see the registry's log"
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.code, Message: msg, Detail: e.detail}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Del("Docker-Content-Digest")
	w.WriteHeader(e.status)
	if req.Method != http.MethodHead {
		w.Write(body)
	}
}
