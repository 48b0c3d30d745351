package oidc

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/sqldb"
)

// CallbackPath is where the provider sends the browser back.
const CallbackPath = "/c/oidc/callback"

// loginTTL bounds a pending login.
const loginTTL = 10 * time.Minute

func (s *Service) oauth(cfg Config, p *gooidc.Provider, base string) *oauth2.Config {
	return &oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: strings.TrimSuffix(base, "/") + CallbackPath, Scopes: cfg.Scopes}
}

// LocalPath reports whether redirect is a path on this server (the only
// places a login may send the browser back to).
func LocalPath(redirect string) bool {
	if redirect == "" {
		return true
	}
	u, err := url.Parse(redirect)
	return err == nil && u.Scheme == "" && u.Host == "" && strings.HasPrefix(redirect, "/") &&
		!strings.HasPrefix(redirect, "//") && !strings.HasPrefix(redirect, "/\\") && !strings.ContainsAny(redirect, "\r\n")
}

// Begin starts a web login: it returns the provider's URL to send the
// browser to and the cookie that binds the login to this browser. base
// is lading's external URL (the callback is under it); redirect is where
// to go after the login (a local path).
func (s *Service) Begin(ctx context.Context, base, redirect string) (authURL, cookie string, err error) {
	cfg, _, err := s.settings(ctx)
	if err != nil {
		return "", "", err
	}
	if !LocalPath(redirect) {
		return "", "", errdefs.InvalidArgument(errors.New("cannot redirect to other site"))
	}
	p, err := s.providerFor(ctx, cfg)
	if err != nil {
		return "", "", err
	}
	cookie, state, nonce, verifier := random(32), random(16), random(16), oauth2.GenerateVerifier()
	now := s.db.Now()
	_, err = s.db.Exec(ctx, `INSERT INTO oidc_logins (id, state, nonce, verifier, redirect, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		hashID(cookie), state, nonce, verifier, redirect, sqldb.Nanos(now), sqldb.Nanos(now.Add(loginTTL)))
	if err != nil {
		return "", "", s.db.Wrap("oidc login", err)
	}
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	for k, v := range cfg.ExtraParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return s.oauth(cfg, p, base).AuthCodeURL(state, opts...), cookie, nil
}

// pendingLogin is a row of oidc_logins.
type pendingLogin struct {
	state, nonce, verifier, redirect, pending string
}

// take removes and returns the pending login of a cookie: each is used
// once, whatever the outcome.
func (s *Service) take(ctx context.Context, cookie string) (pendingLogin, error) {
	var l pendingLogin
	var expires int64
	if cookie == "" {
		return l, errdefs.InvalidArgument(errors.New("no OIDC login in progress in this browser (the login cookie is missing)"))
	}
	err := s.db.Tx(ctx, "oidc callback", func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `SELECT state, nonce, verifier, redirect, pending, expires FROM oidc_logins WHERE id = ?`, hashID(cookie)).
			Scan(&l.state, &l.nonce, &l.verifier, &l.redirect, &l.pending, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return errdefs.InvalidArgument(errors.New("no OIDC login in progress in this browser: it was used already or has expired; log in again"))
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM oidc_logins WHERE id = ? OR expires < ?`, hashID(cookie), sqldb.Nanos(s.db.Now()))
		return err
	})
	if err != nil {
		return l, err
	}
	if !s.db.Now().Before(sqldb.Time(expires)) {
		return l, errdefs.InvalidArgument(errors.New("the OIDC login has expired; log in again"))
	}
	return l, nil
}

// Result is the outcome of a callback.
type Result struct {
	// Subject is the user logged in, or zero when they must choose a
	// name first (Onboard): then Cookie holds the pending onboarding and
	// Username the name the provider suggests.
	Subject  access.Subject
	Redirect string
	Cookie   string
	Username string
}

// Callback finishes a web login with the provider's answer (the callback
// URL's query) and the login cookie.
func (s *Service) Callback(ctx context.Context, base, cookie string, q url.Values) (Result, error) {
	if _, _, err := s.settings(ctx); err != nil {
		return Result{}, err
	}
	l, err := s.take(ctx, cookie)
	if err != nil {
		return Result{}, err
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.state)) != 1 {
		return Result{}, errdefs.InvalidArgument(errors.New("OIDC callback: state mismatch"))
	}
	if e := q.Get("error"); e != "" {
		return Result{}, errdefs.Unauthorized(fmt.Errorf("the OIDC provider refused the login: %s %s", e, q.Get("error_description")))
	}
	cfg, _, err := s.settings(ctx)
	if err != nil {
		return Result{}, err
	}
	p, err := s.providerFor(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	cctx := s.clientContext(ctx, cfg.VerifyCert)
	tok, err := s.oauth(cfg, p, base).Exchange(cctx, q.Get("code"), oauth2.VerifierOption(l.verifier))
	if err != nil {
		return Result{}, errdefs.Unauthorized(fmt.Errorf("OIDC callback: the provider refused the code: %w", err))
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := s.verify(cctx, cfg, p, raw)
	if err != nil {
		return Result{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.nonce)) != 1 {
		return Result{}, errdefs.Unauthorized(errors.New("OIDC callback: the ID token's nonce is not this login's"))
	}
	in, err := s.info(cctx, cfg, p, tok, idt, false)
	if err != nil {
		return Result{}, err
	}
	stored := storedToken{Token: *tok, IDToken: raw}
	return s.finish(ctx, cfg, in, stored, l.redirect)
}

// verify checks an ID token: the provider's signature, its issuer, its
// audience (oidc_client_id), its expiry.
func (s *Service) verify(ctx context.Context, cfg Config, p *gooidc.Provider, raw string) (*gooidc.IDToken, error) {
	if raw == "" {
		return nil, errdefs.Unauthorized(errors.New("OIDC: the provider's answer holds no ID token"))
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: cfg.ClientID, Now: s.now}).Verify(ctx, raw)
	if err != nil {
		return nil, errdefs.Unauthorized(fmt.Errorf("OIDC: the ID token is refused: %w", err))
	}
	return idt, nil
}

