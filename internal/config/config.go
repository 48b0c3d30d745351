// Package config holds the settings that Harbor keeps in its database and
// serves at /api/v2.0/configurations: authentication mode, self
// registration, who may create projects, token and session lifetimes,
// robot naming, the audit log's forwarding, default quotas...
//
// Settings live in the metadata database (table settings: key, JSON
// value), so every replica sees the same ones; each process caches them
// for at most a second. A setting may also be fixed by lading's
// configuration file (serve's "settings:" section): it then overrides the
// database and is reported as not editable, as Harbor reports settings
// fixed by its environment. Secrets (passwords, client secrets) are
// stored but never returned.
//
// Adding a setting is one entry in Keys (name, kind, default, secret) and,
// where a service reads it, a field of Settings filled in Get.
package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Kind is a setting's type.
type Kind int

// The kinds.
const (
	String Kind = iota
	Int
	Bool
)

// Key describes a setting.
type Key struct {
	Name    string
	Kind    Kind
	Default any
	// Secret settings are never returned.
	Secret bool
	// ReadOnly settings cannot be changed through the API.
	ReadOnly bool
	// Check validates a new value.
	Check func(any) error
}

// Keys are the known settings: Harbor's (those of its Configurations
// model that lading stores, LDAP and OIDC included for the identity
// sources that read them) and lading's own.
var Keys = []Key{
	{Name: "auth_mode", Default: "db_auth", Check: oneOf("db_auth", "ldap_auth", "oidc_auth", "http_auth", "uaa_auth")},
	{Name: "primary_auth_mode", Kind: Bool, Default: false},
	{Name: "self_registration", Kind: Bool, Default: false},
	{Name: "project_creation_restriction", Default: "everyone", Check: oneOf("everyone", "adminonly")},
	{Name: "token_expiration", Kind: Int, Default: int64(30), Check: positive},
	{Name: "robot_token_duration", Kind: Int, Default: int64(30), Check: positive},
	{Name: "robot_name_prefix", Default: "robot$", Check: robotPrefix},
	{Name: "session_timeout", Kind: Int, Default: int64(60), Check: positive},
	{Name: "read_only", Kind: Bool, Default: false},
	{Name: "notification_enable", Kind: Bool, Default: true},
	{Name: "quota_per_project_enable", Kind: Bool, Default: true},
	{Name: "storage_per_project", Kind: Int, Default: int64(-1), Check: quota},
	{Name: "audit_log_forward_endpoint", Default: "", Check: endpoint},
	{Name: "skip_audit_log_database", Kind: Bool, Default: false},
	{Name: "disabled_audit_log_event_types", Default: ""},
	{Name: "banner_message", Default: ""},
	{Name: "scanner_skip_update_pulltime", Kind: Bool, Default: false},
	// lading's own: audit log entries older than this many hours are
	// purged (0 keeps everything), and pulls are audited unless
	// pull_artifact is among disabled_audit_log_event_types.
	{Name: "audit_log_retention_hour", Kind: Int, Default: int64(0), Check: nonNegative},
	// LDAP and OIDC, for the identity sources.
	{Name: "ldap_url", Default: "", Check: ldapURL},
	{Name: "ldap_base_dn", Default: ""},
	{Name: "ldap_filter", Default: ""},
	{Name: "ldap_scope", Kind: Int, Default: int64(2), Check: ldapScope},
	{Name: "ldap_search_dn", Default: ""},
	{Name: "ldap_search_password", Default: "", Secret: true},
	{Name: "ldap_timeout", Kind: Int, Default: int64(5), Check: between(1, 300)},
	{Name: "ldap_uid", Default: "cn"},
	{Name: "ldap_verify_cert", Kind: Bool, Default: true},
	{Name: "ldap_group_base_dn", Default: ""},
	{Name: "ldap_group_search_filter", Default: ""},
	{Name: "ldap_group_attribute_name", Default: ""},
	{Name: "ldap_group_search_scope", Kind: Int, Default: int64(2), Check: ldapScope},
	{Name: "ldap_group_admin_dn", Default: ""},
	{Name: "ldap_group_membership_attribute", Default: "memberof"},
	{Name: "ldap_group_attach_parallel", Kind: Bool, Default: false},
	// lading's own: StartTLS on an ldap:// URL, and the schedule (six
	// cron fields, "" for none) of the job that refreshes LDAP users'
	// groups between their logins.
	{Name: "ldap_start_tls", Kind: Bool, Default: false},
	{Name: "ldap_group_sync_cron", Default: "0 0 * * * *"},
	{Name: "oidc_name", Default: ""},
	{Name: "oidc_endpoint", Default: "", Check: oidcEndpoint},
	{Name: "oidc_client_id", Default: ""},
	{Name: "oidc_client_secret", Default: "", Secret: true},
	{Name: "oidc_groups_claim", Default: ""},
	{Name: "oidc_admin_group", Default: ""},
	{Name: "oidc_group_filter", Default: "", Check: regexpOK},
	{Name: "oidc_scope", Default: "openid,offline_access", Check: oidcScope},
	{Name: "oidc_user_claim", Default: ""},
	{Name: "oidc_verify_cert", Kind: Bool, Default: true},
	{Name: "oidc_auto_onboard", Kind: Bool, Default: false},
	{Name: "oidc_extra_redirect_parms", Default: "", Check: jsonStrings},
	{Name: "oidc_logout", Kind: Bool, Default: false},
}

