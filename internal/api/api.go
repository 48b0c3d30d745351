// Package api serves Harbor's REST API v2.0 (under /api/v2.0) and the
// login form (/c/login, /c/log_out) over lading's services. Handlers are
// thin: they read a request into a service call and write the result in
// Harbor's shape. Whether the caller may do what they ask is the
// services' question, never a handler's, so that the web UI, calling the
// same services, cannot disagree with the API.
//
// Conventions, as Harbor's:
//
//   - Authentication: HTTP basic (users, robots), or the session cookie
//     of the login form, whose unsafe requests must echo the session's
//     CSRF token in X-Harbor-CSRF-Token. Without either the caller is
//     anonymous.
//   - Lists take page (from 1), page_size (default 10, at most 100), q and
//     sort (package query) and answer X-Total-Count and Link.
//   - Creation answers 201 with Location.
//   - Errors are {"errors":[{"code":"NOT_FOUND","message":"..."}]}; the
//     error classes of package errdefs become Harbor's codes and statuses
//     in one place (writeError).
//   - Every response carries X-Request-Id; X-Is-Resource-Name: true makes
//     a project path parameter a name even when it is a number.
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/config"
	"github.com/lading-dev/lading/internal/contenttrust"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/gc"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/identity/ldap"
	"github.com/lading-dev/lading/internal/identity/oidc"
	"github.com/lading-dev/lading/internal/immutable"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/purge"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/replication"
	"github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/webhook"
)

// Prefix is where the API lives.
const Prefix = "/api/v2.0"

// Services are what the API serves.
type Services struct {
	Access    *access.Checker
	Identity  *identity.Service
	Projects  *project.Service
	Artifacts *artifact.Service
	Audit     *audit.Log
	Settings  *config.Store
	Jobs      *jobs.Monitor
	Webhooks  *webhook.Service
	Immutable *immutable.Service
	Labels    *label.Service
	Retention *retention.Service
	GC        *gc.Service
	Purge     *purge.Service
	Trust     *contenttrust.Service
	// LDAP and OIDC serve the external identities' endpoints; nil
	// answers that they are not available.
	LDAP        *ldap.Admin
	OIDC        *oidc.Service
	Replication *replication.Service
}

// Component is one part of lading as /health reports it.
type Component struct {
	Name  string
	Error error
}

// Options configure the API.
type Options struct {
	// Log receives failures.
	Log *slog.Logger
	// AccessLog, when set, receives one record per request.
	AccessLog *slog.Logger
	// Version is lading's version, shown as harbor_version.
	Version string
	// StorageProvider names the blob storage (systeminfo).
	StorageProvider string
	// Health checks the components (database, storage).
	Health func(context.Context) []Component
	// MaxBody bounds request bodies (413 beyond); default 1 MiB.
	MaxBody int64
	// NoAuth reports "none" as the auth mode and lets every caller act as
	// a system administrator (the --no-auth throwaway registry).
	NoAuth bool
}

// Server is the API's HTTP handler.
type Server struct {
	svc Services
	opt Options
	log *slog.Logger
	mux *http.ServeMux
	// scans is registry-side scanning, when plugged in (SetScanning).
	scans scanapi.Service
}

// New returns the API handler.
func New(svc Services, opt Options) *Server {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.MaxBody <= 0 {
		opt.MaxBody = 1 << 20
	}
	if opt.Version == "" {
		opt.Version = "dev"
	}
	s := &Server{svc: svc, opt: opt, log: opt.Log, mux: http.NewServeMux()}
	s.routes()
	return s
}

// handlerFunc is a handler of one endpoint: it returns an error to be
// answered in Harbor's shape.
type handlerFunc func(c *call) error

// call is one API request on its way through a handler.
type call struct {
	w    *recorder
	r    *http.Request
	ctx  context.Context
	who  access.Subject
	s    *Server
	sess bool // authenticated by a session cookie
}

