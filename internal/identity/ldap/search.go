package ldap

import (
	"context"
	"fmt"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
)

// maxResults bounds a search's answer.
const maxResults = 1000

// SearchUsers finds users by their exact name (every user, up to a
// thousand, when name is "").
func (d *Directory) SearchUsers(ctx context.Context, name string) ([]User, error) {
	cfg, ctx, cancel, err := d.settings(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	var users []User
	err = d.with(ctx, cfg, true, func(c *goldap.Conn) error {
		users, err = findUsers(c, cfg, name, maxResults)
		return err
	})
	return users, err
}

// Lookup returns the identity of a user the directory has, found by name
// (import) or, when dn is set, at that DN (the group sync, which follows
// a user whose name changed): with their groups, as a login would see
// them, but without their password. A user the directory no longer has,
// or marks disabled, is identity.ErrGone.
func (d *Directory) Lookup(ctx context.Context, name, dn string) (identity.External, error) {
	cfg, ctx, cancel, err := d.settings(ctx)
	defer cancel()
	if err != nil {
		return identity.External{}, err
	}
	var users []User
	err = d.with(ctx, cfg, true, func(c *goldap.Conn) error {
		if dn == "" {
			users, err = findUsers(c, cfg, name, 2)
			return err
		}
		if users, err = userAt(c, cfg, dn); err != nil || len(users) > 0 || name == "" {
			return err
		}
		// Moved or renamed in the directory: follow the name.
		users, err = findUsers(c, cfg, name, 2)
		return err
	})
	if err != nil {
		return identity.External{}, err
	}
	switch {
	case len(users) == 0 || users[0].Disabled:
		return identity.External{}, errdefs.NotFound(fmt.Errorf("no LDAP user %s: %w", firstOf(dn, name), identity.ErrGone))
	case len(users) > 1:
		return identity.External{}, errdefs.Conflict(fmt.Errorf("more than one LDAP entry is named %s", name))
	}
	return d.external(ctx, cfg, users[0])
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// userAt reads the user at dn, if it still matches ldap_filter and is
// under ldap_base_dn.
func userAt(c *goldap.Conn, cfg Config, dn string) ([]User, error) {
	if !under(cfg.BaseDN, dn) {
		return nil, nil
	}
	filter, err := userFilter(cfg, "")
	if err != nil {
		return nil, err
	}
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false, filter, userAttributes(cfg), nil)
	res, err := c.Search(req)
	if goldap.IsErrorAnyOf(err, goldap.LDAPResultNoSuchObject, goldap.LDAPResultInvalidDNSyntax) {
		return nil, nil
	}
	if err != nil {
		return nil, searchError("user", dn, err)
	}
	var out []User
	for _, e := range res.Entries {
		out = append(out, userOf(e, cfg, ""))
	}
	return out, nil
}

// SearchGroups finds groups by their exact name (under the group base, in
// ldap_group_search_scope, matching ldap_group_search_filter) or, when
// dn is set, the group at that DN.
func (d *Directory) SearchGroups(ctx context.Context, name, dn string) ([]Group, error) {
	cfg, ctx, cancel, err := d.settings(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	if dn != "" {
		if _, err := NormalizeDN(dn); err != nil {
			return nil, err
		}
	}
	filter, err := compileFilter("ldap_group_search_filter", cfg.GroupFilter)
	if err != nil {
		return nil, err
	}
	var out []Group
	err = d.with(ctx, cfg, true, func(c *goldap.Conn) error {
		if dn != "" {
			if !under(cfg.groupBase(), dn) {
				return nil
			}
			g, err := groupAt(c, cfg, dn, and(filter, "(objectClass=*)"))
			if g != nil {
				out = append(out, *g)
			}
			return err
		}
		if !attrRe.MatchString(cfg.GroupNameAttribute) {
			return errdefs.FailedPrecondition(fmt.Errorf("ldap_group_attribute_name %q is not an attribute name", cfg.GroupNameAttribute))
		}
		value := "*"
		if name != "" {
			value = goldap.EscapeFilter(name)
		}
		f := and(filter, "("+cfg.GroupNameAttribute+"="+value+")")
		req := goldap.NewSearchRequest(cfg.groupBase(), cfg.GroupScope, goldap.NeverDerefAliases, maxResults, 0, false, f, []string{cfg.GroupNameAttribute}, nil)
		res, err := c.Search(req)
		if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) && res != nil {
			err = nil
		}
		if err != nil {
			return searchError("ldap_group_base_dn", cfg.groupBase(), err)
		}
		for _, e := range res.Entries {
			g, err := groupOf(e, cfg)
			if err != nil {
				return err
			}
			out = append(out, *g)
		}
		return nil
	})
	return out, err
}

// LookupGroup returns the LDAP group at dn, as /usergroups and project
// members name it (identity.GroupSource): errdefs.ErrNotFound when the
// directory has no such group under the group base.
func (d *Directory) LookupGroup(ctx context.Context, dn string) (identity.ExternalGroup, error) {
	groups, err := d.SearchGroups(ctx, "", dn)
	if err != nil {
		return identity.ExternalGroup{}, err
	}
	if len(groups) == 0 {
		return identity.ExternalGroup{}, errdefs.NotFound(fmt.Errorf("LDAP group DN is not found: DN:%s", dn))
	}
	return identity.ExternalGroup{Type: identity.GroupLDAP, ID: groups[0].DN, Name: groups[0].Name}, nil
}
