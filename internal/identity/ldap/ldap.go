// Package ldap authenticates lading's users against an LDAP directory or
// Active Directory (auth_mode ldap_auth), tells their groups, and answers
// Harbor's LDAP endpoints (/ldap/ping, /ldap/users/search,
// /ldap/users/import, /ldap/groups/search).
//
// # Configuration
//
// Harbor's ldap_* settings (see Config), read at every call, so that a
// change through /configurations takes effect at once. ldap_url is
// ldap://host[:389], ldaps://host[:636] or host[:port] (port 636 means
// ldaps); lading's own ldap_start_tls upgrades an ldap:// connection with
// StartTLS. Certificates are verified (ldap_verify_cert, on by default)
// against the system's roots and those given with WithRootCAs.
//
// # A login
//
//  1. search the user under ldap_base_dn with
//     (&(<ldap_filter>)(<ldap_uid>=<name, escaped per RFC 4515>)), bound
//     as ldap_search_dn: exactly one entry must match;
//  2. bind as that entry's DN with the password (an empty password is
//     refused before it reaches the directory: LDAP would take it for an
//     anonymous bind);
//  3. read the entry's ldap_group_membership_attribute (memberOf): a DN
//     equal to ldap_group_admin_dn makes the user an administrator; when
//     group search is configured (ldap_group_base_dn or
//     ldap_group_search_filter), each DN under the group base that matches
//     ldap_group_search_filter becomes one of the user's groups, named by
//     ldap_group_attribute_name (cn by default).
//
// Nothing of a login is cached, neither its result nor the group list:
// every login and every token request asks the directory, so that a
// change there (a password, a group, a locked or deleted account) counts
// at once. What is reused is connections: a pool bound as the search DN
// for searches, and a pool for users' binds, keyed by the connection
// settings (a change of URL, TLS or search DN empties them).
//
// All directory round trips of one call share one deadline, ldap_timeout
// seconds (5 by default), so a directory that is down or hung delays only
// the logins that need it, and by at most that.
package ldap

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Config is Harbor's LDAP settings.
type Config struct {
	URL            string // ldap_url
	StartTLS       bool   // ldap_start_tls (lading's own)
	VerifyCert     bool   // ldap_verify_cert
	SearchDN       string // ldap_search_dn
	SearchPassword string // ldap_search_password
	BaseDN         string // ldap_base_dn
	Filter         string // ldap_filter
	UID            string // ldap_uid
	Scope          int    // ldap_scope: 0 base, 1 one level, 2 subtree
	Timeout        time.Duration

	GroupBaseDN         string // ldap_group_base_dn
	GroupFilter         string // ldap_group_search_filter
	GroupNameAttribute  string // ldap_group_attribute_name
	GroupScope          int    // ldap_group_search_scope
	GroupAdminDN        string // ldap_group_admin_dn
	GroupMembershipAttr string // ldap_group_membership_attribute
}

