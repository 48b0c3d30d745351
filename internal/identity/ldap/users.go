package ldap

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
)

// User is a directory user, as /ldap/users/search shows them.
type User struct {
	DN       string
	Username string
	Realname string
	Email    string
	// MemberOf holds the values of the group membership attribute.
	MemberOf []string
	// Disabled: the directory marks the account disabled (OpenLDAP's
	// password policy lock, Active Directory's ACCOUNTDISABLE flag).
	Disabled bool
}

// Group is a directory group.
type Group struct {
	DN   string
	Name string
}

// errBad is what a failed login says, whatever failed.
var errBad = errdefs.Unauthorized(errors.New("invalid username or password"))

// attribute names: a descriptor or an OID (RFC 4512).
var attrRe = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$`)

// compileFilter checks an administrator's filter and puts it in
// parentheses when it has none ("objectClass=person" is accepted, as
// Harbor accepts it). "" stays "".
func compileFilter(setting, f string) (string, error) {
	f = strings.TrimSpace(f)
	if f == "" {
		return "", nil
	}
	if !strings.HasPrefix(f, "(") || !strings.HasSuffix(f, ")") {
		f = "(" + f + ")"
	}
	if _, err := goldap.CompileFilter(f); err != nil {
		return "", errdefs.FailedPrecondition(fmt.Errorf("%s %q is not a valid LDAP filter: %v", setting, f, err))
	}
	return f, nil
}

// and joins filters.
func and(fs ...string) string {
	var parts []string
	for _, f := range fs {
		if f != "" {
			parts = append(parts, f)
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(&" + strings.Join(parts, "") + ")"
}

// userFilter is (&(ldap_filter)(uid=name)), the name escaped per RFC 4515
// so that no character of it (*, (, ), \, NUL, non-ASCII bytes) is read
// as filter syntax. An empty name matches every user.
func userFilter(cfg Config, name string) (string, error) {
	base, err := compileFilter("ldap_filter", cfg.Filter)
	if err != nil {
		return "", err
	}
	if !attrRe.MatchString(cfg.UID) {
		return "", errdefs.FailedPrecondition(fmt.Errorf("ldap_uid %q is not an attribute name", cfg.UID))
	}
	value := "*"
	if name != "" {
		value = goldap.EscapeFilter(name)
	}
	return and(base, "("+cfg.UID+"="+value+")"), nil
}

func userAttributes(cfg Config) []string {
	return []string{cfg.UID, "uid", "cn", "mail", "email", cfg.GroupMembershipAttr, "pwdAccountLockedTime", "userAccountControl"}
}

// searchError classes an error of a search under base.
func searchError(setting, base string, err error) error {
	switch {
	case err == nil:
		return nil
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		return errdefs.FailedPrecondition(fmt.Errorf("%s %q does not exist on the LDAP server", setting, base))
	case goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidDNSyntax):
		return errdefs.FailedPrecondition(fmt.Errorf("%s %q is not a valid DN", setting, base))
	case isNetwork(err):
		return err
	}
	return unavailable(fmt.Errorf("LDAP search under %s %q failed: %w", setting, base, err))
}

// findUsers searches users named name (all when ""), at most limit.
func findUsers(c *goldap.Conn, cfg Config, name string, limit int) ([]User, error) {
	filter, err := userFilter(cfg, name)
	if err != nil {
		return nil, err
	}
	req := goldap.NewSearchRequest(cfg.BaseDN, cfg.Scope, goldap.NeverDerefAliases, limit, 0, false, filter, userAttributes(cfg), nil)
	res, err := c.Search(req)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) && res != nil {
		err = nil // a partial answer: as many as asked for
	}
	if err != nil {
		return nil, searchError("ldap_base_dn", cfg.BaseDN, err)
	}
	out := make([]User, 0, len(res.Entries))
	for _, e := range res.Entries {
		out = append(out, userOf(e, cfg, name))
	}
	return out, nil
}

// userOf reads an entry as Harbor does: the name from ldap_uid (the value
// that matches the login name, if several), the real name from cn (else
// uid), the email from mail (else email).
func userOf(e *goldap.Entry, cfg Config, name string) User {
	u := User{DN: e.DN, Username: strings.TrimSpace(e.GetAttributeValue(cfg.UID))}
	for _, v := range e.GetAttributeValues(cfg.UID) {
		if strings.EqualFold(strings.TrimSpace(v), name) {
			u.Username = strings.TrimSpace(v)
		}
	}
	u.Realname = strings.TrimSpace(e.GetAttributeValue("cn"))
	if u.Realname == "" {
		u.Realname = strings.TrimSpace(e.GetAttributeValue("uid"))
	}
	u.Email = strings.TrimSpace(e.GetAttributeValue("mail"))
	if u.Email == "" {
		u.Email = strings.TrimSpace(e.GetAttributeValue("email"))
	}
	for _, g := range e.GetEqualFoldAttributeValues(cfg.GroupMembershipAttr) {
		u.MemberOf = append(u.MemberOf, strings.TrimSpace(g))
	}
	if e.GetAttributeValue("pwdAccountLockedTime") == "000001010000Z" {
		u.Disabled = true
	}
	if uac, err := strconv.ParseInt(e.GetAttributeValue("userAccountControl"), 10, 64); err == nil && uac&2 != 0 {
		u.Disabled = true
	}
	return u
}

// Authenticate checks a user's password against the directory and tells
// who they are there, with their groups (identity.Source). A user the
// directory no longer has is identity.ErrGone.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (identity.External, error) {
	if strings.TrimSpace(username) == "" || password == "" {
		return identity.External{}, errBad
	}
	ext, err := d.authenticate(ctx, username, password)
	if err != nil && !errdefs.IsUnauthorized(err) && !errors.Is(err, errdefs.ErrUnavailable) {
		// The directory is misconfigured: for the one logging in, it
		// is unavailable.
		return identity.External{}, unavailable(fmt.Errorf("LDAP login: %v", err))
	}
	return ext, err
}

func (d *Directory) authenticate(ctx context.Context, username, password string) (identity.External, error) {
	cfg, ctx, cancel, err := d.settings(ctx)
	defer cancel()
	if err != nil {
		return identity.External{}, err
	}
	var users []User
	err = d.with(ctx, cfg, true, func(c *goldap.Conn) error {
		users, err = findUsers(c, cfg, username, 2)
		return err
	})
	if err != nil {
		return identity.External{}, err
	}
	switch {
	case len(users) == 0:
		return identity.External{}, fmt.Errorf("%w: %w", errBad, identity.ErrGone)
	case len(users) > 1:
		d.log.Warn("LDAP login: the name matches more than one entry", "user", username)
		return identity.External{}, errBad
	}
	u := users[0]
	if u.Disabled {
		// Active Directory refuses such a bind itself; a directory that
		// only carries the flag (userAccountControl copied into
		// OpenLDAP) might not. Refused like a wrong password.
		return identity.External{}, errBad
	}
	err = d.with(ctx, cfg, false, func(c *goldap.Conn) error { return c.Bind(u.DN, password) })
	switch {
	case goldap.IsErrorAnyOf(err, goldap.LDAPResultInvalidCredentials, goldap.LDAPResultInappropriateAuthentication, goldap.LDAPResultUnwillingToPerform):
		return identity.External{}, errBad
	case err != nil && !errors.Is(err, errdefs.ErrUnavailable):
		return identity.External{}, errdefs.Unauthorized(fmt.Errorf("the LDAP server refused the login: %v", err))
	case err != nil:
		return identity.External{}, err
	}
	return d.external(ctx, cfg, u)
}

// external makes the identity of a directory user, resolving their
// groups.
func (d *Directory) external(ctx context.Context, cfg Config, u User) (identity.External, error) {
	id, err := NormalizeDN(u.DN)
	if err != nil {
		return identity.External{}, err
	}
	if u.Username == "" {
		return identity.External{}, errdefs.Unauthorized(fmt.Errorf("the LDAP entry %s has no %s attribute", u.DN, cfg.UID))
	}
	ext := identity.External{ID: id, Username: u.Username, Email: u.Email, Realname: u.Realname, AdoptByName: true}
	if ext.Email == "" && strings.Contains(ext.Username, "@") {
		ext.Email = ext.Username
	}
	if admin, err := NormalizeDN(cfg.GroupAdminDN); err == nil && cfg.GroupAdminDN != "" {
		for _, g := range u.MemberOf {
			if n, err := NormalizeDN(g); err == nil && n == admin {
				ext.Admin = true
			}
		}
	}
	if !cfg.groupsOn() || len(u.MemberOf) == 0 {
		return ext, nil
	}
	err = d.with(ctx, cfg, true, func(c *goldap.Conn) error {
		groups, err := resolveGroups(c, cfg, u.MemberOf)
		for _, g := range groups {
			ext.Groups = append(ext.Groups, identity.ExternalGroup{Type: identity.GroupLDAP, ID: g.DN, Name: g.Name})
		}
		return err
	})
	return ext, err
}

// resolveGroups keeps the DNs that are groups as configured (under the
// group base, matching the group filter) and names them; the lookups run
// side by side on the connection.
func resolveGroups(c *goldap.Conn, cfg Config, dns []string) ([]Group, error) {
	filter, err := compileFilter("ldap_group_search_filter", cfg.GroupFilter)
	if err != nil {
		return nil, err
	}
	if filter == "" {
		filter = "(objectClass=*)"
	}
	found := make([]*Group, len(dns))
	errs := make([]error, len(dns))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, dn := range dns {
		if !under(cfg.groupBase(), dn) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			found[i], errs[i] = groupAt(c, cfg, dn, filter)
		}()
	}
	wg.Wait()
	var out []Group
	for i := range dns {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if found[i] != nil {
			out = append(out, *found[i])
		}
	}
	return out, nil
}

// groupAt reads the group at dn (nil when there is none matching filter).
func groupAt(c *goldap.Conn, cfg Config, dn, filter string) (*Group, error) {
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false, filter, []string{cfg.GroupNameAttribute}, nil)
	res, err := c.Search(req)
	if goldap.IsErrorAnyOf(err, goldap.LDAPResultNoSuchObject, goldap.LDAPResultInvalidDNSyntax) {
		return nil, nil
	}
	if err != nil {
		return nil, searchError("group", dn, err)
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return groupOf(res.Entries[0], cfg)
}

func groupOf(e *goldap.Entry, cfg Config) (*Group, error) {
	dn, err := NormalizeDN(e.DN)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(e.GetEqualFoldAttributeValue(cfg.GroupNameAttribute))
	if name == "" {
		name = e.DN
	}
	return &Group{DN: dn, Name: name}, nil
}