func keyByName(name string) (Key, bool) {
	i := slices.IndexFunc(Keys, func(k Key) bool { return k.Name == name })
	if i < 0 {
		return Key{}, false
	}
	return Keys[i], true
}

// Migrations create the settings table.
var Migrations = []sqldb.Migration{{Owner: "config", Name: "settings", SQL: []string{
	`CREATE TABLE settings (
		name {{text}} PRIMARY KEY,
		value {{text}} NOT NULL,
		updated {{int}} NOT NULL)`,
}}}

// Settings are the values services read.
type Settings struct {
	AuthMode                   string
	SelfRegistration           bool
	ProjectCreationRestriction string
	TokenExpiration            time.Duration
	RobotTokenDuration         int64 // days
	RobotNamePrefix            string
	SessionTimeout             time.Duration
	ReadOnly                   bool
	QuotaPerProjectEnable      bool
	StoragePerProject          int64
	AuditForwardEndpoint       string
	SkipAuditDatabase          bool
	DisabledAuditEvents        []string
	AuditRetentionHours        int64
	BannerMessage              string
	// Values holds every setting by name, for the sources (LDAP, OIDC)
	// that read their own.
	Values map[string]any
}

// Item is a setting as GET /configurations shows it.
type Item struct {
	Value    any  `json:"value"`
	Editable bool `json:"editable"`
}

// Store reads and writes the settings.
type Store struct {
	db     *sqldb.DB
	access *access.Checker
	audit  *audit.Log

	// check vets an update against the current settings; changed hears
	// of committed ones (see SetCheck, OnChange).
	check   func(ctx context.Context, current Settings, changes map[string]any) error
	changed []func(ctx context.Context, names []string)

	mu         sync.Mutex
	overrides  map[string]any
	guards     map[string]func(context.Context) error
	stored     map[string]any // the database's values, last loaded
	cached     *Settings
	until      time.Time
	refreshing bool
	// loads numbers the loads from the database as they start; loaded
	// is the number of the one cached.
	loads, loaded uint64
}

// New returns the settings store. overrides are settings fixed by the
// configuration file; see SetOverrides.
func New(db *sqldb.DB, checker *access.Checker, log *audit.Log) *Store {
	return &Store{db: db, access: checker, audit: log}
}

