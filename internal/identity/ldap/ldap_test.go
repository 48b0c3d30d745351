package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/identity/ldap"
	"github.com/lading-dev/lading/internal/ldaptest"
	"github.com/lading-dev/lading/internal/testca"
)

// weird is a real user whose name holds every character of RFC 4515's
// filter syntax.
const weird = `o*(k)\w`

// directory starts slapd with users and groups, and a Directory on it.
func directory(t *testing.T) (*ldaptest.Server, *config, *ldap.Directory) {
	srv := ldaptest.Start(t)
	for _, u := range []ldaptest.User{
		{UID: "alice", CN: "Alice Liddell", Mail: "alice@example.org", Password: "alice-pw"},
		{UID: "bob", CN: "Bob", Mail: "bob@example.org", Password: "bob-pw"},
		{UID: "carol", Password: "carol-pw"},
		{UID: weird, Password: "weird-pw"},
	} {
		srv.AddUser(t, u)
	}
	srv.AddGroup(t, "devs", "alice", "bob")
	srv.AddGroup(t, "admins", "alice")
	srv.AddGroup(t, "wizards", weird)
	// A group outside the group base: not one of lading's groups.
	srv.Modify(t, "dn: ou=elsewhere,"+ldaptest.BaseDN+"\nchangetype: add\nobjectClass: organizationalUnit\nou: elsewhere\n\n"+
		"dn: cn=outside,ou=elsewhere,"+ldaptest.BaseDN+"\nchangetype: add\nobjectClass: groupOfNames\ncn: outside\nmember: "+ldaptest.UserDN("alice")+"\n")
	cfg := &config{c: baseConfig(srv)}
	return srv, cfg, ldap.New(cfg.get, ldap.WithRootCAs(srv.CA.Pool()))
}

func baseConfig(srv *ldaptest.Server) ldap.Config {
	return ldap.Config{
		URL: srv.URL, VerifyCert: true, SearchDN: ldaptest.SearchDN, SearchPassword: ldaptest.SearchPassword,
		BaseDN: ldaptest.BaseDN, Filter: "(objectClass=inetOrgPerson)", UID: "uid", Scope: 2, Timeout: 5 * time.Second,
		GroupBaseDN: ldaptest.GroupsDN, GroupFilter: "(objectClass=groupOfNames)", GroupNameAttribute: "cn", GroupScope: 2,
		GroupAdminDN: strings.ToUpper(ldaptest.GroupDN("admins")), GroupMembershipAttr: "memberof",
	}
}

// config is a configuration a test changes as it goes.
type config struct {
	mu sync.Mutex
	c  ldap.Config
}

func (c *config) get(context.Context) (ldap.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c, nil
}

func (c *config) set(f func(*ldap.Config)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.c)
}

func groupNames(ext identity.External) []string {
	var out []string
	for _, g := range ext.Groups {
		out = append(out, g.Name)
	}
	slices.Sort(out)
	return out
}

