package registry

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/errdefs"
)

// AuthConfig configures authentication and access.
type AuthConfig struct {
	// Htpasswd is the content of an htpasswd file with bcrypt entries
	// (htpasswd -B); other hash kinds are refused.
	Htpasswd []byte
	// Token enables the Docker token flow: clients trade credentials for
	// short-lived signed tokens at TokenPath, and the API takes those
	// tokens only (basic credentials are refused with the challenge that
	// sends clients to TokenPath). Without it, clients send basic
	// credentials on every request.
	Token *TokenConfig
	// AnonymousRead lets callers without credentials pull from every
	// repository and list the catalog.
	AnonymousRead bool
	// Rules grant actions to users on repositories. Without rules, every
	// authenticated user may pull, push and delete everywhere.
	Rules []AccessRule
}

// AccessRule grants actions ("pull", "push", "delete") on the repositories
// matching any of the patterns to the users listed ("*": any authenticated
// user). A pattern is a path.Match pattern ("team/*"), "prefix/**" for a
// whole subtree, or "**" for everything.
type AccessRule struct {
	Users        []string `yaml:"users"`
	Repositories []string `yaml:"repositories"`
	Actions      []string `yaml:"actions"`
}

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

// principal is who a request comes from, and what it may do.
type principal struct {
	user      string
	anonymous bool
	open      bool    // no authentication configured: everything allowed
	granted   []Scope // token flow: exactly what the token grants
	tokenAuth bool
}

// Auth authenticates requests and decides access.
type Auth struct {
	log    *slog.Logger
	users  atomic.Pointer[map[string][]byte] // bcrypt hashes; replaced by ReloadHtpasswd
	anon   bool
	rules  []AccessRule
	tokens *tokenIssuer

	mu    sync.Mutex
	cache map[string]cachedLogin // sha256(user:password) of recent good logins of the current users

	dummyOnce sync.Once
	dummy     []byte
}

type cachedLogin struct {
	user  string
	until time.Time
}

// loginCacheTTL is how long a verified password is remembered, so that
// bcrypt (deliberately slow) runs once per client session, not per request.
const loginCacheTTL = 5 * time.Minute

// NewAuth returns an Auth for the configuration.
func NewAuth(c AuthConfig, log *slog.Logger) (*Auth, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	users, err := parseHtpasswd(c.Htpasswd, log)
	if err != nil {
		return nil, err
	}
	for i, r := range c.Rules {
		for _, a := range r.Actions {
			if a != "pull" && a != "push" && a != "delete" && a != "*" {
				return nil, errdefs.InvalidArgument(fmt.Errorf("access rule %d: action %q is not pull, push, delete or *", i, a))
			}
		}
		for _, p := range r.Repositories {
			if _, err := path.Match(p, ""); err != nil {
				return nil, errdefs.InvalidArgument(fmt.Errorf("access rule %d: pattern %q: %w", i, p, err))
			}
		}
	}
	a := &Auth{log: log, anon: c.AnonymousRead, rules: c.Rules, cache: map[string]cachedLogin{}}
	a.users.Store(&users)
	if c.Token != nil {
		if a.tokens, err = newTokenIssuer(*c.Token); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// parseHtpasswd reads "user:hash" lines, keeping bcrypt entries.
func parseHtpasswd(b []byte, log *slog.Logger) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		user, hash, ok := strings.Cut(l, ":")
		if !ok || user == "" {
			return nil, errdefs.InvalidArgument(fmt.Errorf("htpasswd line %d: want user:hash", line))
		}
		if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
			log.Warn("htpasswd: skipping a user whose password is not bcrypt-hashed (use htpasswd -B)", "user", user, "line", line)
			continue
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("htpasswd line %d (user %s): %w", line, user, err))
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	return users, nil
}

