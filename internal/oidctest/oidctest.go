// Package oidctest runs a real OpenID Provider in the test's process:
// zitadel/oidc's op package (the provider: discovery, authorization with
// PKCE, token, userinfo, keys, refresh) over the in-memory storage that
// ships with it, served over TLS with a test CA (package testca) on
// 127.0.0.1. Users have groups (a "groups" claim in the ID token and at
// the userinfo endpoint) and can be disabled, after which the provider
// refuses their userinfo and their refresh tokens.
//
// A test drives a browser through the authorization-code flow
// (Server.Authorize), and may tamper with the ID tokens the token
// endpoint returns (Server.Tamper), re-signing them with the provider's
// key or another, to show what a relying party must refuse.
package oidctest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/lading-dev/lading/internal/testca"
)

// User is a user of the provider.
type User struct {
	ID, Username, Password, Name, Email string
	Groups                              []string
}

// Server is a running provider.
type Server struct {
	// URL is the issuer, https://127.0.0.1:PORT.
	URL string
	CA  *testca.CA

	st      *store
	clients map[string]*storage.Client
	http    *httptest.Server

	mu     sync.Mutex
	tamper func(claims map[string]any) (foreignKey bool)
}

// store is the example storage with groups and disabled users.
type store struct {
	*storage.Storage
	users *userStore
}

type userStore struct {
	mu       sync.Mutex
	users    map[string]*User // by id
	disabled map[string]bool
}

func (u *userStore) GetUserByID(id string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	x, ok := u.users[id]
	if !ok || u.disabled[id] {
		return nil
	}
	return &storage.User{ID: x.ID, Username: x.Username, Password: x.Password, FirstName: x.Name, Email: x.Email, EmailVerified: true}
}

func (u *userStore) GetUserByUsername(name string) *storage.User {
	u.mu.Lock()
	var id string
	for _, x := range u.users {
		if x.Username == name {
			id = x.ID
		}
	}
	u.mu.Unlock()
	return u.GetUserByID(id)
}

func (u *userStore) ExampleClientID() string { return "service" }

func (u *userStore) groups(id string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if x, ok := u.users[id]; ok && !u.disabled[id] {
		return append([]string{}, x.Groups...)
	}
	return nil
}

// SetUserinfoFromRequest adds the groups to ID tokens.
func (s *store) SetUserinfoFromRequest(ctx context.Context, ui *zoidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, r, scopes); err != nil {
		return err
	}
	ui.AppendClaims("groups", s.users.groups(r.GetSubject()))
	return nil
}

// SetUserinfoFromToken adds the groups to the userinfo endpoint's answer.
func (s *store) SetUserinfoFromToken(ctx context.Context, ui *zoidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	ui.AppendClaims("groups", s.users.groups(ui.Subject))
	return nil
}

// TokenRequestByRefreshToken refuses the refresh tokens of disabled users.
func (s *store) TokenRequestByRefreshToken(ctx context.Context, refreshToken string) (op.RefreshTokenRequest, error) {
	r, err := s.Storage.TokenRequestByRefreshToken(ctx, refreshToken)
	if err != nil {
		return nil, err
	}
	if s.users.GetUserByID(r.GetSubject()) == nil {
		return nil, fmt.Errorf("the user of this refresh token is disabled")
	}
	return r, nil
}

