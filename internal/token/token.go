// Package token is the Docker token service, at Harbor's path
// /service/token: registry clients (docker, podman, skopeo, crane, oras,
// containerd) trade credentials, or nothing, for a short-lived token that
// carries exactly the repository actions the subject may do there, and
// present it to the registry.
//
// Tokens are JWTs (RFC 7519) signed with HS256 by a key kept in the
// metadata database (table token_keys), so every replica issues tokens the
// others accept. Only lading reads them, so a shared-secret signature is
// enough, and the standard library suffices. Their lifetime is Harbor's
// token_expiration setting (minutes).
package token

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the key table.
var Migrations = []sqldb.Migration{{Owner: "token", Name: "token signing keys", SQL: []string{
	`CREATE TABLE token_keys (
		id {{int}} PRIMARY KEY,
		key {{bytes}} NOT NULL,
		created {{int}} NOT NULL)`,
}}}

// Access is one resource and the actions a token grants on it, in the
// token specification's form.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Claims are a token's claims.
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	Expiry    int64    `json:"exp"`
	NotBefore int64    `json:"nbf"`
	IssuedAt  int64    `json:"iat"`
	ID        string   `json:"jti"`
	Access    []Access `json:"access"`
}

// Issuer signs and verifies tokens.
type Issuer struct {
	service string
	key     []byte
	now     func() time.Time
}

const issuerName = "lading-token-service"

// leeway tolerates clock skew between replicas.
const leeway = 30 * time.Second

var header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// Open returns an issuer for service (the audience, "harbor-registry"),
// with the database's signing key, creating it on first start.
func Open(ctx context.Context, db *sqldb.DB, service string) (*Issuer, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh)
	var key []byte
	err := db.Tx(ctx, "token key", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO token_keys (id, key, created) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, fresh, sqldb.Nanos(db.Now())); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT key FROM token_keys WHERE id = 1`).Scan(&key)
	})
	if err != nil {
		return nil, err
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("token key: %d bytes in the database, want 32", len(key))
	}
	return New(service, key), nil
}

// New returns an issuer with a given key (tests).
func New(service string, key []byte) *Issuer {
	return &Issuer{service: service, key: key, now: time.Now}
}

// Service is the audience of the tokens.
func (i *Issuer) Service() string { return i.service }

func (i *Issuer) sign(in string) string {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte(in))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Issue makes a token for subject ("" for anonymous) granting access for
// ttl.
func (i *Issuer) Issue(subject string, access []Access, ttl time.Duration) (string, Claims) {
	now := i.now()
	var id [12]byte
	rand.Read(id[:])
	if access == nil {
		access = []Access{}
	}
	cl := Claims{
		Issuer:    issuerName,
		Subject:   subject,
		Audience:  i.service,
		Expiry:    now.Add(ttl).Unix(),
		NotBefore: now.Add(-leeway).Unix(),
		IssuedAt:  now.Unix(),
		ID:        hex.EncodeToString(id[:]),
		Access:    access,
	}
	payload, _ := json.Marshal(cl)
	in := header + "." + base64.RawURLEncoding.EncodeToString(payload)
	return in + "." + i.sign(in), cl
}

// Verify checks a token's signature, issuer, audience and lifetime and
// returns its claims.
func (i *Issuer) Verify(tok string) (Claims, error) {
	if len(tok) > 64<<10 {
		return Claims{}, errors.New("token too long")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return Claims{}, errors.New("malformed token")
	}
	if parts[0] != header {
		// Only our own header (HS256): no "none", no algorithm
		// confusion.
		return Claims{}, errors.New("token not issued by this registry")
	}
	if !hmac.Equal([]byte(i.sign(parts[0]+"."+parts[1])), []byte(parts[2])) {
		return Claims{}, errors.New("token signature invalid")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, errors.New("malformed token payload")
	}
	var cl Claims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return Claims{}, errors.New("malformed token claims")
	}
	now := i.now().Unix()
	switch {
	case cl.Issuer != issuerName:
		return Claims{}, errors.New("token issuer unknown")
	case cl.Audience != i.service:
		return Claims{}, fmt.Errorf("token is for service %q, not %q", cl.Audience, i.service)
	case now > cl.Expiry+int64(leeway/time.Second):
		return Claims{}, errors.New("token expired")
	case now < cl.NotBefore-int64(leeway/time.Second):
		return Claims{}, errors.New("token not valid yet")
	}
	return cl, nil
}