// ReadHtpasswd reads an htpasswd file for AuthConfig.
func ReadHtpasswd(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

// login checks a user's password.
func (a *Auth) login(user, pass string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	k := string(key[:])
	a.mu.Lock()
	c, ok := a.cache[k]
	a.mu.Unlock()
	if ok && c.user == user && time.Now().Before(c.until) {
		return true
	}
	users := a.users.Load()
	hash, ok := (*users)[user]
	if !ok {
		// Spend the same time as a real check, so a probe cannot tell
		// users that exist.
		bcrypt.CompareHashAndPassword(a.dummyHash(), []byte(pass))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.cache) > 10000 {
		clear(a.cache)
	}
	// Remembered only if the users did not change meanwhile (a reload
	// clears the cache, and must not be undone by a check of the old).
	if a.users.Load() == users {
		a.cache[k] = cachedLogin{user: user, until: time.Now().Add(loginCacheTTL)}
	}
	a.mu.Unlock()
	return true
}

// HtpasswdChange says what a reload of the htpasswd file changed.
type HtpasswdChange struct {
	Users   int // users now
	Added   int // users new in the file
	Removed int // users gone from it
	Changed int // users whose entry (password hash) changed
}

func (c HtpasswdChange) String() string {
	s := fmt.Sprintf("%d users (+%d -%d", c.Users, c.Added, c.Removed)
	if c.Changed > 0 {
		s += fmt.Sprintf(", %d changed", c.Changed)
	}
	return s + ")"
}

// Users is how many users the htpasswd file gave.
func (a *Auth) Users() int { return len(*a.users.Load()) }

// ReloadHtpasswd replaces the users with those of htpasswd, for requests
// from now on (connections stay open; remembered logins are forgotten). A
// file that does not parse changes nothing.
func (a *Auth) ReloadHtpasswd(htpasswd []byte) (HtpasswdChange, error) {
	users, err := parseHtpasswd(htpasswd, a.log)
	if err != nil {
		return HtpasswdChange{}, err
	}
	a.mu.Lock()
	old := *a.users.Load()
	a.users.Store(&users)
	clear(a.cache)
	a.mu.Unlock()
	c := HtpasswdChange{Users: len(users)}
	for u, h := range users {
		switch oh, ok := old[u]; {
		case !ok:
			c.Added++
		case !bytes.Equal(oh, h):
			c.Changed++
		}
	}
	for u := range old {
		if _, ok := users[u]; !ok {
			c.Removed++
		}
	}
	return c, nil
}

// dummyHash is a bcrypt hash of nothing in particular, at the cost of the
// real entries, made once when first needed.
func (a *Auth) dummyHash() []byte {
	a.dummyOnce.Do(func() {
		cost := bcrypt.DefaultCost
		for _, h := range *a.users.Load() {
			if c, err := bcrypt.Cost(h); err == nil {
				cost = c
			}
			break
		}
		a.dummy, _ = bcrypt.GenerateFromPassword([]byte("lading-no-such-user"), cost)
	})
	return a.dummy
}

// ruleAllows reports whether the ACL lets user (authenticated) do action on
// repo.
func (a *Auth) ruleAllows(user, repo, action string) bool {
	if len(a.rules) == 0 {
		return true
	}
	for _, r := range a.rules {
		if !slices.Contains(r.Users, user) && !slices.Contains(r.Users, "*") {
			continue
		}
		if !slices.Contains(r.Actions, action) && !slices.Contains(r.Actions, "*") {
			continue
		}
		for _, p := range r.Repositories {
			if matchRepo(p, repo) {
				return true
			}
		}
	}
	return false
}

func matchRepo(pattern, repo string) bool {
	if pattern == "**" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		return repo == prefix || strings.HasPrefix(repo, prefix+"/")
	}
	ok, _ := path.Match(pattern, repo)
	return ok
}

// may reports whether p may do action on repo ("catalog" for the catalog).
func (a *Auth) may(p principal, repo, action string) bool {
	if p.open {
		return true
	}
	if p.tokenAuth {
		for _, g := range p.granted {
			if action == "catalog" && g.Type == "registry" && g.Name == "catalog" && slices.Contains(g.Actions, "*") {
				return true
			}
			if g.Type == "repository" && g.Name == repo && slices.Contains(g.Actions, action) {
				return true
			}
		}
		return false
	}
	if p.anonymous {
		return a.anon && (action == "pull" || action == "catalog")
	}
	if action == "catalog" {
		return true // the listing is filtered by pull access
	}
	return a.ruleAllows(p.user, repo, action)
}

// grant is what a token for user (or anonymous) may carry for a requested
// scope: the requested actions the caller is allowed.
func (a *Auth) grant(user string, anonymous bool, s Scope) Scope {
	out := Scope{Type: s.Type, Name: s.Name}
	p := principal{user: user, anonymous: anonymous}
	switch s.Type {
	case "repository":
		if CheckRepository(s.Name) != nil {
			return out
		}
		for _, act := range s.Actions {
			acts := []string{act}
			if act == "*" {
				acts = []string{"pull", "push", "delete"}
			}
			for _, x := range acts {
				if a.may(p, s.Name, x) && !slices.Contains(out.Actions, x) {
					out.Actions = append(out.Actions, x)
				}
			}
		}
	case "registry":
		if s.Name == "catalog" && slices.Contains(s.Actions, "*") && a.may(p, "", "catalog") {
			out.Actions = []string{"*"}
		}
	}
	return out
}

