package oidc

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/sqldb"
)

var errBad = errdefs.Unauthorized(errors.New("invalid username or password"))

// Authenticate checks an OIDC user's CLI secret and asks the provider
// whether the user is still theirs (identity.Source): the stored tokens
// are refreshed when expired (or refused by the userinfo endpoint), and
// the userinfo endpoint tells the user's groups now. A refused refresh
// means the provider no longer vouches for the user: their groups and
// sessions are forgotten (identity.ErrGone) until they log in through the
// web again.
func (s *Service) Authenticate(ctx context.Context, username, secret string) (identity.External, error) {
	cfg, _, err := s.settings(ctx)
	if err != nil {
		return identity.External{}, err
	}
	var userID int64
	var subiss, sealedSecret, sealedToken string
	err = s.db.QueryRow(ctx, `SELECT o.user_id, o.subiss, o.secret, o.token FROM oidc_users o JOIN users u ON u.id = o.user_id WHERE u.username = ?`, username).
		Scan(&userID, &subiss, &sealedSecret, &sealedToken)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.External{}, errBad
	}
	if err != nil {
		return identity.External{}, s.db.Wrap("oidc user", err)
	}
	plain, err := s.open(ctx, "secret", sealedSecret)
	if err != nil {
		return identity.External{}, err
	}
	if secret == "" || subtle.ConstantTimeCompare(plain, []byte(secret)) != 1 {
		return identity.External{}, errBad
	}
	in, err := s.ask(ctx, cfg, userID, sealedToken)
	if err != nil {
		return identity.External{}, err
	}
	if in.subiss() != subiss {
		return identity.External{}, errdefs.Unauthorized(errors.New("OIDC: the provider's tokens name another user"))
	}
	ext := in.external(cfg)
	u, err := s.ids.UserByID(ctx, userID)
	if err != nil {
		return identity.External{}, err
	}
	ext.Username = u.Username // chosen at onboarding; the provider's may differ
	return ext, nil
}

// ask asks the provider about a user with their stored tokens, refreshing
// them when needed, and stores the refreshed ones.
func (s *Service) ask(ctx context.Context, cfg Config, userID int64, sealedToken string) (info, error) {
	b, err := s.open(ctx, "token", sealedToken)
	if err != nil {
		return info{}, err
	}
	var st storedToken
	if err := json.Unmarshal(b, &st); err != nil {
		return info{}, fmt.Errorf("stored OIDC token: %w", err)
	}
	p, err := s.providerFor(ctx, cfg)
	if err != nil {
		return info{}, err
	}
	cctx := s.clientContext(ctx, cfg.VerifyCert)
	if st.Expiry.IsZero() || st.Expiry.After(s.now().Add(10*time.Second)) {
		idt, err := s.parseStored(cctx, cfg, p, st.IDToken)
		if err == nil {
			in, err := s.info(cctx, cfg, p, &st.Token, idt, true)
			var ue errUserinfo
			if !errors.As(err, &ue) {
				return in, err
			}
		}
	}
	if st.RefreshToken == "" {
		return info{}, fmt.Errorf("%w: %w", errdefs.Unauthorized(errors.New("the OIDC session has expired and cannot be refreshed; log in through the web UI again")), identity.ErrGone)
	}
	oc := s.oauth(cfg, p, "")
	nt, err := oc.TokenSource(cctx, &oauth2.Token{RefreshToken: st.RefreshToken}).Token()
	var refused *oauth2.RetrieveError
	switch {
	case errors.As(err, &refused):
		return info{}, fmt.Errorf("%w: %w", errdefs.Unauthorized(fmt.Errorf("the OIDC provider refused to refresh the session (log in through the web UI again): %v", err)), identity.ErrGone)
	case err != nil:
		// Not an answer: the provider is down, and says nothing of the
		// user.
		return info{}, errdefs.Unavailable(describe(cfg.Endpoint, err))
	}
	raw, _ := nt.Extra("id_token").(string)
	if raw == "" {
		raw = st.IDToken
	}
	idt, err := s.parseStored(cctx, cfg, p, raw)
	if err != nil {
		return info{}, err
	}
	in, err := s.info(cctx, cfg, p, nt, idt, true)
	if err != nil {
		return info{}, errdefs.Unauthorized(err)
	}
	nb, _ := json.Marshal(storedToken{Token: *nt, IDToken: raw})
	if sealed, err := s.seal(ctx, "token", nb); err == nil {
		if _, err := s.db.Exec(ctx, `UPDATE oidc_users SET token = ?, updated = ? WHERE user_id = ?`, sealed, sqldb.Nanos(s.db.Now()), userID); err != nil {
			s.log.Warn("cannot store a refreshed OIDC token", "error", err)
		}
	}
	return in, nil
}