// storedToken is what is kept of the provider's tokens, sealed.
type storedToken struct {
	oauth2.Token
	IDToken string `json:"id_token,omitempty"`
}

// info is what the provider says of a user, from the ID token and the
// userinfo endpoint.
type info struct {
	Subject, Issuer, Username, Email string
	Groups                           []string
	Admin                            bool
}

func (in info) subiss() string { return in.Subject + in.Issuer }

// external is the user as identity onboards them.
func (in info) external(cfg Config) identity.External {
	ext := identity.External{ID: in.subiss(), Username: in.Username, Email: in.Email, Realname: in.Username, Admin: in.Admin}
	for _, g := range filterGroups(in.Groups, cfg.GroupFilter) {
		ext.Groups = append(ext.Groups, identity.ExternalGroup{Type: identity.GroupOIDC, ID: g, Name: g})
	}
	return ext
}

// info merges the ID token's claims with the userinfo endpoint's, as
// Harbor does: the userinfo's win for the email, the name and the groups
// when it has them; the subjects must agree. When must is set (a CLI
// login), the userinfo endpoint must answer: that is how the provider
// says the user is still theirs.
func (s *Service) info(ctx context.Context, cfg Config, p *gooidc.Provider, tok *oauth2.Token, idt *gooidc.IDToken, must bool) (info, error) {
	local := map[string]any{}
	if err := idt.Claims(&local); err != nil {
		return info{}, errdefs.Unauthorized(fmt.Errorf("OIDC: ID token claims: %w", err))
	}
	remote := map[string]any{}
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	switch {
	case err != nil && must:
		return info{}, errUserinfo{err}
	case err != nil:
		s.log.Warn("OIDC userinfo failed; using the ID token's claims", "error", err)
	default:
		if ui.Subject != idt.Subject {
			return info{}, errdefs.Unauthorized(fmt.Errorf("OIDC: the userinfo's subject %q is not the ID token's %q", ui.Subject, idt.Subject))
		}
		if err := ui.Claims(&remote); err != nil {
			return info{}, errdefs.Unauthorized(fmt.Errorf("OIDC: userinfo claims: %w", err))
		}
	}
	in := info{Subject: idt.Subject, Issuer: idt.Issuer}
	str := func(k string) string {
		for _, m := range []map[string]any{remote, local} {
			if v, ok := m[k].(string); ok && v != "" {
				return v
			}
		}
		return ""
	}
	if cfg.UserClaim != "" {
		in.Username = str(cfg.UserClaim)
		if in.Username == "" {
			return info{}, errdefs.Unauthorized(fmt.Errorf("OIDC: the claim %q (oidc_user_claim) is missing or not a string", cfg.UserClaim))
		}
	} else if in.Username = str("name"); in.Username == "" {
		in.Username = str("preferred_username")
	}
	in.Username = strings.ReplaceAll(in.Username, " ", "_")
	in.Email = str("email")
	groups, ok := groupsOf(remote, cfg.GroupsClaim)
	if !ok {
		groups, _ = groupsOf(local, cfg.GroupsClaim)
	}
	in.Groups = groups
	in.Admin = cfg.AdminGroup != "" && slices.Contains(groups, cfg.AdminGroup)
	return in, nil
}

// errUserinfo is a userinfo endpoint's refusal during a CLI login.
type errUserinfo struct{ err error }

func (e errUserinfo) Error() string { return "OIDC userinfo: " + e.err.Error() }

