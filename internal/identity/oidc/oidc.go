// Package oidc logs lading's users in through an OpenID Provider
// (auth_mode oidc_auth) as Harbor does: the web login goes through the
// provider with the authorization-code flow (/c/oidc/login -> provider ->
// /c/oidc/callback), and each OIDC user has a CLI secret that registry
// clients and the API take as the password.
//
// # The web login
//
// /c/oidc/login stores a pending login (table oidc_logins, keyed by the
// SHA-256 of a random cookie given to the browser) with a random state,
// nonce and PKCE verifier (S256), and redirects to the provider. The
// callback takes the pending login of its cookie, once (a replayed
// callback finds none), checks the state, trades the code for tokens with
// the verifier, verifies the ID token (signature by the provider's keys,
// issuer, audience = oidc_client_id, expiry) and its nonce, asks the
// userinfo endpoint, and merges both (the subjects must agree). The user
// is found by subject and issuer; a new one is onboarded at once
// (oidc_auto_onboard) or after choosing a name (/c/oidc/onboard). Their
// groups (oidc_groups_claim, filtered by the oidc_group_filter regular
// expression) and the administrator role (oidc_admin_group) are set at
// every login. Nothing is created when anything fails.
//
// # The CLI secret
//
// A password for docker login, the token service and the API: set by its
// owner or an administrator (PUT /users/{id}/cli_secret), shown to its
// owner only (oidc_user_meta in /users/current). Each use asks the
// provider again, as Harbor does: the stored tokens are refreshed when
// expired and the userinfo endpoint is asked, so a user the provider
// disabled (their refresh refused) or whose groups changed is seen at the
// next token.
//
// # Tables (owner "identity/oidc")
//
//	oidc_users   user_id, subiss (subject + issuer, unique), secret and
//	             token (AES-256-GCM sealed), created, updated
//	oidc_logins  id (sha256 of the cookie), state, nonce, verifier,
//	             redirect, pending (sealed claims awaiting a name),
//	             expires
//	oidc_keys    the sealing key, made at first use; shared by replicas
//
// The sealing key lives in the same database, so sealing protects the
// secrets from a leaked row or log, not from a leaked database (Harbor
// keeps its key in a file beside the database, to the same effect).
package oidc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the OIDC tables (after identity's).
var Migrations = []sqldb.Migration{{Owner: "identity/oidc", Name: "OIDC users, pending logins, sealing key", SQL: []string{
	`CREATE TABLE oidc_users (
		user_id {{int}} PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
		subiss {{text}} NOT NULL UNIQUE,
		secret {{text}} NOT NULL,
		token {{text}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE oidc_logins (
		id {{text}} PRIMARY KEY,
		state {{text}} NOT NULL,
		nonce {{text}} NOT NULL,
		verifier {{text}} NOT NULL,
		redirect {{text}} NOT NULL,
		pending {{text}} NOT NULL DEFAULT '',
		created {{int}} NOT NULL,
		expires {{int}} NOT NULL)`,
	`CREATE INDEX oidc_logins_expires ON oidc_logins (expires)`,
	`CREATE TABLE oidc_keys (
		id {{int}} PRIMARY KEY,
		key {{bytes}} NOT NULL,
		created {{int}} NOT NULL)`,
}}}

// Source is the name of the OIDC source in users.source.
const Source = "oidc"

// Config is Harbor's OIDC settings.
type Config struct {
	Name         string
	Endpoint     string // oidc_endpoint: the issuer URL
	ClientID     string
	ClientSecret string
	Scopes       []string
	GroupsClaim  string
	AdminGroup   string
	GroupFilter  string
	UserClaim    string
	VerifyCert   bool
	AutoOnboard  bool
	ExtraParams  map[string]string
}

// ConfigOf reads the oidc_* settings from the settings' values.
func ConfigOf(v map[string]any) Config {
	str := func(n string) string { s, _ := v[n].(string); return strings.TrimSpace(s) }
	flag := func(n string) bool { b, _ := v[n].(bool); return b }
	c := Config{Name: str("oidc_name"), Endpoint: str("oidc_endpoint"), ClientID: str("oidc_client_id"),
		GroupsClaim: str("oidc_groups_claim"), AdminGroup: str("oidc_admin_group"), GroupFilter: str("oidc_group_filter"),
		UserClaim: str("oidc_user_claim"), VerifyCert: flag("oidc_verify_cert"), AutoOnboard: flag("oidc_auto_onboard")}
	c.ClientSecret, _ = v["oidc_client_secret"].(string)
	for s := range strings.SplitSeq(str("oidc_scope"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Scopes = append(c.Scopes, s)
		}
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{gooidc.ScopeOpenID}
	}
	if p := str("oidc_extra_redirect_parms"); p != "" {
		json.Unmarshal([]byte(p), &c.ExtraParams)
	}
	return c
}

// Service is the OIDC relying party and the CLI secrets' keeper.
type Service struct {
	db       *sqldb.DB
	ids      *identity.Service
	access   *access.Checker
	audit    *audit.Log
	config   func(context.Context) (Config, Settings, error)
	roots    *x509.CertPool
	log      *slog.Logger
	clients  map[bool]*http.Client            // by oidc_verify_cert: connections are kept
	clock    atomic.Pointer[func() time.Time] // nil: time.Now
	keyMu    sync.Mutex
	key      []byte
	provMu   sync.Mutex
	provider map[string]cachedProvider
}

// Settings are the other settings the service reads.
type Settings struct {
	AuthMode       string
	SessionTimeout time.Duration
}

type cachedProvider struct {
	p  *gooidc.Provider
	at time.Time
}

// Option configures the service.
type Option func(*Service)

// WithRootCAs verifies the provider's certificate with roots instead of
// the system's (give a pool that holds both to trust both).
func WithRootCAs(roots *x509.CertPool) Option { return func(s *Service) { s.roots = roots } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns the service; config returns the current settings. The
// service is an identity source (Authenticate) and onboards users into
// identity: Attach the identity service before use.
func New(db *sqldb.DB, checker *access.Checker, log *audit.Log, config func(context.Context) (Config, Settings, error), opts ...Option) *Service {
	s := &Service{db: db, access: checker, audit: log, config: config, log: slog.New(slog.DiscardHandler),
		provider: map[string]cachedProvider{}, clients: map[bool]*http.Client{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Attach gives the service the identity service it onboards users into.
func (s *Service) Attach(ids *identity.Service) { s.ids = ids }

// SetClock replaces the clock that decides whether stored tokens have
// expired (tests of the refresh).
func (s *Service) SetClock(now func() time.Time) { s.clock.Store(&now) }

// now is the service's clock: time.Now unless a test set another.
func (s *Service) now() time.Time {
	if c := s.clock.Load(); c != nil {
		return (*c)()
	}
	return time.Now()
}

// settings returns the configuration, refusing when OIDC is not the auth
// mode or is not configured.
func (s *Service) settings(ctx context.Context) (Config, Settings, error) {
	cfg, st, err := s.config(ctx)
	if err != nil {
		return cfg, st, err
	}
	if st.AuthMode != "oidc_auth" {
		return cfg, st, errdefs.FailedPrecondition(fmt.Errorf("auth mode: %s is not OIDC based", st.AuthMode))
	}
	if cfg.Endpoint == "" || cfg.ClientID == "" {
		return cfg, st, errdefs.FailedPrecondition(errors.New("OIDC is not configured: oidc_endpoint and oidc_client_id are needed"))
	}
	return cfg, st, nil
}

// httpClient is the client that talks to the provider: bounded in time,
// verifying its certificate unless oidc_verify_cert is off.
func (s *Service) httpClient(verify bool) *http.Client {
	s.provMu.Lock()
	defer s.provMu.Unlock()
	if s.clients[verify] == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.roots, InsecureSkipVerify: !verify}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		s.clients[verify] = &http.Client{Transport: tr, Timeout: 15 * time.Second}
	}
	return s.clients[verify]
}

// providerFor discovers the provider (cached five minutes: the discovery
// document, not any login; the signing keys are refetched by go-oidc when
// a token names a key it does not know).
func (s *Service) providerFor(ctx context.Context, cfg Config) (*gooidc.Provider, error) {
	key := fmt.Sprint(cfg.Endpoint, cfg.VerifyCert)
	s.provMu.Lock()
	c, ok := s.provider[key]
	s.provMu.Unlock()
	if ok && time.Since(c.at) < 5*time.Minute {
		return c.p, nil
	}
	p, err := gooidc.NewProvider(s.clientContext(ctx, cfg.VerifyCert), cfg.Endpoint)
	if err != nil {
		// Public: the browser (or the registry client) is told why.
		return nil, &identity.UnavailableError{Source: "oidc", Err: describe(cfg.Endpoint, err)}
	}
	s.provMu.Lock()
	s.provider[key] = cachedProvider{p: p, at: time.Now()}
	s.provMu.Unlock()
	return p, nil
}

func (s *Service) clientContext(ctx context.Context, verify bool) context.Context {
	return gooidc.ClientContext(ctx, s.httpClient(verify))
}

// describe names why the provider could not be reached, naming the
// certificate problem when there is one.
func describe(endpoint string, err error) error {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ua):
		return fmt.Errorf("TLS with the OIDC provider %s failed: its certificate is signed by an unknown authority (trust its CA, or turn oidc_verify_cert off): %w", endpoint, err)
	case errors.As(err, &he):
		return fmt.Errorf("TLS with the OIDC provider %s failed: its certificate is not valid for %s: %w", endpoint, he.Host, err)
	case errors.As(err, &ci):
		return fmt.Errorf("TLS with the OIDC provider %s failed: its certificate is invalid (%s): %w", endpoint, ci.Error(), err)
	case errors.As(err, &ve):
		return fmt.Errorf("TLS with the OIDC provider %s failed: %w", endpoint, err)
	case strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("cannot reach the OIDC provider %s: connection refused", endpoint)
	case strings.Contains(err.Error(), "Client.Timeout") || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the OIDC provider %s did not answer in time: %w", endpoint, err)
	}
	return fmt.Errorf("OIDC discovery at %s failed: %w", endpoint, err)
}

// filterGroups keeps the groups matching oidc_group_filter.
func filterGroups(groups []string, filter string) []string {
	if filter == "" {
		return groups
	}
	re, err := regexp.Compile(filter)
	if err != nil {
		return groups
	}
	var out []string
	for _, g := range groups {
		if re.MatchString(g) {
			out = append(out, g)
		}
	}
	return out
}