// Guard makes setting name changeable only while check returns nil; its
// error (say, auth_mode "cannot be modified as new users have been
// inserted into database") refuses an update that changes the value, and
// GET /configurations shows the setting as not editable. The wiring sets
// guards that need other services' data, so config imports none of them.
func (s *Store) Guard(name string, check func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.guards == nil {
		s.guards = map[string]func(context.Context) error{}
	}
	s.guards[name] = check
}

// SetCheck installs a check of updates that needs more than a value and
// more than Guard's yes or no (a cron expression the job service must
// parse). It runs before anything is written; its error refuses the whole
// update.
func (s *Store) SetCheck(fn func(ctx context.Context, current Settings, changes map[string]any) error) {
	s.check = fn
}

// OnChange registers fn to hear of the names of settings an update
// changed, after it committed (a schedule to re-arm).
func (s *Store) OnChange(fn func(ctx context.Context, names []string)) {
	s.changed = append(s.changed, fn)
}

// SetOverrides fixes settings from the configuration file (on start and on
// reload): they win over the database and are not editable.
func (s *Store) SetOverrides(o map[string]any) error {
	norm := map[string]any{}
	for name, v := range o {
		k, ok := keyByName(name)
		if !ok {
			return errdefs.InvalidArgument(fmt.Errorf("settings: unknown setting %q", name))
		}
		nv, err := normalize(k, v)
		if err != nil {
			return err
		}
		norm[name] = nv
	}
	s.mu.Lock()
	s.overrides = norm
	if s.stored != nil {
		// Applies at once; the database is read again as usual.
		st := merge(s.stored, norm)
		s.cached = &st
	}
	s.mu.Unlock()
	return nil
}

// cacheFor is how long a process trusts its copy of the settings; another
// replica's change is seen within about that.
const cacheFor = time.Second