// groupsOf reads a groups claim: a list of strings or, from some
// providers for one group, a string. Names a group could not have (empty,
// over 255 bytes, control characters) and repeats are dropped: they
// become user groups.
func groupsOf(claims map[string]any, key string) ([]string, bool) {
	if key == "" {
		return nil, false
	}
	var names []any
	switch v := claims[key].(type) {
	case []any:
		names = v
	case string:
		names = []any{v}
	default:
		return nil, false
	}
	var out []string
	for _, e := range names {
		if s, ok := e.(string); ok && groupName(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, true
}

// groupName tells whether a provider's group name can name a user group.
func groupName(s string) bool {
	return strings.TrimSpace(s) != "" && len(s) <= 255 && utf8.ValidString(s) &&
		!strings.ContainsFunc(s, func(r rune) bool { return r < 32 || r == 127 })
}

// finish logs the user in (onboarding them with oidc_auto_onboard) or
// keeps the login pending until they choose a name.
func (s *Service) finish(ctx context.Context, cfg Config, in info, tok storedToken, redirect string) (Result, error) {
	res := Result{Redirect: redirect}
	var userID int64
	err := s.db.QueryRow(ctx, `SELECT user_id FROM oidc_users WHERE subiss = ?`, in.subiss()).Scan(&userID)
	switch {
	case errors.Is(err, sql.ErrNoRows) && !cfg.AutoOnboard:
		return s.pend(ctx, in, tok, redirect)
	case errors.Is(err, sql.ErrNoRows) && in.Username == "":
		return res, errdefs.Unauthorized(fmt.Errorf("unable to recover a username for auto onboard (oidc_user_claim %q)", cfg.UserClaim))
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return res, s.db.Wrap("oidc user", err)
	}
	subj, err := s.onboard(ctx, cfg, in, tok)
	if err != nil {
		return res, err
	}
	res.Subject = subj
	return res, nil
}

// onboard creates or refreshes the user, their groups and their stored
// tokens, and returns their subject.
func (s *Service) onboard(ctx context.Context, cfg Config, in info, tok storedToken) (access.Subject, error) {
	u, err := s.ids.Onboard(ctx, Source, in.external(cfg))
	if err != nil {
		return access.Subject{}, err
	}
	if err := s.saveMeta(ctx, u.ID, in.subiss(), tok); err != nil {
		return access.Subject{}, err
	}
	s.audit.RecordNow(ctx, audit.Event{Operation: "login", ResourceType: "user", Resource: u.Username, Username: u.Username, Description: "login through OIDC"})
	return s.ids.SubjectByName(ctx, u.Username)
}

// saveMeta stores the user's tokens, giving them a CLI secret the first
// time.
func (s *Service) saveMeta(ctx context.Context, userID int64, subiss string, tok storedToken) error {
	b, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	sealedTok, err := s.seal(ctx, "token", b)
	if err != nil {
		return err
	}
	secret, err := s.seal(ctx, "secret", []byte(identity.RandomSecret(32)))
	if err != nil {
		return err
	}
	now := sqldb.Nanos(s.db.Now())
	_, err = s.db.Exec(ctx, `INSERT INTO oidc_users (user_id, subiss, secret, token, created, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET token = excluded.token, updated = excluded.updated`, userID, subiss, secret, sealedTok, now, now)
	if sqldb.IsUniqueViolation(err) {
		return errdefs.Conflict(fmt.Errorf("the OIDC identity %s belongs to another user", subiss))
	}
	return s.db.Wrap("oidc user", err)
}

// pending is what a login awaiting a name keeps (sealed).
type pending struct {
	Info  info        `json:"info"`
	Token storedToken `json:"token"`
}

// pend keeps a login until the user chooses a name (/c/oidc/onboard).
func (s *Service) pend(ctx context.Context, in info, tok storedToken, redirect string) (Result, error) {
	b, err := json.Marshal(pending{Info: in, Token: tok})
	if err != nil {
		return Result{}, err
	}
	sealed, err := s.seal(ctx, "pending", b)
	if err != nil {
		return Result{}, err
	}
	cookie := random(32)
	now := s.db.Now()
	_, err = s.db.Exec(ctx, `INSERT INTO oidc_logins (id, state, nonce, verifier, redirect, pending, created, expires) VALUES (?, '', '', '', ?, ?, ?, ?)`,
		hashID(cookie), redirect, sealed, sqldb.Nanos(now), sqldb.Nanos(now.Add(loginTTL)))
	if err != nil {
		return Result{}, s.db.Wrap("oidc login", err)
	}
	return Result{Redirect: redirect, Cookie: cookie, Username: in.Username}, nil
}

// Onboard finishes a pending login with the name the user chose.
func (s *Service) Onboard(ctx context.Context, cookie, username string) (Result, error) {
	cfg, _, err := s.settings(ctx)
	if err != nil {
		return Result{}, err
	}
	l, err := s.take(ctx, cookie)
	if err != nil {
		return Result{}, err
	}
	if l.pending == "" {
		return Result{}, errdefs.InvalidArgument(errors.New("no OIDC login awaits a username in this browser"))
	}
	b, err := s.open(ctx, "pending", l.pending)
	if err != nil {
		return Result{}, err
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		return Result{}, err
	}
	p.Info.Username = username
	subj, err := s.onboard(ctx, cfg, p.Info, p.Token)
	if err != nil {
		return Result{}, err
	}
	return Result{Subject: subj, Redirect: l.redirect}, nil
}

// Purge deletes expired pending logins.
func (s *Service) Purge(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM oidc_logins WHERE expires < ?`, sqldb.Nanos(s.db.Now()))
	return s.db.Wrap("oidc logins", err)
}
