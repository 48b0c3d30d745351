package ldap

import (
	"context"
	"errors"
	"fmt"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Current returns the stored configuration (for /ldap/ping to complete a
// partial one, and to fill in a search password it was not given).
func (d *Directory) Current(ctx context.Context) (Config, error) {
	cfg, err := d.config(ctx)
	return cfg.withDefaults(), err
}

// Ping tries a configuration on a connection of its own and says what is
// wrong with it, in the order a login meets the problems: the URL, the
// connection (unreachable, no answer), TLS (the certificate problem
// named), the search DN's bind, the base DN, the filters.
func (d *Directory) Ping(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if _, err := ParseURL(cfg.URL); err != nil {
		return err
	}
	if cfg.BaseDN == "" {
		return errdefs.InvalidArgument(errors.New("ldap_base_dn is empty"))
	}
	if _, err := userFilter(cfg, "x"); err != nil {
		return err
	}
	if _, err := compileFilter("ldap_group_search_filter", cfg.GroupFilter); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := d.dial(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return d.unavailable(ctx, cfg, err)
		}
		return err
	}
	defer c.Close()
	c.SetTimeout(cfg.Timeout)
	if err := bindSearch(c, cfg); err != nil {
		if isNetwork(err) {
			return d.unavailable(ctx, cfg, err)
		}
		return err
	}
	for _, b := range []struct{ setting, dn string }{{"ldap_base_dn", cfg.BaseDN}, {"ldap_group_base_dn", cfg.GroupBaseDN}} {
		if b.dn == "" {
			continue
		}
		req := goldap.NewSearchRequest(b.dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"1.1"}, nil)
		if _, err := c.Search(req); err != nil {
			if isNetwork(err) {
				return d.unavailable(ctx, cfg, err)
			}
			return searchError(b.setting, b.dn, err)
		}
	}
	return nil
}

// PingMessage is Ping's answer as Harbor's LdapPingResult words it.
func PingMessage(err error) (bool, string) {
	if err == nil {
		return true, ""
	}
	return false, fmt.Sprintf("error: %v", err)
}
