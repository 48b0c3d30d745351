// Package registry serves the OCI distribution API (spec 1.1): pulls and
// pushes of blobs and manifests, cross-repository mounts, deletes, tag and
// repository listing, and the referrers API, over content kept by a
// storage.Driver and metadata kept by a meta.Store. It also holds what a
// registry needs around the API: the Docker token flow's challenges,
// online garbage collection, Prometheus metrics and structured access
// logs.
//
// Who a caller is and what they may do is asked of a Gate; what happened
// is told to Events (gate.go). The package never imports the services
// that answer (identity, access, projects, policies) nor lading's scanner:
// the server composes them. Without a Gate the registry is open.
//
// # Requests and their errors
//
// Domain code returns errors of the errdefs classes, wrapped with context;
// handlers attach the distribution spec's code where a class alone is
// ambiguous, and toAPI maps everything else at the edge. A malformed digest
// or name is always a 400, a missing object a 404, and only a failure of the
// server itself a 5xx.
package registry

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/storage"
)

// Limits bound what a client may make the registry do.
type Limits struct {
	// MaxManifestSize is the largest manifest accepted (413 beyond). The
	// spec asks registries to accept at least 4 MiB. Default 4 MiB.
	MaxManifestSize int64
	// IdleTimeout is how long a request body or a response may stall
	// (no byte moving) before the registry gives up on it. Default 60s.
	IdleTimeout time.Duration
	// ClaimWait is how long a push waits for the garbage collector to
	// finish deleting a blob it is writing again. Default 10s.
	ClaimWait time.Duration
	// PageSize is the largest page of tags, repositories or referrers a
	// listing returns; a larger n is reduced to it. Default 1000.
	PageSize int
}

func (l *Limits) defaults() {
	if l.MaxManifestSize <= 0 {
		l.MaxManifestSize = 4 << 20
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 60 * time.Second
	}
	if l.ClaimWait <= 0 {
		l.ClaimWait = 10 * time.Second
	}
	if l.PageSize <= 0 {
		l.PageSize = 1000
	}
}

// settings are what the options set, shared by Registry and Collector.
type settings struct {
	log     *slog.Logger
	access  *slog.Logger
	gate    Gate
	events  Events
	metrics *Metrics
	limits  Limits
	// upstreams make repositories pull-through caches (proxy.go).
	upstreams Upstreams

	noMetricsRoute bool
}

// Registry serves the distribution API. Create it with New; it is an
// http.Handler. Each group of handlers reaches the metadata through the
// role it needs: blob handlers through blobs, manifest handlers through
// manifests, upload handlers through uploads.
type Registry struct {
	settings
	driver    storage.Driver
	blobs     meta.Blobs
	manifests meta.Manifests
	uploads   meta.Uploads
}

// Option configures a Registry or a Collector.
type Option func(*settings)

// WithLogger sets the logger for operational messages (errors, GC).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// WithAccessLog logs one record per request to l.
func WithAccessLog(l *slog.Logger) Option { return func(s *settings) { s.access = l } }

// WithGate makes the registry ask g who callers are and what they may do;
// without a Gate it is open to everyone.
func WithGate(g Gate) Option { return func(s *settings) { s.gate = g } }

// WithEvents sets who hears about pushes, pulls and deletions.
func WithEvents(e Events) Option { return func(s *settings) { s.events = e } }

// WithMetrics records metrics in m (a Collector, its collections) and
// serves them at /metrics.
func WithMetrics(m *Metrics) Option { return func(s *settings) { s.metrics = m } }

// WithoutMetricsRoute keeps /metrics off the registry's port, for metrics
// served on a listener of their own (Metrics.Handler).
func WithoutMetricsRoute() Option { return func(s *settings) { s.noMetricsRoute = true } }

// WithLimits sets the limits; zero fields keep their defaults.
func WithLimits(l Limits) Option { return func(s *settings) { s.limits = l } }

