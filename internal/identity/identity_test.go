package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
)

func TestPasswordHashes(t *testing.T) {
	h := identity.HashPassword("Secret123")
	if !strings.HasPrefix(h, "$argon2id$v=19$") || h == identity.HashPassword("Secret123") {
		t.Fatalf("hash %q: argon2id with a fresh salt", h)
	}
	if !identity.CheckPassword(h, "Secret123") || identity.CheckPassword(h, "Secret124") || identity.CheckPassword(h, "") {
		t.Error("argon2id check")
	}
	b, _ := bcrypt.GenerateFromPassword([]byte("Secret123"), bcrypt.MinCost)
	if !identity.CheckPassword(string(b), "Secret123") || identity.CheckPassword(string(b), "secret123") {
		t.Error("bcrypt check")
	}
	parts := strings.Split(h, "$")
	for _, bad := range []string{
		"", "Secret123", "{SHA}abc", "$apr1$x$y",
		strings.Replace(h, "m=19456", "m=99999999", 1), // a hash that would eat the memory
		strings.Replace(h, "t=2", "t=1000", 1),
		strings.Join(parts[:5], "$"),
		h + "$extra",
	} {
		if identity.CheckPassword(bad, "Secret123") {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestPasswordRule(t *testing.T) {
	for p, ok := range map[string]bool{
		"Harbor12345": true, "aB3aaaaa": true, "aB3aaaa": false, "harbor12345": false, "HARBOR12345": false,
		"HarborHarbor": false, "": false, "aB3" + strings.Repeat("x", 125): true, "aB3" + strings.Repeat("x", 126): false,
	} {
		if err := identity.CheckPasswordRule(p); (err == nil) != ok || (err != nil && !errdefs.IsInvalidArgument(err)) {
			t.Errorf("%q: %v", p, err)
		}
	}
	for range 20 {
		if s := identity.RandomSecret(16); len(s) != 16 || identity.CheckPasswordRule(s) != nil {
			t.Errorf("random secret %q", s)
		}
	}
}

func open(t *testing.T, opts core.Options) *core.Core {
	t.Helper()
	ctx := context.Background()
	c, err := core.New(ctx, sqldbtest.SQLite(t, core.Migrations()), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Bootstrap(ctx, "Harbor12345", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHtpasswdImport: the users of the former --htpasswd authentication
// become database users that keep their passwords; the bcrypt hash moves
// to argon2id at the first login.
func TestHtpasswdImport(t *testing.T) {
	ctx := context.Background()
	c := open(t, core.Options{})
	b, _ := bcrypt.GenerateFromPassword([]byte("carol-pw"), bcrypt.MinCost)
	file := "# users\ncarol:" + string(b) + "\ndave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n\nadmin:" + string(b) + "\n"
	created, err := c.Identity.ImportHtpasswd(ctx, []byte(file))
	if err != nil || len(created) != 1 || created[0] != "carol" {
		t.Fatalf("import: %v %v", created, err)
	}
	if again, err := c.Identity.ImportHtpasswd(ctx, []byte(file)); err != nil || len(again) != 0 {
		t.Errorf("second import: %v %v", again, err)
	}
	if _, err := c.Identity.Login(ctx, "admin", "carol-pw", "", false); !errdefs.IsUnauthorized(err) {
		t.Errorf("an htpasswd line replaced the admin's password: %v", err)
	}
	if _, err := c.Identity.ImportHtpasswd(ctx, []byte("no-colon\n")); !errdefs.IsInvalidArgument(err) {
		t.Errorf("malformed line: %v", err)
	}
	hash := func() string {
		var h string
		if err := c.DB.QueryRow(ctx, `SELECT password FROM users WHERE username = 'carol'`).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if !strings.HasPrefix(hash(), "$2") {
		t.Fatalf("imported hash %q", hash())
	}
	if _, err := c.Identity.Login(ctx, "carol", "wrong", "", false); !errdefs.IsUnauthorized(err) {
		t.Errorf("wrong password: %v", err)
	}
	s, err := c.Identity.Login(ctx, "carol", "carol-pw", "", false)
	if err != nil || s.Name != "carol" || s.SysAdmin {
		t.Fatalf("login: %+v %v", s, err)
	}
	if !strings.HasPrefix(hash(), "$argon2id$") {
		t.Errorf("not rehashed: %q", hash())
	}
	if _, err := c.Identity.Login(ctx, "carol", "carol-pw", "", false); err != nil {
		t.Errorf("login after the rehash: %v", err)
	}
}

// TestThrottle: failures block the name (from the 6th) whatever the
// address, and the address (from the 21st) whatever the name; the right password does
// not get through a block.
func TestThrottle(t *testing.T) {
	ctx := context.Background()
	c := open(t, core.Options{})
	for i := range 5 {
		if _, err := c.Identity.Login(ctx, "admin", "wrong", "192.0.2.1:1000", false); !errdefs.IsUnauthorized(err) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	_, err := c.Identity.Login(ctx, "admin", "wrong", "192.0.2.9:1000", false)
	if !errdefs.IsUnauthorized(err) {
		t.Fatalf("6th failure: %v", err)
	}
	_, err = c.Identity.Login(ctx, "admin", "Harbor12345", "192.0.2.2:1000", false)
	var te *identity.ThrottledError
	if !errors.As(err, &te) || !errors.Is(err, errdefs.ErrThrottled) || te.RetryAfterSeconds() < 1 {
		t.Fatalf("blocked user: %v", err)
	}
	for i := range 21 {
		c.Identity.Login(ctx, "nobody"+string(rune('a'+i)), "wrong", "198.51.100.7:5", false)
	}
	b, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	c.Identity.ImportHtpasswd(ctx, []byte("erin:"+string(b)))
	if _, err := c.Identity.Login(ctx, "erin", "pw", "198.51.100.7:6", false); !errors.Is(err, errdefs.ErrThrottled) {
		t.Errorf("blocked address: %v", err)
	}
	if _, err := c.Identity.Login(ctx, "erin", "pw", "198.51.100.8:6", false); err != nil {
		t.Errorf("another address: %v", err)
	}
}

type fakeSource map[string]identity.External

func (f fakeSource) Authenticate(_ context.Context, name, password string) (identity.External, error) {
	if e, ok := f[name]; ok && password == "ext-pw" {
		return e, nil
	}
	return identity.External{}, errdefs.Unauthorized(errors.New("bad credentials"))
}

// TestExternalSource: how LDAP and OIDC plug in. Under auth_mode
// ldap_auth the source vouches for users, who are onboarded with their
// groups (refreshed at every login); the first admin stays a database
// user.
func TestExternalSource(t *testing.T) {
	ctx := context.Background()
	src := fakeSource{"frank": {ID: "uid=frank,dc=example", Username: "frank", Email: "f@example.com",
		Groups: []identity.ExternalGroup{{Type: identity.GroupLDAP, ID: "cn=dev,dc=example", Name: "dev"}}}}
	c := open(t, core.Options{Sources: map[string]identity.Source{"ldap_auth": src}})
	if err := c.Settings.SetOverrides(map[string]any{"auth_mode": "ldap_auth"}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Identity.Login(ctx, "frank", "ext-pw", "", true)
	if err != nil || len(s.Groups) != 1 {
		t.Fatalf("login: %+v %v", s, err)
	}
	u, err := c.Identity.UserByName(ctx, "frank")
	if err != nil || u.Source != "ldap" || u.Email != "f@example.com" {
		t.Errorf("onboarded: %+v %v", u, err)
	}
	if _, err := c.Identity.Login(ctx, "frank", "wrong", "", true); !errdefs.IsUnauthorized(err) {
		t.Errorf("wrong password: %v", err)
	}
	e := src["frank"]
	e.Groups, e.Admin = nil, true
	src["frank"] = e
	s, err = c.Identity.Login(ctx, "frank", "ext-pw", "", true)
	if err != nil || len(s.Groups) != 0 || !s.SysAdmin {
		t.Errorf("refreshed: %+v %v", s, err)
	}
	if s, err := c.Identity.Login(ctx, "admin", "Harbor12345", "", true); err != nil || !s.SysAdmin {
		t.Errorf("admin under ldap_auth: %+v %v", s, err)
	}
	// Back to db_auth: the source's users cannot log in.
	c.Settings.SetOverrides(map[string]any{"auth_mode": "db_auth"})
	if _, err := c.Identity.Login(ctx, "frank", "ext-pw", "", true); !errdefs.IsUnauthorized(err) {
		t.Errorf("ldap user under db_auth: %v", err)
	}
}

// TestUserLogin: the login form's login is for users; a robot's correct
// secret fails there as bad credentials (and is recorded as a failure),
// and still works on the registry's and the API's basic authentication.
func TestUserLogin(t *testing.T) {
	ctx := context.Background()
	c := open(t, core.Options{})
	adm, err := c.Identity.UserLogin(ctx, "admin", "Harbor12345", "192.0.2.1:1000")
	if err != nil || !adm.SysAdmin {
		t.Fatalf("admin at the form: %+v %v", adm, err)
	}
	bot, secret, err := c.Identity.CreateRobot(ctx, adm, identity.RobotCreate{Name: "ci", Level: access.LevelSystem, Duration: -1,
		Permissions: []access.Permission{{Kind: "project", Namespace: "*", Access: []access.Policy{{Resource: access.Repository, Action: access.Pull}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Identity.UserLogin(ctx, bot.Name, secret, "192.0.2.1:1000"); !errdefs.IsUnauthorized(err) {
		t.Errorf("a robot at the form: %v, want unauthorized", err)
	}
	var failed int
	if err := c.DB.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE operation = 'login' AND resource = ? AND NOT success`, bot.Name).Scan(&failed); err != nil || failed != 1 {
		t.Errorf("failed robot logins at the form recorded: %d %v", failed, err)
	}
	if s, err := c.Identity.Login(ctx, bot.Name, secret, "192.0.2.1:1000", false); err != nil || s.Kind != access.KindRobot {
		t.Errorf("the robot with basic credentials: %+v %v", s, err)
	}
}