// Get returns the current settings. Only the first call waits for the
// database; later ones return the cached copy at once and, when it is
// older than cacheFor, refresh it in the background. So Get may be called
// inside a transaction without taking a second connection from the pool
// (which, with every connection held by a transaction waiting for one,
// would deadlock).
func (s *Store) Get(ctx context.Context) (Settings, error) {
	s.mu.Lock()
	if s.cached != nil {
		c := *s.cached
		if time.Now().After(s.until) && !s.refreshing {
			s.refreshing = true
			go s.refresh(context.WithoutCancel(ctx))
		}
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	return s.refresh(ctx)
}

// refresh loads the settings and caches them. A load that started
// before another one already cached (a background refresh that read the
// database before an update committed, finishing after the update's own
// refresh) is stale: the newer copy stays.
func (s *Store) refresh(ctx context.Context) (Settings, error) {
	s.mu.Lock()
	s.loads++
	ticket := s.loads
	s.mu.Unlock()
	values, err := s.load(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshing = false
	if err != nil {
		return Settings{}, err
	}
	if ticket < s.loaded && s.cached != nil {
		return *s.cached, nil
	}
	s.loaded = ticket
	s.stored = values
	st := merge(values, s.overrides)
	s.cached, s.until = &st, time.Now().Add(cacheFor)
	return st, nil
}

// merge returns the settings of the stored values with the overrides.
func merge(stored, overrides map[string]any) Settings {
	values := maps.Clone(stored)
	maps.Copy(values, overrides)
	return settingsOf(values)
}

func (s *Store) load(ctx context.Context) (map[string]any, error) {
	values := map[string]any{}
	for _, k := range Keys {
		values[k.Name] = k.Default
	}
	rows, err := s.db.Query(ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, s.db.Wrap("settings", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, raw string
		if err := rows.Scan(&name, &raw); err != nil {
			return nil, s.db.Wrap("settings", err)
		}
		k, ok := keyByName(name)
		if !ok {
			continue // a setting of a newer version
		}
		var v any
		if json.Unmarshal([]byte(raw), &v) == nil {
			if nv, err := normalize(k, v); err == nil {
				values[name] = nv
			}
		}
	}
	return values, s.db.Wrap("settings", rows.Err())
}

func settingsOf(v map[string]any) Settings {
	str := func(n string) string { s, _ := v[n].(string); return s }
	num := func(n string) int64 { i, _ := v[n].(int64); return i }
	flag := func(n string) bool { b, _ := v[n].(bool); return b }
	var disabled []string
	for t := range strings.SplitSeq(str("disabled_audit_log_event_types"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			disabled = append(disabled, t)
		}
	}
	return Settings{
		AuthMode:                   str("auth_mode"),
		SelfRegistration:           flag("self_registration"),
		ProjectCreationRestriction: str("project_creation_restriction"),
		TokenExpiration:            time.Duration(num("token_expiration")) * time.Minute,
		RobotTokenDuration:         num("robot_token_duration"),
		RobotNamePrefix:            str("robot_name_prefix"),
		SessionTimeout:             time.Duration(num("session_timeout")) * time.Minute,
		ReadOnly:                   flag("read_only"),
		QuotaPerProjectEnable:      flag("quota_per_project_enable"),
		StoragePerProject:          num("storage_per_project"),
		AuditForwardEndpoint:       str("audit_log_forward_endpoint"),
		SkipAuditDatabase:          flag("skip_audit_log_database"),
		DisabledAuditEvents:        disabled,
		AuditRetentionHours:        num("audit_log_retention_hour"),
		BannerMessage:              str("banner_message"),
		Values:                     v,
	}
}

// List returns every setting but the secrets, as GET /configurations
// shows them; sysadmins only.
func (s *Store) List(ctx context.Context, who access.Subject) (map[string]Item, error) {
	if err := s.access.Require(ctx, who, access.Read, access.Configuration, 0); err != nil {
		return nil, err
	}
	st, err := s.Get(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	overrides, guards := s.overrides, s.guards
	s.mu.Unlock()
	out := map[string]Item{}
	for _, k := range Keys {
		if k.Secret {
			continue
		}
		_, fixed := overrides[k.Name]
		editable := !fixed && !k.ReadOnly
		if g := guards[k.Name]; editable && g != nil {
			editable = g(ctx) == nil
		}
		out[k.Name] = Item{Value: st.Values[k.Name], Editable: editable}
	}
	return out, nil
}

// Update changes settings (sysadmins only), all or none: an unknown
// setting, a value of the wrong type or out of range, or a setting fixed
// by the configuration file refuses the whole update.
func (s *Store) Update(ctx context.Context, who access.Subject, changes map[string]any) error {
	if err := s.access.Require(ctx, who, access.Update, access.Configuration, 0); err != nil {
		return err
	}
	s.mu.Lock()
	overrides, guards := s.overrides, s.guards
	s.mu.Unlock()
	current, err := s.Get(ctx)
	if err != nil {
		return err
	}
	norm := map[string]any{}
	for name, v := range changes {
		k, ok := keyByName(name)
		if !ok {
			return errdefs.InvalidArgument(fmt.Errorf("unknown configuration %q", name))
		}
		if _, fixed := overrides[name]; fixed || k.ReadOnly {
			return errdefs.InvalidArgument(fmt.Errorf("configuration %q is not editable", name))
		}
		nv, err := normalize(k, v)
		if err != nil {
			return err
		}
		if g := guards[name]; g != nil && nv != current.Values[name] {
			if err := g(ctx); err != nil {
				return err
			}
		}
		norm[name] = nv
	}
	if len(norm) == 0 {
		return nil
	}
	if s.check != nil {
		cur, err := s.refresh(ctx)
		if err != nil {
			return err
		}
		if err := s.check(ctx, cur, norm); err != nil {
			return err
		}
	}
	names := slices.Sorted(maps.Keys(norm))
	err = s.db.Tx(ctx, "update configuration", func(tx *sqldb.Tx) error {
		now := sqldb.Nanos(s.db.Now())
		for _, name := range names {
			b, _ := json.Marshal(norm[name])
			if _, err := tx.Exec(ctx, `INSERT INTO settings (name, value, updated) VALUES (?, ?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated`, name, string(b), now); err != nil {
				return err
			}
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "configuration", Resource: "configuration",
			Description: "update configuration: " + strings.Join(names, ", ")})
	})
	if err != nil {
		return err
	}
	if _, err = s.refresh(ctx); err != nil {
		return err
	}
	for _, fn := range s.changed {
		fn(ctx, names)
	}
	return nil
}

// normalize checks v (as JSON decodes it) against k and returns it as the
// kind's Go type: string, int64 or bool.
func normalize(k Key, v any) (any, error) {
	var out any
	bad := errdefs.InvalidArgument(fmt.Errorf("configuration %s: %v is not a %s", k.Name, v, [...]string{"string", "integer", "boolean"}[k.Kind]))
	switch k.Kind {
	case String:
		s, ok := v.(string)
		if !ok {
			return nil, bad
		}
		out = s
	case Int:
		switch x := v.(type) {
		case float64:
			if x != float64(int64(x)) {
				return nil, bad
			}
			out = int64(x)
		case int64:
			out = x
		case int:
			out = int64(x)
		case json.Number:
			i, err := x.Int64()
			if err != nil {
				return nil, bad
			}
			out = i
		case string:
			i, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return nil, bad
			}
			out = i
		default:
			return nil, bad
		}
	case Bool:
		switch x := v.(type) {
		case bool:
			out = x
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				return nil, bad
			}
			out = b
		default:
			return nil, bad
		}
	}
	if k.Check != nil {
		if err := k.Check(out); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("configuration %s: %w", k.Name, err))
		}
	}
	return out, nil
}