func newSettings(opts []Option) settings {
	s := settings{events: noEvents{}}
	for _, o := range opts {
		o(&s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.limits.defaults()
	return s
}

// New returns a registry over content in d and metadata in m.
func New(d storage.Driver, m meta.API, opts ...Option) *Registry {
	return &Registry{settings: newSettings(opts), driver: d, blobs: m, manifests: m, uploads: m}
}

// reqInfo collects what the access log and the metrics say about a request.
type reqInfo struct {
	id    string
	route string
	repo  string
	user  string
	err   *apiError
}

// ServeHTTP implements http.Handler.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	if r.metrics != nil {
		r.metrics.inFlight.Inc()
		defer r.metrics.inFlight.Dec()
	}
	rec := &recorder{ResponseWriter: w}
	info := &reqInfo{id: requestID(req), route: "other"}
	rec.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	rec.Header().Set("X-Request-Id", info.id)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			r.log.Error("panic serving request", "request_id", info.id, "method", req.Method, "path", req.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wroteHeader {
				ae := &apiError{status: http.StatusInternalServerError, code: codeUnknown, err: errors.New("panic")}
				writeError(rec, req, ae)
				info.err = ae
			}
		}
		r.finish(rec, req, info, start)
	}()
	path := req.URL.EscapedPath()
	switch {
	case path == "/metrics" && r.metrics != nil && !r.noMetricsRoute:
		info.route = "metrics"
		r.serveMetrics(rec, req, info)
	default:
		r.serveAPI(rec, req, info)
	}
}

// serveMetrics serves /metrics: to anyone on an open registry, else to a
// subject the Gate lets read the catalog (a system administrator), with
// HTTP basic credentials (a scraper has static credentials, not a token
// flow).
func (r *Registry) serveMetrics(w *recorder, req *http.Request, info *reqInfo) {
	if r.gate != nil {
		fail := func(status int, code string, err error) {
			ae := &apiError{status: status, code: code, err: err}
			info.err = ae
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="lading metrics"`)
			}
			writeError(w, req, ae)
		}
		user, pass, ok := req.BasicAuth()
		if !ok {
			fail(http.StatusUnauthorized, codeUnauthorized, errors.New("metrics need the basic credentials of an administrator"))
			return
		}
		s, err := r.gate.Basic(req.Context(), user, pass, req.RemoteAddr)
		if err != nil {
			fail(http.StatusUnauthorized, codeUnauthorized, err)
			return
		}
		info.user = s.Name
		if ok, err := r.gate.Catalog(req.Context(), s); err != nil || !ok {
			fail(http.StatusForbidden, codeDenied, fmt.Errorf("%s may not read the metrics", s.Name))
			return
		}
	}
	r.metrics.Handler().ServeHTTP(w, req)
}

// requestID is the client's X-Request-Id when it is a plain token (it goes
// back in a header and into the log), else a new one.
func requestID(req *http.Request) string {
	if id := req.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == "" {
		return id
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// finish logs the request and records its metrics.
func (r *Registry) finish(rec *recorder, req *http.Request, info *reqInfo, start time.Time) {
	d := time.Since(start)
	status := rec.status
	switch {
	case status == 0 && info.err != nil && info.err.status == statusClientGone:
		status = statusClientGone
	case status == 0:
		status = http.StatusOK
	}
	if r.metrics != nil {
		r.metrics.observe(req.Method, info.route, status, d, rec.bodyIn(req), rec.written)
	}
	if info.err != nil && info.err.status >= 500 {
		r.log.Error("request failed", "request_id", info.id, "method", req.Method, "path", req.URL.Path, "status", status, "error", info.err.err.Error())
	}
	if r.access == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", info.id),
		slog.String("method", req.Method),
		slog.String("path", req.URL.Path),
		slog.String("route", info.route),
		slog.Int("status", status),
		slog.Int64("bytes_in", rec.bodyIn(req)),
		slog.Int64("bytes_out", rec.written),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("remote", req.RemoteAddr),
	}
	if info.repo != "" {
		attrs = append(attrs, slog.String("repository", info.repo))
	}
	if info.user != "" {
		attrs = append(attrs, slog.String("user", info.user))
	}
	if ua := req.UserAgent(); ua != "" {
		attrs = append(attrs, slog.String("user_agent", ua))
	}
	if info.err != nil {
		attrs = append(attrs, slog.String("error_code", info.err.code), slog.String("error", info.err.err.Error()))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	r.access.LogAttrs(req.Context(), level, "request", attrs...)
}

// recorder remembers the status and counts the bytes of a response.
type recorder struct {
	http.ResponseWriter
	status      int
	written     int64
	wroteHeader bool
	read        *countingBody
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.wroteHeader {
		rec.status = code
		rec.wroteHeader = true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// Flush implements http.Flusher.
func (rec *recorder) Flush() {
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rec *recorder) bodyIn(req *http.Request) int64 {
	if rec.read != nil {
		return rec.read.n
	}
	return 0
}

// countingBody counts the bytes a handler reads from a request body.
type countingBody struct {
	r interface {
		Read([]byte) (int, error)
	}
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