// Start starts a provider with users; it stops when the test ends.
func Start(t testing.TB, users ...User) *Server {
	t.Helper()
	us := &userStore{users: map[string]*User{}, disabled: map[string]bool{}}
	for i := range users {
		u := users[i]
		us.users[u.ID] = &u
	}
	s := &Server{CA: testca.New(t, "lading test OIDC CA"), clients: map[string]*storage.Client{}}
	s.st = &store{Storage: storage.NewStorageWithClients(us, s.clients), users: us}
	s.http = httptest.NewUnstartedServer(nil)
	s.http.TLS = &tls.Config{Certificates: []tls.Certificate{s.CA.Server(t).TLS}}
	s.http.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.http.StartTLS()
	t.Cleanup(s.http.Close)
	s.URL = "https://" + s.http.Listener.Addr().String()
	var key [32]byte
	rand.Read(key[:])
	provider, err := op.NewOpenIDProvider(s.URL, &op.Config{CryptoKey: key, CodeMethodS256: true, AuthMethodPost: true, GrantTypeRefreshToken: true}, s.st,
		op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login/username", s.login)
	mux.Handle("/", s.tampering(provider))
	s.http.Config.Handler = mux
	return s
}

// Client registers a web client (client_secret_basic, PKCE allowed,
// refresh tokens) that may redirect to redirectURIs. Register clients
// before the flows that use them start.
func (s *Server) Client(id, secret string, redirectURIs ...string) {
	s.clients[id] = storage.WebClient(id, secret, redirectURIs...)
}

// Disable disables a user: the provider refuses their userinfo and their
// refresh tokens from now on. Enable takes them back.
func (s *Server) Disable(id string) { s.setDisabled(id, true) }

// Enable re-enables a user.
func (s *Server) Enable(id string) { s.setDisabled(id, false) }

func (s *Server) setDisabled(id string, d bool) {
	s.st.users.mu.Lock()
	defer s.st.users.mu.Unlock()
	s.st.users.disabled[id] = d
}

// SetGroups changes a user's groups.
func (s *Server) SetGroups(id string, groups ...string) {
	s.st.users.mu.Lock()
	defer s.st.users.mu.Unlock()
	s.st.users.users[id].Groups = groups
}

// login is the provider's login page: GET shows the form, POST checks
// the credentials and sends the browser on to the authorization callback.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	id := r.FormValue("authRequestID")
	if r.Method == http.MethodGet {
		fmt.Fprintf(w, `<form method="POST"><input name="authRequestID" value="%s"><input name="username"><input name="password" type="password"></form>`, id)
		return
	}
	if err := s.st.CheckUsernamePassword(r.FormValue("username"), r.FormValue("password"), id); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, s.URL+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
}

// Browser returns an HTTP client with cookies that trusts the provider's
// CA and does not follow redirects.
func (s *Server) Browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CA.Pool()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Authorize drives b from start (the relying party's login URL) through
// the provider's login as user, and returns the URL the provider sends
// the browser back to (the relying party's callback), unvisited.
func (s *Server) Authorize(t testing.TB, b *http.Client, start, username, password string) *url.URL {
	t.Helper()
	next := start
	for range 10 {
		resp, err := b.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Request.URL.String(), s.URL+"/login/username") {
			return s.submit(t, b, resp.Request.URL.Query().Get("authRequestID"), username, password)
		}
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET %s: %s, want a redirect on to the provider's login", next, resp.Status)
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		next = loc.String()
	}
	t.Fatalf("too many redirects from %s", start)
	return nil
}

func (s *Server) submit(t testing.TB, b *http.Client, id, username, password string) *url.URL {
	t.Helper()
	resp, err := b.PostForm(s.URL+"/login/username", url.Values{"authRequestID": {id}, "username": {username}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for range 5 {
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("provider login as %s: %s", username, resp.Status)
		}
		if !strings.HasPrefix(loc.String(), s.URL) {
			return loc
		}
		if resp, err = b.Get(loc.String()); err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	t.Fatal("the provider did not send the browser back")
	return nil
}

// Tamper makes the token endpoint rewrite the ID tokens it returns: fn
// changes the claims and says whether to sign them with a key of its own
// (under the provider's key id) rather than the provider's. nil stops.
func (s *Server) Tamper(fn func(claims map[string]any) (foreignKey bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tamper = fn
}

func (s *Server) tampering(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		fn := s.tamper
		s.mu.Unlock()
		if fn == nil || r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var m map[string]any
		if rec.Code == http.StatusOK && json.Unmarshal(body, &m) == nil {
			if raw, ok := m["id_token"].(string); ok {
				if forged, err := s.forge(r.Context(), raw, fn); err == nil {
					m["id_token"] = forged
					body, _ = json.Marshal(m)
				}
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

// forge rewrites a token's claims and signs it again.
func (s *Server) forge(ctx context.Context, raw string, fn func(map[string]any) bool) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	claims := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return "", err
	}
	foreign := fn(claims)
	sk, err := s.st.SigningKey(ctx)
	if err != nil {
		return "", err
	}
	key := sk.Key()
	if foreign {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return "", err
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: sk.SignatureAlgorithm(), Key: jose.JSONWebKey{Key: key, KeyID: sk.ID()}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