// allowed reports whether p may do action on repo.
func (r *Registry) allowed(p principal, repo, action string) bool {
	if r.auth == nil {
		return true
	}
	return r.auth.may(p, repo, action)
}

// readable reports whether p's user may read repo by the access rules,
// also when p holds a token whose scopes do not name repo. It decides what
// the catalog lists (a catalog token names only the catalog) and where a
// blob may be mounted from (clients ask for a token scoped to the target
// repository only).
func (r *Registry) readable(p principal, repo string) bool {
	if r.auth == nil || p.open {
		return true
	}
	if p.tokenAuth {
		p = principal{user: p.user, anonymous: p.user == ""}
	}
	return r.auth.may(p, repo, "pull")
}

// identify reads the credentials of a request. A request without any is
// anonymous; wrong credentials are an error.
func (a *Auth) identify(req *http.Request) (principal, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return principal{anonymous: true}, nil
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		if a.tokens != nil {
			// In token mode basic credentials go to the token
			// endpoint only; the API takes the tokens it issues.
			return principal{}, errdefs.Unauthorized(errors.New("this registry takes bearer tokens; trade basic credentials for one at " + TokenPath))
		}
		user, pass, ok := req.BasicAuth()
		if !ok || !a.login(user, pass) {
			return principal{}, errdefs.Unauthorized(errors.New("invalid username or password"))
		}
		return principal{user: user}, nil
	case "bearer":
		if a.tokens == nil {
			return principal{}, errdefs.Unauthorized(errors.New("bearer tokens are not enabled on this registry"))
		}
		cl, err := a.tokens.verify(strings.TrimSpace(rest))
		if err != nil {
			return principal{}, errdefs.Unauthorized(err)
		}
		return principal{user: cl.Subject, anonymous: cl.Subject == "", granted: cl.Access, tokenAuth: true}, nil
	}
	return principal{}, errdefs.Unauthorized(fmt.Errorf("authorization scheme %q not supported", scheme))
}

// check authenticates the request and checks it may do what need says. It
// answers 401 (with a challenge) or 403 itself and returns a non-nil error
// then. action is the route's action ("" for /v2/).
func (a *Auth) check(w http.ResponseWriter, req *http.Request, need []Scope, action string) (principal, *apiError) {
	p, err := a.identify(req)
	if err != nil {
		// A bad token is an invalid_token; other credentials get the
		// plain challenge, which clients follow.
		tokenErr := ""
		if scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "bearer") {
			tokenErr = "invalid_token"
		}
		a.challenge(w, req, need, tokenErr)
		return principal{}, &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, err: err}
	}
	if action == "" {
		// /v2/: the version check wants a 401 from an anonymous
		// caller, so clients learn how to authenticate.
		if p.anonymous && !p.tokenAuth {
			a.challenge(w, req, nil, "")
			return principal{}, &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, err: errors.New("authentication required")}
		}
		return p, nil
	}
	// Anonymous reads need no token when they are allowed anyway.
	if p.anonymous && !p.tokenAuth && a.anon && (action == "pull" || action == "catalog") {
		return p, nil
	}
	for _, s := range need {
		for _, act := range s.Actions {
			target := s.Name
			if s.Type == "registry" {
				act = "catalog"
			}
			if a.may(p, target, act) {
				continue
			}
			if (p.anonymous && !p.tokenAuth) || p.tokenAuth {
				// Ask for (more) credentials or a token with
				// this scope.
				a.challenge(w, req, need, "insufficient_scope")
				return principal{}, &apiError{status: http.StatusUnauthorized, code: codeUnauthorized,
					err: fmt.Errorf("authentication required to %s %s", act, target), detail: need}
			}
			return principal{}, &apiError{status: http.StatusForbidden, code: codeDenied,
				err: fmt.Errorf("user %s may not %s %s", p.user, act, target), detail: need}
		}
	}
	return p, nil
}

// challenge sets WWW-Authenticate for a 401.
func (a *Auth) challenge(w http.ResponseWriter, req *http.Request, need []Scope, tokenErr string) {
	if a.tokens == nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="lading"`)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Bearer realm=%q,service=%q`, a.tokens.realmFor(req), a.tokens.service)
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
