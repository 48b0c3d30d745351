package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/server"
)

// issued is what the token service answered, read as a client reads it:
// the response's expires_in, and the JWT's registered claims (RFC 7519)
// decoded from its payload.
type issued struct {
	token     string
	expiresIn int64
	iat, exp  int64
}

func issueToken(t *testing.T, srv *harbortest.Server) issued {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/service/token?service=harbor-registry&scope=repository:library/app:pull", nil)
	req.SetBasicAuth("admin", harbortest.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %s %s", resp.Status, b)
	}
	var body struct {
		Token     string `json:"token"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("token response %s: %v", b, err)
	}
	parts := strings.Split(body.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS compact serialization", body.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var claims struct {
		IssuedAt  int64 `json:"iat"`
		ExpiresAt int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("token claims %s: %v", payload, err)
	}
	return issued{token: body.Token, expiresIn: body.ExpiresIn, iat: claims.IssuedAt, exp: claims.ExpiresAt}
}

// checkLifetime asserts that a token issued now lives minutes minutes, in
// its claims and in expires_in, and opens the registry.
func checkLifetime(t *testing.T, srv *harbortest.Server, what string, minutes int64) {
	t.Helper()
	tok := issueToken(t, srv)
	if got := tok.exp - tok.iat; got != minutes*60 {
		t.Errorf("%s: exp - iat = %ds, want %ds", what, got, minutes*60)
	}
	if tok.expiresIn != minutes*60 {
		t.Errorf("%s: expires_in = %d, want %d", what, tok.expiresIn, minutes*60)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v2/", nil)
	req.Header.Set("Authorization", "Bearer "+tok.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s: /v2/ with the token: %s", what, resp.Status)
	}
}

// TestTokenExpiration: a registry token lives as long as the setting
// token_expiration (minutes) says: 30 by default, what the configuration
// file fixes, and what an administrator sets through /configurations, from
// the next token on.
func TestTokenExpiration(t *testing.T) {
	ctx := context.Background()
	srv := harbortest.Start(t)
	checkLifetime(t, srv, "default", 30)
	for _, minutes := range []int64{5, 120} {
		if _, err := srv.Admin().Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{TokenExpiration: ptr(minutes)})); err != nil {
			t.Fatal(err)
		}
		checkLifetime(t, srv, "set through /configurations", minutes)
	}

	fixed := harbortest.Start(t, harbortest.WithConfig(func(c *server.Config) {
		c.Settings = map[string]any{"token_expiration": 10}
	}))
	checkLifetime(t, fixed, "fixed by the configuration file", 10)
}
