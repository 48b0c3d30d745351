// Package ui is lading's web UI: the registry's portal, served by lading
// serve at / on the registry's port. Pages are rendered on the server
// with html/template; a small script of the UI's own (assets/ui.js, no
// library) enhances them where JavaScript runs (live filters, partial
// updates, lazy panels, confirmations, copy buttons), and every page and
// form works without it.
//
// # Authorization
//
// The UI calls the same service functions as the HTTP API (package api),
// with the same access.Subject, so the two cannot disagree: a handler
// reads a request into a service call and renders the result. It makes no
// decision of its own. To show only the controls a user may use, it reads
// the subject's permissions from the access checker (perms.go, the only
// file that asks); the service checks again when the user acts.
// TestNoRulesOfItsOwn keeps it so.
//
// # Sessions and requests
//
// The UI shares the Harbor core's session: the cookie "sid" (HttpOnly,
// SameSite=Lax, Secure under TLS) that identity.Service.StartSession
// opens, ended on the server at logout. Every unsafe request carries the
// session's CSRF token, in the form field "_csrf" or, for scripts, in
// the X-Harbor-CSRF-Token header the API also reads; before login a
// double-submit cookie stands in. Every response forbids inline scripts
// and styles (Content-Security-Policy), framing and MIME sniffing;
// html/template escapes everything users typed or pushed.
//
// # Paths
//
//	/login, /logout, /profile
//	/projects                                  list, search, create
//	/projects/{project}[/{tab}]                summary, repositories, members, robots,
//	                                           policies, immutability, retention,
//	                                           labels, webhooks, logs
//	/projects/{project}/immutability[/{id}]     POST: create; enable, disable, delete
//	/projects/{project}/labels[/{id}]           POST: create; update, delete
//	/projects/{project}/retention[/rules/{n}]   POST: add a rule, the schedule; enable,
//	                                           disable, delete a rule
//	/projects/{project}/retention/run          POST: run now or dry run
//	/projects/{project}/retention/runs/{exec}/stop, .../tasks/{task}/log
//	/projects/{project}/r/{repository...}      a repository and its artifacts
//	/projects/{project}/r/{repository...}/-/{digest}[/{panel}]
//	                                           an artifact; panels: packages,
//	                                           vulnerabilities, sbom
//	/admin/{page}                              users, groups, robots, registries, replication,
//	                                           interrogation, gc, configuration, audit, jobs
//	/static/{file}                             embedded assets
package ui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/config"
	"github.com/lading-dev/lading/internal/gc"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/identity/ldap"
	"github.com/lading-dev/lading/internal/identity/oidc"
	"github.com/lading-dev/lading/internal/immutable"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/replication"
	"github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/webhook"
)

// Permissions tells what a subject may do; the UI asks it only to choose
// which controls to show (perms.go).
type Permissions interface {
	// Can reports whether s may do a on r in project (0: the system).
	Can(ctx context.Context, s access.Subject, a access.Action, r access.Resource, project int64) (bool, error)
}

// Services are what the UI shows and changes: the same the API serves.
type Services struct {
	Permissions Permissions
	Identity    *identity.Service
	Projects    *project.Service
	Artifacts   *artifact.Service
	Audit       *audit.Log
	Settings    *config.Store
	Inspect     *inspect.Service
	// Webhooks, when set, gives projects a webhooks tab.
	Webhooks *webhook.Service
	// Labels, when set, shows artifacts' labels in repository pages.
	Labels *label.Service
	// Jobs, when set, gives the Administration menu the job service
	// dashboard.
	Jobs *jobs.Monitor
	// Immutable and Retention, when set, give projects their
	// immutability and retention tabs (lifecycle.go, retention.go).
	Immutable *immutable.Service
	Retention *retention.Service
	// Replication, when set, gives the Administration menu registries
	// and replication, and the project form proxy caches.
	Replication *replication.Service
	// GC, when set, gives the Administration menu garbage collection.
	GC *gc.Service
	// LDAP, when set, gives the configuration page its LDAP test.
	LDAP *ldap.Admin
	// OIDC, when set, shows OIDC users their CLI secret in their profile.
	OIDC *oidc.Service
}

// Options configure the UI.
type Options struct {
	// Log receives failures.
	Log *slog.Logger
	// Version is lading's version, shown in the footer.
	Version string
	// NoAuth: every caller is the administrator (the --no-auth
	// throwaway registry).
	NoAuth bool
}

// Server is the UI's HTTP handler.
type Server struct {
	svc    Services
	opt    Options
	log    *slog.Logger
	mux    *http.ServeMux
	pages  *pages
	static *static
	// scans is registry-side scanning, once plugged in (SetScanning).
	scans scanapi.Service
	// scanners is registry-side scanning's administration, plugged in
	// after the UI is built (SetScanners).
	scanners Scanners
}