// parseStored verifies a stored ID token's signature, issuer and audience
// but not its expiry (it was verified fully when first received; its
// expiry is the refresh's business).
func (s *Service) parseStored(ctx context.Context, cfg Config, p *gooidc.Provider, raw string) (*gooidc.IDToken, error) {
	idt, err := p.Verifier(&gooidc.Config{ClientID: cfg.ClientID, SkipExpiryCheck: true}).Verify(ctx, raw)
	if err != nil {
		return nil, errdefs.Unauthorized(fmt.Errorf("OIDC: the stored ID token is refused: %w", err))
	}
	return idt, nil
}

// SetCLISecret sets an OIDC user's CLI secret (a random one when secret is
// ""): the user themselves, or an administrator (system permission user
// update); only under oidc_auth, for OIDC users.
func (s *Service) SetCLISecret(ctx context.Context, who access.Subject, userID int64, secret string) error {
	if !who.Authenticated() {
		return access.Refuse(who, access.Update, access.User)
	}
	if who.Kind != access.KindUser || who.ID != userID {
		if err := s.access.Require(ctx, who, access.Update, access.User, 0); err != nil {
			return err
		}
	}
	_, st, err := s.config(ctx)
	if err != nil {
		return err
	}
	if st.AuthMode != "oidc_auth" {
		return errdefs.FailedPrecondition(fmt.Errorf("unable to update CLI secret under authmode: %s", st.AuthMode))
	}
	if secret == "" {
		secret = identity.RandomSecret(32)
	}
	if err := identity.CheckPasswordRule(secret); err != nil {
		return err
	}
	sealed, err := s.seal(ctx, "secret", []byte(secret))
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "set cli secret", func(tx *sqldb.Tx) error {
		var name string
		err := tx.QueryRow(ctx, `SELECT u.username FROM oidc_users o JOIN users u ON u.id = o.user_id WHERE o.user_id = ?`, userID).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound(fmt.Errorf("user %d is not an OIDC user", userID))
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE oidc_users SET secret = ?, updated = ? WHERE user_id = ?`, sealed, sqldb.Nanos(s.db.Now()), userID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "user", Resource: name, Description: "set the CLI secret of user " + name})
	})
}

// Meta is an OIDC user's record, as Harbor's oidc_user_meta shows it.
type Meta struct {
	ID      int64
	UserID  int64
	SubIss  string
	Secret  string // only for its owner
	Created time.Time
	Updated time.Time
}

// MetaOf returns the OIDC record of a user (false when they have none),
// with the CLI secret when who is that user.
func (s *Service) MetaOf(ctx context.Context, who access.Subject, userID int64) (Meta, bool, error) {
	m := Meta{ID: userID, UserID: userID}
	var sealed string
	var created, updated int64
	err := s.db.QueryRow(ctx, `SELECT subiss, secret, created, updated FROM oidc_users WHERE user_id = ?`, userID).Scan(&m.SubIss, &sealed, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Meta{}, false, nil
	}
	if err != nil {
		return Meta{}, false, s.db.Wrap("oidc user", err)
	}
	m.Created, m.Updated = sqldb.Time(created), sqldb.Time(updated)
	if who.Kind == access.KindUser && who.ID == userID {
		plain, err := s.open(ctx, "secret", sealed)
		if err != nil {
			return Meta{}, false, err
		}
		m.Secret = string(plain)
	}
	return m, true, nil
}

// Ping checks that url is an OpenID Provider (its discovery document
// answers and names it as issuer), with or without certificate
// verification (system permission configuration update, as in Harbor).
func (s *Service) Ping(ctx context.Context, who access.Subject, url string, verify bool) error {
	if err := s.access.Require(ctx, who, access.Update, access.Configuration, 0); err != nil {
		return err
	}
	if url == "" {
		return errdefs.InvalidArgument(errors.New("the OIDC endpoint url is empty"))
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := gooidc.NewProvider(s.clientContext(ctx, verify), url); err != nil {
		return errdefs.InvalidArgument(describe(url, err))
	}
	return nil
}
