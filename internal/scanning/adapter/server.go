package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

// Backend does the work behind the API. Its errors are classed
// (package errdefs): ErrInvalidArgument is answered 422 (a field the
// backend cannot use), ErrUnauthorized 401, ErrDenied 403, ErrNotFound
// 404, ErrUnsupported 501 (no capability for it).
type Backend interface {
	// Authenticate checks a request's credentials and returns the context
	// the other calls get (carrying the caller), or an error of class
	// ErrUnauthorized.
	Authenticate(r *http.Request) (context.Context, error)
	Metadata(ctx context.Context) (Metadata, error)
	// Accept queues a scan and returns its id.
	Accept(ctx context.Context, req ScanRequest) (string, error)
	// Report returns the report of scan id in the MIME type mime (for an
	// SBOM report, in the SBOM format sbomType), or a *NotReady while the
	// scan runs.
	Report(ctx context.Context, id, mime, sbomType string) ([]byte, error)
}

// NotReady is the error for a report that is still being made.
type NotReady struct {
	// RetryAfter is when to ask again.
	RetryAfter time.Duration
}

func (e *NotReady) Error() string { return "the scan report is not ready yet" }

// Failed is the error for a scan that failed: answered 500 with its
// reason, which the specification's clients show.
type Failed struct{ Reason string }

func (e *Failed) Error() string { return "the scan failed: " + e.Reason }

// MaxRequest bounds a scan request's body.
const MaxRequest = 64 << 10

// Handler serves the API over b.
func Handler(b Backend, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{b: b, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"/metadata", s.metadata)
	mux.HandleFunc("POST "+Prefix+"/scan", s.scan)
	mux.HandleFunc("GET "+Prefix+"/scan/{id}/report", s.report)
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errdefs.NotFound(fmt.Errorf("no scanner adapter endpoint at %s %s", r.Method, r.URL.Path)))
	})
	return mux
}

type server struct {
	b   Backend
	log *slog.Logger
}

func (s *server) auth(w http.ResponseWriter, r *http.Request) (context.Context, bool) {
	ctx, err := s.b.Authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return ctx, true
}

func (s *server) metadata(w http.ResponseWriter, r *http.Request) {
	ctx, ok := s.auth(w, r)
	if !ok {
		return
	}
	m, err := s.b.Metadata(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, MimeMetadata, m)
}

func (s *server) scan(w http.ResponseWriter, r *http.Request) {
	ctx, ok := s.auth(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		c := Canonical(ct)
		if c != MimeScanRequest && c != MimeScanRequest10 && c != "application/json" {
			s.fail(w, r, badRequest(fmt.Errorf("content type %q is not a scan request (%s)", ct, MimeScanRequest)))
			return
		}
	}
	var req ScanRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxRequest+1))
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, badRequest(fmt.Errorf("scan request: %v", err)))
		return
	}
	if err := req.check(); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.b.Accept(ctx, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, MimeScanResponse, ScanResponse{ID: id})
}

// check validates the fields a scan request must have (422 when wrong).
func (req ScanRequest) check() error {
	switch {
	case req.Registry.URL == "":
		return errdefs.InvalidArgument(errors.New("registry.url is required"))
	case req.Artifact.Repository == "":
		return errdefs.InvalidArgument(errors.New("artifact.repository is required"))
	case req.Artifact.Digest == "":
		return errdefs.InvalidArgument(errors.New("artifact.digest is required"))
	}
	for _, c := range req.EnabledCapabilities {
		if c.Type != TypeVulnerability && c.Type != TypeSBOM {
			return errdefs.InvalidArgument(fmt.Errorf("enabled_capabilities: unknown type %q", c.Type))
		}
		for _, m := range c.ProducesMimeTypes {
			if !KnownReportType(Canonical(m)) {
				return badRequest(fmt.Errorf("enabled_capabilities: unknown report MIME type %q", m))
			}
		}
		if c.Parameters != nil {
			for _, m := range c.Parameters.SBOMMediaTypes {
				if m != MediaTypeSPDX && m != MediaTypeCycloneDX {
					return badRequest(fmt.Errorf("sbom_media_types: %q is not %s or %s", m, MediaTypeSPDX, MediaTypeCycloneDX))
				}
			}
		}
	}
	return nil
}

func (s *server) report(w http.ResponseWriter, r *http.Request) {
	ctx, ok := s.auth(w, r)
	if !ok {
		return
	}
	want := MimeVulnReportHarbor
	if a := r.Header.Get("Accept"); a != "" && a != "*/*" {
		want = Canonical(a)
		if !KnownReportType(want) {
			s.fail(w, r, badRequest(fmt.Errorf("unknown report MIME type %q; want one of %s, %s, %s, %s", a, MimeVulnReport, MimeVulnReportHarbor, MimeVulnReportRaw, MimeSBOMReport)))
			return
		}
	}
	sbomType := r.URL.Query().Get("sbom_media_type")
	switch {
	case want == MimeSBOMReport && sbomType == "":
		sbomType = MediaTypeSPDX
	case want == MimeSBOMReport && sbomType != MediaTypeSPDX && sbomType != MediaTypeCycloneDX:
		s.fail(w, r, badRequest(fmt.Errorf("sbom_media_type %q is not %s or %s", sbomType, MediaTypeSPDX, MediaTypeCycloneDX)))
		return
	}
	body, err := s.b.Report(ctx, r.PathValue("id"), want, sbomType)
	var nr *NotReady
	if errors.As(err, &nr) {
		secs := max(1, int(nr.RetryAfter.Round(time.Second)/time.Second))
		w.Header().Set("Refresh-After", strconv.Itoa(secs))
		w.WriteHeader(http.StatusFound)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", want)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// Canonical writes a MIME type the way this package's constants are
// written ("type; version=1.1"), so that spellings with other spaces or
// cases compare equal; an unparseable one is returned as is.
func Canonical(s string) string {
	mt, params, err := mime.ParseMediaType(s)
	if err != nil {
		return strings.TrimSpace(s)
	}
	return mime.FormatMediaType(mt, params)
}

// requestError is a malformed request (400), as opposed to a request
// whose fields the backend cannot use (422).
type requestError struct{ err error }

func (e requestError) Error() string { return e.err.Error() }
func (e requestError) Unwrap() error { return e.err }

func badRequest(err error) error { return requestError{err} }

func status(err error) int {
	var re requestError
	switch {
	case errors.As(err, &re):
		return http.StatusBadRequest
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrDenied):
		return http.StatusForbidden
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrUnsupported):
		return http.StatusNotImplemented
	case errdefs.IsInvalidArgument(err):
		return http.StatusUnprocessableEntity
	case errors.Is(err, errdefs.ErrThrottled):
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	st := status(err)
	msg := err.Error()
	var failed *Failed
	if errors.As(err, &failed) {
		msg = failed.Error()
	} else if st == http.StatusInternalServerError {
		s.log.Error("scanner adapter request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		msg = "internal error; see the scanner's log"
	}
	if st == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="lading scanner adapter"`)
	}
	var e ErrorResponse
	e.Error.Message = msg
	writeJSON(w, st, MimeError, e)
}

func writeJSON(w http.ResponseWriter, status int, ctype string, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