func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := r.Context().Value(callKey{}).(*call)
		c.r = r
		if err := h(c); err != nil {
			s.writeError(c, err)
		}
	})
}

type callKey struct{}

// recorder remembers the status of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ServeHTTP implements http.Handler: request id, recovery, authentication,
// CSRF, body limit, access log, then the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	id := RequestID(r)
	rec.Header().Set("X-Request-Id", id)
	c := &call{w: rec, r: r, s: s}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving API request", "request_id", id, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if rec.status == 0 {
				s.writeError(c, errors.New("panic"))
			}
		}
		s.logAccess(c, id, start)
	}()
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rec, r.Body, s.opt.MaxBody)
	}
	ctx := actor.With(r.Context(), actor.Actor{RequestID: id, Address: r.RemoteAddr, Kind: "anonymous"})
	c.ctx = ctx
	if err := s.authenticate(c); err != nil {
		s.writeError(c, err)
		return
	}
	c.ctx = actor.With(ctx, actor.Actor{Name: c.who.Name, Kind: c.who.Kind.String(), ID: c.who.ID, Address: r.RemoteAddr, RequestID: id})
	c.ctx = context.WithValue(c.ctx, callKey{}, c)
	s.mux.ServeHTTP(rec, r.WithContext(c.ctx))
}

// RequestID is the client's X-Request-Id when it is a plain token (it goes
// back in a header and into the logs), else a new one.
func RequestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == "" {
		return id
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// The session cookie and the CSRF header, as Harbor names them.
const (
	SessionCookie = "sid"
	CSRFHeader    = "X-Harbor-CSRF-Token"
)

// authenticate sets the caller: basic credentials, else a session cookie,
// else anonymous. Wrong credentials are an error, a missing or expired
// session is not (the caller is anonymous, as in Harbor).
func (s *Server) authenticate(c *call) error {
	if s.opt.NoAuth {
		c.who = access.Subject{Kind: access.KindUser, ID: identity.AdminID, Name: "admin", SysAdmin: true, Address: c.r.RemoteAddr}
		return nil
	}
	if h := c.r.Header.Get("Authorization"); h != "" {
		user, pass, ok := c.r.BasicAuth()
		if !ok {
			return errdefs.Unauthorized(errors.New("unsupported authorization scheme; use basic credentials"))
		}
		who, err := s.svc.Identity.Login(c.ctx, user, pass, c.r.RemoteAddr, false)
		if err != nil {
			return err
		}
		c.who = who
		return nil
	}
	ck, err := c.r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		c.who = access.Subject{Address: c.r.RemoteAddr}
		return nil
	}
	who, sess, err := s.svc.Identity.Session(c.ctx, ck.Value)
	if errdefs.IsUnauthorized(err) {
		c.who = access.Subject{Address: c.r.RemoteAddr}
		return nil
	}
	if err != nil {
		return err
	}
	who.Address = c.r.RemoteAddr
	c.who, c.sess = who, true
	c.w.Header().Set(CSRFHeader, sess.CSRF)
	switch c.r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if got := c.r.Header.Get(CSRFHeader); subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
		return errdefs.Denied(errors.New("CSRF token invalid"))
	}
	return nil
}

func (s *Server) logAccess(c *call, id string, start time.Time) {
	if s.opt.AccessLog == nil {
		return
	}
	status := c.w.status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", c.r.Method),
		slog.String("path", c.r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes_out", c.w.bytes),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("remote", c.r.RemoteAddr),
	}
	if c.who.Name != "" {
		attrs = append(attrs, slog.String("user", c.who.Name))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.opt.AccessLog.LogAttrs(context.Background(), level, "api request", attrs...)
}

// decode reads a JSON body into v; unknown fields are ignored, as Harbor
// ignores them.
func (c *call) decode(v any) error {
	if c.r.Body == nil {
		return errdefs.InvalidArgument(errors.New("a JSON body is required"))
	}
	err := json.NewDecoder(c.r.Body).Decode(v)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errdefs.TooLarge(fmt.Errorf("request body larger than %d bytes", mbe.Limit))
	case errors.Is(err, io.EOF):
		return errdefs.InvalidArgument(errors.New("a JSON body is required"))
	case err != nil:
		return errdefs.InvalidArgument(fmt.Errorf("request body: %v", err))
	}
	return nil
}

