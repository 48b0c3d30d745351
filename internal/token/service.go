package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
)

// Path is where the token service answers, as in Harbor.
const Path = "/service/token"

// Authenticator checks credentials (identity.Service).
type Authenticator interface {
	Login(ctx context.Context, name, password, address string, audited bool) (access.Subject, error)
}

// Service is the token endpoint.
type Service struct {
	issuer *Issuer
	auth   Authenticator
	access *access.Checker
	ttl    func(context.Context) time.Duration
	log    *slog.Logger
}

// NewService returns the token endpoint: auth checks credentials, checker
// decides what a token carries, ttl gives the current token lifetime.
func NewService(issuer *Issuer, auth Authenticator, checker *access.Checker, ttl func(context.Context) time.Duration, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{issuer: issuer, auth: auth, access: checker, ttl: ttl, log: log}
}

type response struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// request is a parsed token request.
type request struct {
	user, pass string
	creds      bool
	service    string
	scopes     []string
}

// parse reads a GET with optional basic credentials (Docker's token flow)
// or a POST of an OAuth2 password grant (what containerd tries first).
func parse(w http.ResponseWriter, r *http.Request) (request, error) {
	var q request
	switch r.Method {
	case http.MethodGet:
		v := r.URL.Query()
		q.service = v.Get("service")
		for _, s := range v["scope"] {
			q.scopes = append(q.scopes, strings.Fields(s)...)
		}
		q.user, q.pass, q.creds = r.BasicAuth()
		if !q.creds && r.Header.Get("Authorization") != "" {
			return q, errdefs.Unauthorized(errors.New("the token service takes basic credentials"))
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return q, errdefs.InvalidArgument(fmt.Errorf("token request form: %w", err))
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			return q, errdefs.InvalidArgument(fmt.Errorf("grant_type %q not supported; use password, or GET with basic credentials", gt))
		}
		q.service = r.PostForm.Get("service")
		q.scopes = strings.Fields(r.PostForm.Get("scope"))
		q.user, q.pass, q.creds = r.PostForm.Get("username"), r.PostForm.Get("password"), true
	default:
		w.Header().Set("Allow", "GET, POST")
		return q, errdefs.Unsupported(fmt.Errorf("method %s", r.Method))
	}
	if len(q.scopes) > 64 {
		return q, errdefs.InvalidArgument(errors.New("more than 64 scopes"))
	}
	return q, nil
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, err := parse(w, r)
	if err != nil {
		s.fail(w, err)
		return
	}
	if q.service != "" && q.service != s.issuer.service {
		s.fail(w, errdefs.InvalidArgument(fmt.Errorf("service %q is not %q", q.service, s.issuer.service)))
		return
	}
	var who access.Subject
	if q.creds {
		who, err = s.auth.Login(ctx, q.user, q.pass, r.RemoteAddr, false)
		if err != nil {
			s.fail(w, err)
			return
		}
	} else if len(q.scopes) == 0 {
		// docker login without credentials.
		s.fail(w, errdefs.Unauthorized(errors.New("authentication required")))
		return
	}
	var granted []Access
	for _, sc := range q.scopes {
		a, err := ParseScope(sc)
		if err != nil {
			s.fail(w, err)
			return
		}
		g, err := s.grant(ctx, who, a)
		if err != nil {
			s.fail(w, err)
			return
		}
		if len(g.Actions) > 0 {
			granted = append(granted, g)
		}
	}
	tok, cl := s.issuer.Issue(who.Name, granted, s.ttl(ctx))
	b, _ := json.Marshal(response{Token: tok, AccessToken: tok, ExpiresIn: int(cl.Expiry - cl.IssuedAt),
		IssuedAt: time.Unix(cl.IssuedAt, 0).UTC().Format(time.RFC3339)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// grant is what a token carries of a requested scope: the requested
// repository actions the subject may do ("*" asks for all of them), or
// the catalog for those who may read it.
func (s *Service) grant(ctx context.Context, who access.Subject, a Access) (Access, error) {
	out := Access{Type: a.Type, Name: a.Name}
	switch a.Type {
	case "repository":
		allowed, err := s.access.RepositoryActions(ctx, who, a.Name)
		if err != nil {
			return out, err
		}
		for _, act := range allowed {
			if slices.Contains(a.Actions, string(act)) || slices.Contains(a.Actions, "*") {
				out.Actions = append(out.Actions, string(act))
			}
		}
	case "registry":
		if a.Name == "catalog" && slices.Contains(a.Actions, "*") {
			ok, err := s.access.Can(ctx, who, access.Read, access.Catalog, 0)
			if err != nil {
				return out, err
			}
			if ok {
				out.Actions = []string{"*"}
			}
		}
	}
	return out, nil
}

// ParseScope parses "type:name:action[,action...]". The name may itself
// hold colons (a registry host with a port), so the type ends at the
// first colon and the actions start after the last.
func ParseScope(s string) (Access, error) {
	if len(s) > 1024 {
		return Access{}, errdefs.InvalidArgument(fmt.Errorf("scope %.40q...: too long", s))
	}
	i, j := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
	if i < 0 || i == j {
		return Access{}, errdefs.InvalidArgument(fmt.Errorf("scope %q: want type:name:actions", s))
	}
	a := Access{Type: s[:i], Name: s[i+1 : j]}
	if a.Type == "" || a.Name == "" {
		return Access{}, errdefs.InvalidArgument(fmt.Errorf("scope %q: empty type or name", s))
	}
	for act := range strings.SplitSeq(s[j+1:], ",") {
		if act = strings.TrimSpace(act); act != "" && !slices.Contains(a.Actions, act) {
			a.Actions = append(a.Actions, act)
		}
	}
	return a, nil
}

// fail answers an error in Harbor's shape.
func (s *Service) fail(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "UNKNOWN"
	switch {
	case errdefs.IsUnauthorized(err):
		status, code = http.StatusUnauthorized, "UNAUTHORIZED"
		w.Header().Set("WWW-Authenticate", `Basic realm="harbor"`)
	case errors.Is(err, errdefs.ErrThrottled):
		status, code = http.StatusTooManyRequests, "TOO_MANY_REQUEST"
		var ra interface{ RetryAfterSeconds() int }
		if errors.As(err, &ra) {
			w.Header().Set("Retry-After", strconv.Itoa(ra.RetryAfterSeconds()))
		}
	case errdefs.IsInvalidArgument(err):
		status, code = http.StatusBadRequest, "BAD_REQUEST"
	case errors.Is(err, errdefs.ErrUnsupported):
		status, code = http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED"
	case errors.Is(err, errdefs.ErrUnavailable) && public(err):
		// An identity source that is down says so (503), not a 500.
		status, code = http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"
	}
	msg := err.Error()
	if status >= 500 && !public(err) {
		s.log.Error("token service", "error", err)
		msg = "internal server error"
	}
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// public reports an error whose message is meant for the client
// (identity.UnavailableError).
func public(err error) bool {
	var p interface{ Public() bool }
	return errors.As(err, &p) && p.Public()
}
