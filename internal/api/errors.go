package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Harbor's error codes (src/lib/errors/const.go).
const (
	codeNotFound         = "NOT_FOUND"
	codeConflict         = "CONFLICT"
	codeUnauthorized     = "UNAUTHORIZED"
	codeBadRequest       = "BAD_REQUEST"
	codeForbidden        = "FORBIDDEN"
	codeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	codeTooManyRequests  = "TOO_MANY_REQUEST"
	codePrecondition     = "PRECONDITION"
	codeUnknown          = "UNKNOWN"
	codeTooLarge         = "REQUEST_ENTITY_TOO_LARGE"
	codeUnavailable      = "SERVICE_UNAVAILABLE"
)

// public reports an error whose message is meant for the client even
// though the server cannot serve (an identity source that is down says
// so: identity.UnavailableError).
func public(err error) bool {
	var p interface{ Public() bool }
	return errors.As(err, &p) && p.Public()
}

// status maps an error's class to Harbor's status and code. This is the
// one place where the API's errors get their shape.
func status(err error) (int, string) {
	switch {
	case errdefs.IsNotFound(err):
		return http.StatusNotFound, codeNotFound
	case errdefs.IsInvalidArgument(err), errors.Is(err, errdefs.ErrCorrupt):
		return http.StatusBadRequest, codeBadRequest
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized, codeUnauthorized
	case errors.Is(err, errdefs.ErrDenied):
		return http.StatusForbidden, codeForbidden
	case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrAlreadyExists):
		return http.StatusConflict, codeConflict
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		return http.StatusPreconditionFailed, codePrecondition
	case errors.Is(err, errdefs.ErrThrottled):
		return http.StatusTooManyRequests, codeTooManyRequests
	case errors.Is(err, errdefs.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, codeTooLarge
	case errors.Is(err, errdefs.ErrUnsupported):
		return http.StatusBadRequest, codeBadRequest
	case errors.Is(err, errdefs.ErrUnavailable) && public(err):
		return http.StatusServiceUnavailable, codeUnavailable
	}
	return http.StatusInternalServerError, codeUnknown
}

// errorBody is Harbor's error document.
type errorBody struct {
	Errors []errorItem `json:"errors"`
}

type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers err in Harbor's shape. Server failures are logged
// with the request id and answered without their details.
func (s *Server) writeError(c *call, err error) {
	st, code := status(err)
	msg := err.Error()
	if st >= 500 && !public(err) {
		s.log.Error("API request failed", "request_id", c.w.Header().Get("X-Request-Id"), "method", c.r.Method, "path", c.r.URL.Path, "error", err)
		msg = "internal server error"
	}
	h := c.w.Header()
	if st == http.StatusUnauthorized && c.r.Header.Get("Authorization") != "" {
		h.Set("WWW-Authenticate", `Basic realm="harbor"`)
	}
	var ra interface{ RetryAfterSeconds() int }
	if errors.As(err, &ra) {
		h.Set("Retry-After", strconv.Itoa(ra.RetryAfterSeconds()))
	}
	b, _ := json.Marshal(errorBody{Errors: []errorItem{{Code: code, Message: msg}}})
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Del("Location")
	c.w.WriteHeader(st)
	if c.r.Method != http.MethodHead {
		c.w.Write(b)
	}
}