// New returns the UI's handler.
func New(svc Services, opt Options) (*Server, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Version == "" {
		opt.Version = "dev"
	}
	st, err := newStatic()
	if err != nil {
		return nil, err
	}
	pg, err := parsePages(st)
	if err != nil {
		return nil, err
	}
	s := &Server{svc: svc, opt: opt, log: opt.Log, mux: http.NewServeMux(), pages: pg, static: st}
	s.routes()
	return s, nil
}

// Owns reports whether the UI serves path p; the server sends everything
// else (the registry's /v2/, the API) elsewhere.
func Owns(p string) bool {
	if p == "/" || p == "/favicon.ico" {
		return true
	}
	for _, prefix := range []string{"/login", "/logout", "/profile", "/projects", "/admin", "/static/"} {
		if p == prefix || strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/") {
			return true
		}
	}
	return false
}

// CSP is the Content-Security-Policy of every UI response: scripts and
// styles from the UI's own files only, nothing inline, no framing, forms
// that post nowhere else.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP implements http.Handler: security headers, recovery, the
// session, CSRF, then the page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	id := requestID(r)
	h.Set("X-Request-Id", id)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving a UI page", "request_id", id, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			http.Error(w, "internal error (request "+id+")", http.StatusInternalServerError)
		}
	}()
	if strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/favicon.ico" {
		s.static.serve(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	c := &call{w: w, r: r, s: s, id: id, start: time.Now()}
	c.ctx = actor.With(r.Context(), actor.Actor{RequestID: id, Address: r.RemoteAddr, Kind: "anonymous"})
	if err := s.authenticate(c); err != nil {
		s.fail(c, err)
		return
	}
	c.ctx = actor.With(c.ctx, actor.Actor{Name: c.who.Name, Kind: c.who.Kind.String(), ID: c.who.ID, Address: r.RemoteAddr, RequestID: id})
	if err := s.checkCSRF(c); err != nil {
		s.fail(c, err)
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(c.ctx, callKey{}, c)))
}

// requestID is the client's X-Request-Id when it is a plain token, else a
// new one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == "" {
		return id
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type callKey struct{}

// call is one UI request.
type call struct {
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	s     *Server
	id    string
	start time.Time
	who   access.Subject
	// csrf is the token forms must carry: the session's, or the
	// double-submit cookie's before login.
	csrf string
	// session is set when a session cookie authenticated the caller.
	session bool
}

// handlerFunc serves one page; an error is rendered as an error page.
type handlerFunc func(c *call) error

func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := r.Context().Value(callKey{}).(*call)
		c.r = r
		if err := h(c); err != nil {
			s.fail(c, err)
		}
	})
}

func (s *Server) routes() {
	s.handle("GET /{$}", func(c *call) error { return c.redirect("/projects") })
	s.handle("GET /login", s.loginPage)
	s.handle("POST /login", s.login)
	s.handle("POST /logout", s.logout)
	s.handle("GET /profile", s.profile)
	s.handle("POST /profile", s.updateProfile)
	s.handle("POST /profile/password", s.changePassword)

	s.handle("GET /projects", s.projectList)
	s.handle("POST /projects", s.createProject)
	s.handle("GET /projects/{project}", s.projectTab)
	s.handle("GET /projects/{project}/{tab}", s.projectTab)
	s.handle("POST /projects/{project}/delete", s.deleteProject)
	s.handle("POST /projects/{project}/policies", s.updatePolicies)
	s.handle("POST /projects/{project}/members", s.addMember)
	s.handle("POST /projects/{project}/members/{mid}", s.changeMember)
	s.handle("POST /projects/{project}/robots", s.createProjectRobot)
	s.handle("POST /projects/{project}/robots/{rid}/delete", s.deleteRobot)
	s.handle("POST /projects/{project}/webhooks", s.createWebhook)
	s.handle("POST /projects/{project}/webhooks/{wid}/delete", s.deleteWebhook)
	s.handle("GET /projects/{project}/r/{rest...}", s.repositoryOrArtifact)
	s.handle("POST /projects/{project}/r/{rest...}", s.repositoryOrArtifactPost)

	s.handle("GET /admin", func(c *call) error { return c.redirect("/admin/users") })
	s.handle("GET /admin/users", s.adminUsers)
	s.handle("POST /admin/users", s.adminCreateUser)
	s.handle("POST /admin/users/{uid}", s.adminChangeUser)
	s.handle("GET /admin/robots", s.adminRobots)
	s.handle("POST /admin/robots", s.adminCreateRobot)
	s.handle("POST /admin/robots/{rid}/delete", s.deleteRobot)
	s.handle("GET /admin/configuration", s.adminConfig)
	s.handle("POST /admin/configuration", s.adminUpdateConfig)
	s.handle("GET /admin/audit", s.adminAudit)
	s.handle("GET /admin/jobs", s.adminJobs)
	s.handle("POST /admin/jobs", s.adminJobQueue)

	s.projectRoutes()
	s.adminRoutes()

	s.handle("/", func(c *call) error { return notFound("no page at " + c.r.URL.Path) })
}