func dn(t *testing.T, s string) string {
	n, err := ldap.NormalizeDN(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuthenticate logs in against slapd: who the user is, their groups
// (only those under the group base), the admin group, and the refusals.
func TestAuthenticate(t *testing.T) {
	_, _, dir := directory(t)
	ctx := context.Background()
	ext, err := dir.Authenticate(ctx, "ALICE", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	want := identity.External{ID: dn(t, ldaptest.UserDN("alice")), Username: "alice", Email: "alice@example.org", Realname: "Alice Liddell",
		Admin: true, AdoptByName: true,
		Groups: []identity.ExternalGroup{{Type: identity.GroupLDAP, ID: dn(t, ldaptest.GroupDN("admins")), Name: "admins"}, {Type: identity.GroupLDAP, ID: dn(t, ldaptest.GroupDN("devs")), Name: "devs"}}}
	slices.SortFunc(ext.Groups, func(a, b identity.ExternalGroup) int { return strings.Compare(a.Name, b.Name) })
	if diff := cmp.Diff(want, ext); diff != "" {
		t.Errorf("alice (-want +got):\n%s", diff)
	}
	if ext, err := dir.Authenticate(ctx, weird, "weird-pw"); err != nil || ext.Username != weird || !slices.Equal(groupNames(ext), []string{"wizards"}) {
		t.Errorf("user %q: %+v, %v", weird, ext, err)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "alice", "nope"},
		{"empty password (an anonymous bind to LDAP)", "alice", ""},
		{"unknown user", "mallory", "x"},
		{"empty name", "", "alice-pw"},
	} {
		if _, err := dir.Authenticate(ctx, tc.user, tc.password); !errdefs.IsUnauthorized(err) {
			t.Errorf("%s: %v, want unauthorized", tc.name, err)
		}
	}
}

// TestFilterInjection: names with RFC 4515's special characters match
// only a user of exactly that name, whatever the password.
func TestFilterInjection(t *testing.T) {
	_, _, dir := directory(t)
	ctx := context.Background()
	for _, name := range []string{"*", "a*", "*lice", "alice)(uid=*", "*)(|(uid=*", "alice)(|(objectClass=*)", `alice\`, "alice\\2a", "alice\x00", "alice\x00)(uid=*", "(", ")", `\`, `o*`, `o*(k)`, `o\2a(k)\5cw`} {
		for _, pw := range []string{"alice-pw", "weird-pw", "x"} {
			_, err := dir.Authenticate(ctx, name, pw)
			if !errdefs.IsUnauthorized(err) {
				t.Errorf("name %q, password %q: %v, want unauthorized", name, pw, err)
			}
		}
		users, err := dir.SearchUsers(ctx, name)
		if err != nil || len(users) != 0 {
			t.Errorf("search %q: %d users, %v; want none", name, len(users), err)
		}
	}
	users, err := dir.SearchUsers(ctx, weird)
	if err != nil || len(users) != 1 || users[0].Username != weird {
		t.Errorf("search %q: %+v, %v", weird, users, err)
	}
	all, err := dir.SearchUsers(ctx, "")
	if err != nil || len(all) != 4 {
		t.Errorf("search all: %d users, %v; want 4", len(all), err)
	}
}

// TestLiveChanges: nothing is cached; the directory's word counts at the
// next login.
func TestLiveChanges(t *testing.T) {
	srv, _, dir := directory(t)
	ctx := context.Background()
	login := func(user, pw string) (identity.External, error) { return dir.Authenticate(ctx, user, pw) }
	if ext, err := login("bob", "bob-pw"); err != nil || !slices.Equal(groupNames(ext), []string{"devs"}) {
		t.Fatalf("bob: %v %v", groupNames(ext), err)
	}
	srv.RemoveMember(t, "devs", "bob")
	srv.AddGroup(t, "ops", "bob")
	if ext, err := login("bob", "bob-pw"); err != nil || !slices.Equal(groupNames(ext), []string{"ops"}) {
		t.Errorf("bob after the group change: %v %v, want [ops]", groupNames(ext), err)
	}
	srv.SetPassword(t, "bob", "new-pw")
	if _, err := login("bob", "bob-pw"); !errdefs.IsUnauthorized(err) {
		t.Errorf("old password: %v", err)
	}
	if _, err := login("bob", "new-pw"); err != nil {
		t.Errorf("new password: %v", err)
	}
	srv.Lock(t, "bob")
	if _, err := login("bob", "new-pw"); !errdefs.IsUnauthorized(err) || errors.Is(err, identity.ErrGone) {
		t.Errorf("locked account: %v, want unauthorized (not gone: a wrong password looks the same)", err)
	}
	if _, err := dir.Lookup(ctx, "bob", ""); !errors.Is(err, identity.ErrGone) {
		t.Errorf("lookup of a locked account: %v, want gone", err)
	}
	srv.DeleteUser(t, "carol")
	if _, err := login("carol", "carol-pw"); !errors.Is(err, identity.ErrGone) {
		t.Errorf("deleted account: %v, want gone", err)
	}
}

// TestTLS: ldaps and StartTLS with the test CA; a client trusting another
// CA is told the certificate problem, unless verification is off.
func TestTLS(t *testing.T) {
	srv, cfg, dir := directory(t)
	ctx := context.Background()
	other := ldap.New(cfg.get, ldap.WithRootCAs(testca.New(t, "another CA").Pool()))
	for _, tc := range []struct {
		name     string
		url      string
		startTLS bool
	}{{"ldaps", srv.LDAPSURL, false}, {"StartTLS", srv.URL, true}} {
		cfg.set(func(c *ldap.Config) { c.URL, c.StartTLS, c.VerifyCert = tc.url, tc.startTLS, true })
		if _, err := dir.Authenticate(ctx, "alice", "alice-pw"); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		_, err := other.Authenticate(ctx, "alice", "alice-pw")
		var te *ldap.TLSError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "signed by an unknown authority") || !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("%s with the wrong CA: %v, want a TLS error naming the unknown authority", tc.name, err)
		}
		if err := other.Ping(ctx, cfg.c); err == nil || !strings.Contains(err.Error(), "unknown authority") {
			t.Errorf("%s: ping with the wrong CA: %v", tc.name, err)
		}
		cfg.set(func(c *ldap.Config) { c.VerifyCert = false })
		if _, err := other.Authenticate(ctx, "alice", "alice-pw"); err != nil {
			t.Errorf("%s with verification off: %v", tc.name, err)
		}
	}
	cfg.set(func(c *ldap.Config) {
		c.URL, c.StartTLS, c.VerifyCert = "ldaps://"+strings.TrimPrefix(srv.URL, "ldap://"), false, true
	})
	if err := dir.Ping(ctx, cfg.c); err == nil || !strings.Contains(err.Error(), "does not speak TLS") {
		t.Errorf("ldaps to the plain port: %v", err)
	}
}

// TestPing names each problem.
func TestPing(t *testing.T) {
	srv, cfg, dir := directory(t)
	ctx := context.Background()
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "ldap://" + l.Addr().String()
	}()
	for _, tc := range []struct {
		name string
		edit func(*ldap.Config)
		want string // "" for success
	}{
		{"good", func(*ldap.Config) {}, ""},
		{"unreachable", func(c *ldap.Config) { c.URL = closed }, "connection refused"},
		{"bad URL", func(c *ldap.Config) { c.URL = "http://x" }, "scheme must be ldap or ldaps"},
		{"bind refused", func(c *ldap.Config) { c.SearchPassword = "wrong" }, "refused the bind of the search DN"},
		{"no such base DN", func(c *ldap.Config) { c.BaseDN = "dc=nowhere,dc=org" }, `ldap_base_dn "dc=nowhere,dc=org" does not exist`},
		{"no such group base DN", func(c *ldap.Config) { c.GroupBaseDN = "ou=nogroups," + ldaptest.BaseDN }, "ldap_group_base_dn"},
		{"bad filter", func(c *ldap.Config) { c.Filter = "(&(objectClass=person)" }, "not a valid LDAP filter"},
		{"filter without parentheses", func(c *ldap.Config) { c.Filter = "objectClass=person" }, ""},
	} {
		c := baseConfig(srv)
		tc.edit(&c)
		err := dir.Ping(ctx, c)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	_ = cfg
}

// TestDownAndSlow: a hung directory costs a login at most ldap_timeout,
// a stopped one fails at once, and the pool recovers when it is back.
func TestDownAndSlow(t *testing.T) {
	srv, cfg, dir := directory(t)
	ctx := context.Background()
	if _, err := dir.Authenticate(ctx, "alice", "alice-pw"); err != nil { // fills the pools
		t.Fatal(err)
	}
	cfg.set(func(c *ldap.Config) { c.Timeout = time.Second })
	srv.Pause(t)
	_, err := dir.Authenticate(ctx, "alice", "alice-pw")
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("hung directory: %v, want unavailable, did not answer", err)
	}
	srv.Resume()
	srv.Restart(t)
	if _, err := dir.Authenticate(ctx, "alice", "alice-pw"); err != nil {
		t.Errorf("after a restart (pooled connections are dead): %v", err)
	}
	srv.Stop()
	_, err = dir.Authenticate(ctx, "alice", "alice-pw")
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("stopped directory: %v, want unavailable, connection refused", err)
	}
}

// TestConcurrentLogins share the pools.
func TestConcurrentLogins(t *testing.T) {
	_, _, dir := directory(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			user, pw := "alice", "alice-pw"
			if i%2 == 1 {
				user, pw = "bob", "wrong"
			}
			_, err := dir.Authenticate(context.Background(), user, pw)
			if (i%2 == 0) != (err == nil) {
				errs <- fmt.Errorf("login %d (%s): %v", i, user, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSearchAndLookup: Harbor's group search by name and by DN, and the
// lookups of import and sync.
func TestSearchAndLookup(t *testing.T) {
	srv, _, dir := directory(t)
	ctx := context.Background()
	g, err := dir.SearchGroups(ctx, "devs", "")
	if err != nil || len(g) != 1 || g[0].DN != dn(t, ldaptest.GroupDN("devs")) {
		t.Errorf("group devs by name: %+v %v", g, err)
	}
	if g, err := dir.SearchGroups(ctx, "", "CN=Devs, OU=groups,"+ldaptest.BaseDN); err != nil || len(g) != 1 || g[0].Name != "devs" {
		t.Errorf("group by DN in another case: %+v %v", g, err)
	}
	if g, err := dir.SearchGroups(ctx, "", "cn=outside,ou=elsewhere,"+ldaptest.BaseDN); err != nil || len(g) != 0 {
		t.Errorf("group outside the group base: %+v %v, want none", g, err)
	}
	if g, err := dir.SearchGroups(ctx, "*", ""); err != nil || len(g) != 0 {
		t.Errorf("group named *: %+v %v, want none", g, err)
	}
	if _, err := dir.LookupGroup(ctx, "cn=nothere,"+ldaptest.GroupsDN); !errdefs.IsNotFound(err) {
		t.Errorf("missing group: %v", err)
	}
	if _, err := dir.LookupGroup(ctx, "not a dn"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad DN: %v", err)
	}
	ext, err := dir.Lookup(ctx, "alice", "")
	if err != nil || !ext.Admin || len(ext.Groups) != 2 {
		t.Errorf("lookup alice: %+v %v", ext, err)
	}
	// Moved in the directory: the old DN is gone, the name leads on.
	srv.Modify(t, "dn: "+ldaptest.UserDN("bob")+"\nchangetype: modrdn\nnewrdn: uid=bob\ndeleteoldrdn: 1\nnewsuperior: ou=elsewhere,"+ldaptest.BaseDN+"\n")
	if ext, err := dir.Lookup(ctx, "bob", dn(t, ldaptest.UserDN("bob"))); err != nil || ext.ID != dn(t, "uid=bob,ou=elsewhere,"+ldaptest.BaseDN) {
		t.Errorf("lookup of a moved user: %+v %v", ext, err)
	}
}

// BenchmarkAuthenticate is one LDAP login with group resolution against
// slapd: search, bind, two group lookups, on pooled connections.
func BenchmarkAuthenticate(b *testing.B) {
	srv := ldaptest.Start(b)
	srv.AddUser(b, ldaptest.User{UID: "alice", Password: "alice-pw"})
	srv.AddGroup(b, "devs", "alice")
	srv.AddGroup(b, "ops", "alice")
	cfg := &config{c: baseConfig(srv)}
	dir := ldap.New(cfg.get)
	defer dir.Close()
	ctx := context.Background()
	for b.Loop() {
		ext, err := dir.Authenticate(ctx, "alice", "alice-pw")
		if err != nil || len(ext.Groups) != 2 {
			b.Fatal(ext, err)
		}
	}
}

// TestActiveDirectoryShape: entries shaped like Active Directory's
// accounts (objectClass user, sAMAccountName, userAccountControl, memberOf)
// with AD's settings. A real AD refuses a disabled account's bind itself;
// slapd does not act on userAccountControl, so this checks that lading
// reads the flag and refuses the login (and that a sync drops the user).
func TestActiveDirectoryShape(t *testing.T) {
	srv := ldaptest.Start(t)
	srv.AddUser(t, ldaptest.User{UID: "jdoe", CN: "John Doe", Mail: "john.doe@example.org", Password: "jdoe-pw", AccountName: "John.Doe", AccountControl: ldaptest.NormalAccount})
	srv.AddUser(t, ldaptest.User{UID: "mroe", Password: "mroe-pw", AccountName: "mroe", AccountControl: ldaptest.DisabledAccount})
	srv.AddUser(t, ldaptest.User{UID: "alice", Password: "alice-pw"}) // not an AD account: the filter leaves her out
	srv.AddGroup(t, "devs", "jdoe", "mroe", "alice")
	c := baseConfig(srv)
	c.Filter, c.UID, c.GroupMembershipAttr = "(objectClass=user)", "sAMAccountName", "memberOf"
	cfg := &config{c: c}
	dir := ldap.New(cfg.get, ldap.WithRootCAs(srv.CA.Pool()))
	defer dir.Close()
	ctx := context.Background()

	ext, err := dir.Authenticate(ctx, "john.doe", "jdoe-pw")
	if err != nil {
		t.Fatalf("John.Doe by his sAMAccountName: %v", err)
	}
	want := identity.External{ID: dn(t, ldaptest.UserDN("jdoe")), Username: "John.Doe", Email: "john.doe@example.org", Realname: "John Doe", AdoptByName: true,
		Groups: []identity.ExternalGroup{{Type: identity.GroupLDAP, ID: dn(t, ldaptest.GroupDN("devs")), Name: "devs"}}}
	if diff := cmp.Diff(want, ext); diff != "" {
		t.Errorf("John.Doe (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"the uid is not the login attribute", "jdoe", "jdoe-pw"},
		{"an entry the filter leaves out", "alice", "alice-pw"},
		{"a disabled account with its right password", "mroe", "mroe-pw"},
	} {
		if _, err := dir.Authenticate(ctx, tc.user, tc.password); !errdefs.IsUnauthorized(err) {
			t.Errorf("%s: %v, want unauthorized", tc.name, err)
		}
	}
	if _, err := dir.Lookup(ctx, "mroe", ""); !errors.Is(err, identity.ErrGone) {
		t.Errorf("lookup of a disabled account: %v, want gone", err)
	}
	if users, err := dir.SearchUsers(ctx, "JOHN.DOE"); err != nil || len(users) != 1 || users[0].Username != "John.Doe" {
		t.Errorf("search JOHN.DOE: %+v %v", users, err)
	}

	// Disabled, then enabled again: each counts at the next login.
	srv.SetAccountControl(t, "jdoe", ldaptest.DisabledAccount)
	if _, err := dir.Authenticate(ctx, "John.Doe", "jdoe-pw"); !errdefs.IsUnauthorized(err) {
		t.Errorf("John.Doe disabled: %v, want unauthorized", err)
	}
	if _, err := dir.Lookup(ctx, "John.Doe", ""); !errors.Is(err, identity.ErrGone) {
		t.Errorf("lookup of John.Doe disabled: %v, want gone", err)
	}
	srv.SetAccountControl(t, "jdoe", ldaptest.NormalAccount)
	if _, err := dir.Authenticate(ctx, "John.Doe", "jdoe-pw"); err != nil {
		t.Errorf("John.Doe enabled again: %v", err)
	}
}
