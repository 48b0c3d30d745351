package registry

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Scope is a resource and actions, in the token flow's form
// "repository:team/app:pull,push".
type Scope struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (s Scope) String() string {
	return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// ParseScope parses "type:name:action[,action...]". The name may itself
// hold colons (a registry host with a port), so the type ends at the first
// colon and the actions start after the last.
func ParseScope(s string) (Scope, error) {
	if len(s) > 1024 {
		return Scope{}, errdefs.InvalidArgument(fmt.Errorf("scope %.40q...: too long", s))
	}
	i, j := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
	if i < 0 || i == j {
		return Scope{}, errdefs.InvalidArgument(fmt.Errorf("scope %q: want type:name:actions", s))
	}
	sc := Scope{Type: s[:i], Name: s[i+1 : j]}
	if sc.Type == "" || sc.Name == "" {
		return Scope{}, errdefs.InvalidArgument(fmt.Errorf("scope %q: empty type or name", s))
	}
	for a := range strings.SplitSeq(s[j+1:], ",") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(sc.Actions, a) {
			sc.Actions = append(sc.Actions, a)
		}
	}
	return sc, nil
}

// authenticate reads a request's credentials. A request without any is
// anonymous; wrong credentials are an error.
func (r *Registry) authenticate(req *http.Request) (Subject, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return Subject{}, nil
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		user, pass, ok := req.BasicAuth()
		if !ok {
			return Subject{}, errdefs.Unauthorized(errors.New("malformed basic credentials"))
		}
		return r.gate.Basic(req.Context(), user, pass, req.RemoteAddr)
	case "bearer":
		return r.gate.Bearer(req.Context(), strings.TrimSpace(rest))
	}
	return Subject{}, errdefs.Unauthorized(fmt.Errorf("authorization scheme %q not supported", scheme))
}

// allowedActions returns which of the scope's actions s may do: what its
// token grants, or, without a token, what the Gate allows.
func (r *Registry) allowedActions(req *http.Request, s Subject, sc Scope) ([]string, error) {
	if s.Token {
		var out []string
		for _, g := range s.Access {
			if g.Type != sc.Type || g.Name != sc.Name {
				continue
			}
			for _, a := range sc.Actions {
				if slices.Contains(g.Actions, a) || slices.Contains(g.Actions, "*") {
					out = append(out, a)
				}
			}
		}
		return out, nil
	}
	switch sc.Type {
	case "repository":
		return r.gate.Allowed(req.Context(), s, sc.Name, sc.Actions)
	case "registry":
		ok, err := r.gate.Catalog(req.Context(), s)
		if ok {
			return sc.Actions, err
		}
		return nil, err
	}
	return nil, nil
}

// check authenticates a request and checks it may do what need says. It
// answers 401 (with a challenge), 403, or, for a repository outside any
// existing project, 400 or 404 naming it, itself, and returns a non-nil
// error then. action is the route's action ("" for /v2/).
func (r *Registry) check(w http.ResponseWriter, req *http.Request, need []Scope, action string) (Subject, *apiError) {
	s, err := r.authenticate(req)
	if err != nil {
		if errors.Is(err, errdefs.ErrThrottled) {
			var ra interface{ RetryAfterSeconds() int }
			if errors.As(err, &ra) {
				w.Header().Set("Retry-After", strconv.Itoa(ra.RetryAfterSeconds()))
			}
			return Subject{}, &apiError{status: http.StatusTooManyRequests, code: codeTooManyRequests, err: err}
		}
		if !errdefs.IsUnauthorized(err) {
			return Subject{}, toAPI(err, codes{})
		}
		// A bad token is an invalid_token; other credentials get the
		// plain challenge, which clients follow.
		tokenErr := ""
		if scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "bearer") {
			tokenErr = "invalid_token"
		}
		r.challenge(w, req, need, tokenErr)
		return Subject{}, &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, err: err}
	}
	if action == "" {
		// /v2/: the version check wants a 401 from an anonymous
		// caller, so clients learn how to authenticate.
		if s.Anonymous() && !s.Token {
			r.challenge(w, req, nil, "")
			return Subject{}, &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, err: errors.New("authentication required")}
		}
		return s, nil
	}
	for _, sc := range need {
		got, err := r.allowedActions(req, s, sc)
		if err != nil {
			return Subject{}, r.refusal(err)
		}
		for _, act := range sc.Actions {
			if slices.Contains(got, act) {
				continue
			}
			if sc.Type == "repository" {
				// Say why when the repository cannot exist.
				if _, err := r.gate.Allowed(req.Context(), Subject{Name: s.Name, Identity: s.Identity}, sc.Name, []string{act}); err != nil {
					return Subject{}, r.refusal(err)
				}
			}
			if s.Anonymous() || s.Token {
				// Ask for (more) credentials or a token with
				// this scope.
				r.challenge(w, req, need, "insufficient_scope")
				return Subject{}, &apiError{status: http.StatusUnauthorized, code: codeUnauthorized,
					err: fmt.Errorf("authentication required to %s %s", act, sc.Name), detail: need}
			}
			return Subject{}, &apiError{status: http.StatusForbidden, code: codeDenied,
				err: fmt.Errorf("%s may not %s %s", s.Name, act, sc.Name), detail: need}
		}
	}
	return s, nil
}

// refusal answers a Gate's error about a repository: a name outside any
// project is NAME_INVALID, an unknown project NAME_UNKNOWN.
func (r *Registry) refusal(err error) *apiError {
	switch {
	case errdefs.IsInvalidArgument(err):
		return &apiError{status: http.StatusBadRequest, code: codeNameInvalid, err: err}
	case errdefs.IsNotFound(err):
		return &apiError{status: http.StatusNotFound, code: codeNameUnknown, err: err}
	}
	return toAPI(err, codes{})
}

// readable reports whether s may pull from repo, also when its token does
// not name repo. It decides what the catalog lists (a catalog token names
// only the catalog) and where a blob may be mounted from (clients ask for
// a token scoped to the target repository only).
func (r *Registry) readable(req *http.Request, s Subject, repo string) bool {
	if r.gate == nil {
		return true
	}
	if s.Token {
		for _, g := range s.Access {
			if g.Type == "repository" && g.Name == repo && (slices.Contains(g.Actions, "pull") || slices.Contains(g.Actions, "*")) {
				return true
			}
		}
		s = Subject{Name: s.Name, Identity: s.Identity}
	}
	got, err := r.gate.Allowed(req.Context(), s, repo, []string{"pull"})
	return err == nil && slices.Contains(got, "pull")
}

// challenge sets WWW-Authenticate for a 401: the token service's realm,
// with the scopes the request needs.
func (r *Registry) challenge(w http.ResponseWriter, req *http.Request, need []Scope, tokenErr string) {
	realm, service := r.gate.Challenge(req)
	var b strings.Builder
	fmt.Fprintf(&b, `Bearer realm=%q,service=%q`, realm, service)
	if len(need) > 0 {
		scopes := make([]string, len(need))
		for i, s := range need {
			scopes[i] = s.String()
		}
		fmt.Fprintf(&b, `,scope=%q`, strings.Join(scopes, " "))
	}
	if tokenErr != "" && req.Header.Get("Authorization") != "" {
		fmt.Fprintf(&b, `,error=%q`, tokenErr)
	}
	w.Header().Set("WWW-Authenticate", b.String())
}