// json answers status with v as JSON.
func (c *call) json(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(status)
	if c.r.Method != http.MethodHead {
		c.w.Write(b)
	}
	return nil
}

// ok answers 200 without a body.
func (c *call) ok() error {
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// created answers 201 with Location: the request's path and the new id.
func (c *call) created(id string) error {
	c.w.Header().Set("Location", strings.TrimSuffix(c.r.URL.Path, "/")+"/"+id)
	c.w.WriteHeader(http.StatusCreated)
	return nil
}

// page reads page and page_size: page from 1, page_size default 10,
// capped at 100.
func (c *call) page() (query.Page, error) {
	v := c.r.URL.Query()
	p := query.Page{Number: 1, Size: 10}
	if s := v.Get("page"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > 1<<31 {
			return p, errdefs.InvalidArgument(fmt.Errorf("page %q: want a positive integer", s))
		}
		p.Number = n
	}
	if s := v.Get("page_size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return p, errdefs.InvalidArgument(fmt.Errorf("page_size %q: want a positive integer", s))
		}
		p.Size = n
		if n == 0 || n > 100 {
			p.Size = 100
		}
	}
	return p, nil
}

// listing reads q, sort and the page.
func (c *call) listing() (query.Query, query.Page, error) {
	v := c.r.URL.Query()
	q, err := query.Parse(v.Get("q"), v.Get("sort"))
	if err != nil {
		return q, query.Page{}, err
	}
	p, err := c.page()
	return q, p, err
}

// list answers a page of a listing with X-Total-Count and Link.
func (c *call) list(p query.Page, total int64, items any) error {
	h := c.w.Header()
	h.Set("X-Total-Count", strconv.FormatInt(total, 10))
	if l := links(c.r.URL, total, p); l != "" {
		h.Set("Link", l)
	}
	return c.json(http.StatusOK, items)
}

// links is Harbor's Link header: the previous and next pages.
func links(u *url.URL, total int64, p query.Page) string {
	if p.Size == 0 {
		return ""
	}
	var out []string
	link := func(page int64, rel string) {
		q := u.Query()
		q.Set("page", strconv.FormatInt(page, 10))
		q.Set("page_size", strconv.FormatInt(p.Size, 10))
		raw := q.Encode()
		if unescaped, err := url.QueryUnescape(raw); err == nil {
			raw = unescaped
		}
		out = append(out, fmt.Sprintf(`<%s?%s>; rel="%s"`, u.Path, raw, rel))
	}
	if p.Number > 1 && (p.Number-1)*p.Size < total {
		link(p.Number-1, "prev")
	}
	if p.Size*p.Number < total {
		link(p.Number+1, "next")
	}
	return strings.Join(out, " , ")
}

// projectRef reads the project path parameter (a name or an id, or a name
// when X-Is-Resource-Name is true).
func (c *call) projectRef(param string) project.Ref {
	return project.ParseRef(c.r.PathValue(param), c.r.Header.Get("X-Is-Resource-Name") == "true")
}

// repoName reads the repository path parameter, which Harbor's clients
// URL-encode twice when it holds slashes ("a/b" -> "a%252Fb").
func (c *call) repoName() string {
	v := c.r.PathValue("repository_name")
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// id reads a numeric path parameter.
func (c *call) id(param string) (int64, error) {
	s := c.r.PathValue(param)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errdefs.InvalidArgument(fmt.Errorf("%s %q: want a non-negative integer", param, s))
	}
	return n, nil
}