func oneOf(vals ...string) func(any) error {
	return func(v any) error {
		if !slices.Contains(vals, v.(string)) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
		}
		return nil
	}
}

func positive(v any) error {
	if v.(int64) <= 0 {
		return errors.New("must be positive")
	}
	return nil
}

func nonNegative(v any) error {
	if v.(int64) < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

func quota(v any) error {
	if n := v.(int64); n < -1 || n == 0 {
		return errors.New("must be -1 (unlimited) or a positive number of bytes")
	}
	return nil
}

func robotPrefix(v any) error {
	s := v.(string)
	if s == "" || len(s) > 64 || strings.ContainsAny(s, " \t\n/:@") {
		return fmt.Errorf("%q: want 1 to 64 characters without spaces, '/', ':' or '@'", s)
	}
	return nil
}

func endpoint(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("%q: bad port", s)
	}
	return nil
}

func between(lo, hi int64) func(any) error {
	return func(v any) error {
		if n := v.(int64); n < lo || n > hi {
			return fmt.Errorf("%d: want %d to %d", n, lo, hi)
		}
		return nil
	}
}

// ldapScope is 0 (base), 1 (one level) or 2 (subtree).
func ldapScope(v any) error {
	if n := v.(int64); n < 0 || n > 2 {
		return fmt.Errorf("%d: want 0 (base), 1 (one level) or 2 (subtree)", n)
	}
	return nil
}

func ldapURL(v any) error {
	s := strings.TrimSpace(v.(string))
	if s == "" {
		return nil
	}
	if scheme, _, ok := strings.Cut(s, "://"); ok && scheme != "ldap" && scheme != "ldaps" {
		return fmt.Errorf("%q: the scheme must be ldap or ldaps", s)
	}
	return nil
}

func oidcEndpoint(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want the provider's issuer URL, https://host[/path]", s)
	}
	return nil
}

func oidcScope(v any) error {
	s := v.(string)
	if s != "" && !slices.Contains(strings.Split(strings.ReplaceAll(s, " ", ""), ","), "openid") {
		return fmt.Errorf("%q: the scopes must include openid", s)
	}
	return nil
}

func regexpOK(v any) error {
	_, err := regexp.Compile(v.(string))
	return err
}

// jsonStrings is "" or a JSON object of strings.
func jsonStrings(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return fmt.Errorf("want a JSON object of strings: %v", err)
	}
	return nil
}