// ConfigOf reads the ldap_* settings from the settings' values.
func ConfigOf(v map[string]any) Config {
	str := func(n string) string { s, _ := v[n].(string); return strings.TrimSpace(s) }
	num := func(n string) int64 { i, _ := v[n].(int64); return i }
	flag := func(n string) bool { b, _ := v[n].(bool); return b }
	c := Config{
		URL: str("ldap_url"), StartTLS: flag("ldap_start_tls"), VerifyCert: flag("ldap_verify_cert"),
		SearchDN: str("ldap_search_dn"), BaseDN: str("ldap_base_dn"), Filter: str("ldap_filter"), UID: str("ldap_uid"),
		Scope: int(num("ldap_scope")), Timeout: time.Duration(num("ldap_timeout")) * time.Second,
		GroupBaseDN: str("ldap_group_base_dn"), GroupFilter: str("ldap_group_search_filter"),
		GroupNameAttribute: str("ldap_group_attribute_name"), GroupScope: int(num("ldap_group_search_scope")),
		GroupAdminDN: str("ldap_group_admin_dn"), GroupMembershipAttr: str("ldap_group_membership_attribute"),
	}
	c.SearchPassword, _ = v["ldap_search_password"].(string)
	return c.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.UID == "" {
		c.UID = "uid"
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.GroupNameAttribute == "" {
		c.GroupNameAttribute = "cn"
	}
	if c.GroupMembershipAttr == "" {
		c.GroupMembershipAttr = "memberof"
	}
	return c
}

// groupsOn reports whether users' groups are searched at login.
func (c Config) groupsOn() bool { return c.GroupBaseDN != "" || c.GroupFilter != "" }

// groupBase is where groups live: ldap_group_base_dn, else ldap_base_dn.
func (c Config) groupBase() string {
	if c.GroupBaseDN != "" {
		return c.GroupBaseDN
	}
	return c.BaseDN
}

// endpoint is a parsed ldap_url.
type endpoint struct {
	tls  bool   // ldaps
	host string // without the port
	addr string // host:port
}

var hostRe = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

// ParseURL reads an ldap_url as Harbor does: "ldap://host[:port]",
// "ldaps://host[:port]" or "host[:port]"; port 636 means ldaps, the
// default ports are 389 and 636.
func ParseURL(s string) (endpoint, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return endpoint{}, errdefs.FailedPrecondition(errors.New("LDAP is not configured: ldap_url is empty"))
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "ldap", s
	}
	scheme = strings.ToLower(scheme)
	if scheme != "ldap" && scheme != "ldaps" {
		return endpoint{}, errdefs.InvalidArgument(fmt.Errorf("ldap_url %q: the scheme must be ldap or ldaps", s))
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return endpoint{}, errdefs.InvalidArgument(fmt.Errorf("ldap_url %q: want ldap[s]://host[:port]", s))
	}
	e := endpoint{tls: scheme == "ldaps", host: u.Hostname()}
	if net.ParseIP(e.host) == nil && !hostRe.MatchString(e.host) {
		return endpoint{}, errdefs.InvalidArgument(fmt.Errorf("ldap_url %q: %q is not a host name or address", s, e.host))
	}
	port := u.Port()
	switch {
	case port == "" && e.tls:
		port = "636"
	case port == "":
		port = "389"
	case port == "636":
		e.tls = true
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return endpoint{}, errdefs.InvalidArgument(fmt.Errorf("ldap_url %q: bad port", s))
	}
	e.addr = net.JoinHostPort(e.host, port)
	return e, nil
}

// Directory is an LDAP directory as an identity source (identity.Source)
// and the client of Harbor's LDAP endpoints.
type Directory struct {
	config func(context.Context) (Config, error)
	roots  *x509.CertPool
	log    *slog.Logger

	mu           sync.Mutex
	search, bind *pool
}

// Option configures a Directory.
type Option func(*Directory)

// WithRootCAs makes the directory's certificate verifiable with roots
// (in addition to the system's, which are used when roots is nil).
func WithRootCAs(roots *x509.CertPool) Option { return func(d *Directory) { d.roots = roots } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(d *Directory) { d.log = l } }

// New returns a directory whose settings config returns at each call.
func New(config func(context.Context) (Config, error), opts ...Option) *Directory {
	d := &Directory{config: config, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Close closes the pooled connections.
func (d *Directory) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range []*pool{d.search, d.bind} {
		if p != nil {
			p.drain()
		}
	}
	d.search, d.bind = nil, nil
}

// settings returns the current configuration and a context bounded by its
// timeout.
func (d *Directory) settings(ctx context.Context) (Config, context.Context, context.CancelFunc, error) {
	cfg, err := d.config(ctx)
	if err != nil {
		return cfg, ctx, func() {}, err
	}
	cfg = cfg.withDefaults()
	if _, err := ParseURL(cfg.URL); err != nil {
		return cfg, ctx, func() {}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	return cfg, ctx, cancel, nil
}

// NormalizeDN returns a DN's canonical form, lower case, in which DNs
// that name the same entry compare equal as strings (as the directory
// compares cn, ou, dc, uid: case-insensitively).
func NormalizeDN(dn string) (string, error) {
	p, err := goldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 {
		return "", errdefs.InvalidArgument(fmt.Errorf("invalid DN syntax: %q", dn))
	}
	return strings.ToLower(p.String()), nil
}

// under reports whether dn is base or below it.
func under(base, dn string) bool {
	b, err1 := goldap.ParseDN(base)
	c, err2 := goldap.ParseDN(dn)
	if err1 != nil || err2 != nil {
		return false
	}
	return b.EqualFold(c) || b.AncestorOfFold(c)
}
