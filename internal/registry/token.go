package registry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// TokenPath is where the registry issues tokens in the Docker token flow.
const TokenPath = "/auth/token"

// TokenConfig configures the token flow.
type TokenConfig struct {
	// Service is the audience of the tokens ("service" in the challenge).
	// Default "lading".
	Service string
	// Realm is the absolute URL of the token endpoint that challenges
	// name. Default: TokenPath on the scheme and host of each request.
	Realm string
	// Key signs tokens (HMAC-SHA256), at least 32 bytes. Registry
	// processes that share it accept each other's tokens. Default: a
	// random key per process (tokens die with it).
	Key []byte
	// TTL is a token's lifetime. Default 5 minutes.
	TTL time.Duration
}

// tokenIssuer signs and verifies tokens: JWTs (RFC 7519) signed with
// HS256, carrying the granted scopes in an "access" claim as Docker's token
// specification does. Only the registry that issues them reads them, so a
// shared-secret signature is enough, and the standard library suffices.
type tokenIssuer struct {
	service string
	realm   string
	key     []byte
	ttl     time.Duration
	now     func() time.Time
}

type tokenClaims struct {
	Issuer    string  `json:"iss"`
	Subject   string  `json:"sub"`
	Audience  string  `json:"aud"`
	Expiry    int64   `json:"exp"`
	NotBefore int64   `json:"nbf"`
	IssuedAt  int64   `json:"iat"`
	ID        string  `json:"jti"`
	Access    []Scope `json:"access"`
}

const tokenIssuerName = "lading"

// tokenLeeway tolerates clock skew between registry processes.
const tokenLeeway = 30 * time.Second

var tokenHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

func newTokenIssuer(c TokenConfig) (*tokenIssuer, error) {
	t := &tokenIssuer{service: c.Service, realm: c.Realm, key: c.Key, ttl: c.TTL, now: time.Now}
	if t.service == "" {
		t.service = "lading"
	}
	if t.ttl <= 0 {
		t.ttl = 5 * time.Minute
	}
	if t.key == nil {
		t.key = make([]byte, 32)
		rand.Read(t.key)
	}
	if len(t.key) < 32 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("token key: %d bytes, want at least 32", len(t.key)))
	}
	return t, nil
}

func (t *tokenIssuer) sign(signingInput string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(signingInput))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue makes a token for subject (empty: anonymous) with access.
func (t *tokenIssuer) issue(subject string, access []Scope) (string, tokenClaims) {
	now := t.now()
	var id [12]byte
	rand.Read(id[:])
	cl := tokenClaims{
		Issuer:    tokenIssuerName,
		Subject:   subject,
		Audience:  t.service,
		Expiry:    now.Add(t.ttl).Unix(),
		NotBefore: now.Add(-tokenLeeway).Unix(),
		IssuedAt:  now.Unix(),
		ID:        hex.EncodeToString(id[:]),
		Access:    access,
	}
	payload, _ := json.Marshal(cl)
	in := tokenHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return in + "." + t.sign(in), cl
}

// verify checks a token's signature, audience and lifetime and returns its
// claims.
func (t *tokenIssuer) verify(tok string) (tokenClaims, error) {
	if len(tok) > 64<<10 {
		return tokenClaims{}, errors.New("token too long")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return tokenClaims{}, errors.New("malformed token")
	}
	if parts[0] != tokenHeader {
		// Only our own header (alg HS256) is accepted: no "none", no
		// algorithm confusion.
		return tokenClaims{}, errors.New("token header not issued by this registry")
	}
	want := t.sign(parts[0] + "." + parts[1])
	if !hmac.Equal([]byte(want), []byte(parts[2])) {
		return tokenClaims{}, errors.New("token signature invalid")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return tokenClaims{}, errors.New("malformed token payload")
	}
	var cl tokenClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return tokenClaims{}, errors.New("malformed token claims")
	}
	now := t.now()
	switch {
	case cl.Issuer != tokenIssuerName:
		return tokenClaims{}, errors.New("token issuer unknown")
	case cl.Audience != t.service:
		return tokenClaims{}, fmt.Errorf("token is for service %q, not %q", cl.Audience, t.service)
	case now.Unix() > cl.Expiry+int64(tokenLeeway/time.Second):
		return tokenClaims{}, errors.New("token expired")
	case now.Unix() < cl.NotBefore-int64(tokenLeeway/time.Second):
		return tokenClaims{}, errors.New("token not valid yet")
	}
	return cl, nil
}

func (t *tokenIssuer) realmFor(req *http.Request) string {
	if t.realm != "" {
		return t.realm
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + req.Host + TokenPath
}

type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
	Scope       string `json:"scope,omitempty"`
}

// serveToken is the token endpoint: GET with optional basic credentials
// (Docker's token flow), or POST of an OAuth2 password grant (what
// containerd tries first).
func (a *Auth) serveToken(w *recorder, req *http.Request, info *reqInfo) {
	fail := func(status int, code string, err error) {
		ae := &apiError{status: status, code: code, err: err}
		info.err = ae
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="lading"`)
		}
		writeError(w, req, ae)
	}
	var user, pass, service string
	var scopes []string
	hasCreds := false
	switch req.Method {
	case http.MethodGet:
		q := req.URL.Query()
		service = q.Get("service")
		for _, s := range q["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
		user, pass, hasCreds = req.BasicAuth()
		if !hasCreds && req.Header.Get("Authorization") != "" {
			fail(http.StatusUnauthorized, codeUnauthorized, errors.New("the token endpoint takes basic credentials"))
			return
		}
	case http.MethodPost:
		req.Body = http.MaxBytesReader(w, req.Body, 64<<10)
		if err := req.ParseForm(); err != nil {
			fail(http.StatusBadRequest, codeUnsupported, fmt.Errorf("token request form: %w", err))
			return
		}
		if gt := req.PostForm.Get("grant_type"); gt != "password" {
			fail(http.StatusBadRequest, codeUnsupported, fmt.Errorf("grant_type %q not supported; use password, or GET with basic credentials", gt))
			return
		}
		service = req.PostForm.Get("service")
		scopes = strings.Fields(req.PostForm.Get("scope"))
		user, pass = req.PostForm.Get("username"), req.PostForm.Get("password")
		hasCreds = true
	default:
		w.Header().Set("Allow", "GET, POST")
		fail(http.StatusMethodNotAllowed, codeUnsupported, fmt.Errorf("method %s", req.Method))
		return
	}
	if service != "" && service != a.tokens.service {
		fail(http.StatusBadRequest, codeUnsupported, fmt.Errorf("service %q is not %q", service, a.tokens.service))
		return
	}
	if hasCreds && !a.login(user, pass) {
		fail(http.StatusUnauthorized, codeUnauthorized, errors.New("invalid username or password"))
		return
	}
	if !hasCreds {
		user = ""
	}
	info.user = user
	var access []Scope
	var granted []string
	for _, s := range scopes {
		sc, err := ParseScope(s)
		if err != nil {
			fail(http.StatusBadRequest, codeUnsupported, err)
			return
		}
		g := a.grant(user, !hasCreds, sc)
		if len(g.Actions) > 0 {
			access = append(access, g)
			granted = append(granted, g.String())
		}
	}
	tok, cl := a.tokens.issue(user, access)
	b, _ := json.Marshal(tokenResponse{
		Token:       tok,
		AccessToken: tok,
		ExpiresIn:   int(cl.Expiry - cl.IssuedAt),
		IssuedAt:    time.Unix(cl.IssuedAt, 0).UTC().Format(time.RFC3339),
		Scope:       strings.Join(granted, " "),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
