// Package server assembles a running registry from a configuration: the
// storage driver, the one metadata database and its migrations, Harbor's
// layer (package core: identities, projects, the token service, the API)
// composed with the registry through its Gate and Events, metrics, access
// logs, the HTTP(S) listener and the periodic garbage collector. The
// "lading serve" command is a thin layer over it.
package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/registry"
)

// Config is the registry's configuration, as written in its YAML file:
//
//	address: 127.0.0.1:5000
//	shutdown_timeout: 30s                  # requests in flight get this long to finish
//	tls:
//	  certificate: /etc/lading/tls.crt
//	  key: /etc/lading/tls.key
//	storage:
//	  driver: filesystem          # or s3
//	  filesystem:
//	    root: /var/lib/lading/registry/content
//	  s3:
//	    endpoint: s3.example.com  # host[:port]
//	    bucket: registry
//	    prefix: prod/
//	    region: us-east-1
//	    insecure: false           # plain http
//	    access_key: ...           # or $AWS_ACCESS_KEY_ID
//	    secret_key: ...           # or $AWS_SECRET_ACCESS_KEY
//	database:
//	  url: postgres://lading@db/registry   # empty: SQLite
//	  sqlite: /var/lib/lading/registry/meta.db
//	auth:
//	  mode: db_auth                        # or none: open to everyone
//	  admin_password: ...                  # first start; or $LADING_ADMIN_PASSWORD
//	  htpasswd: /etc/lading/htpasswd       # imported as database users
//	  ca_file: /etc/lading/ldap-ca.pem     # trusted for LDAP and OIDC too
//	  token:
//	    service: harbor-registry
//	    realm: https://registry.example.com/service/token
//	settings:                              # Harbor's settings, fixed here
//	  project_creation_restriction: adminonly
//	  token_expiration: 30
//	limits:
//	  max_manifest_size: 4194304
//	  idle_timeout: 60s
//	gc:
//	  interval: 24h                        # 0 (the default): no periodic collection
//	  grace: 1h                            # 0: none
//	  upload_ttl: 24h
//	log:
//	  access: true                         # JSON access log on stderr
//	metrics:
//	  enabled: true                        # /metrics
//	  address: 127.0.0.1:9090              # serve /metrics here only
//	external_url: https://registry.example.com  # how clients name the registry (webhook payloads)
//	outbound:                              # targets lading connects to (webhooks...)
//	  allow: [10.0.0.0/8, fd00::/8]        # loopback, private, link-local, metadata: refused unless listed
//	jobs:
//	  workers: 10                          # jobs this process runs at once
//	  lease: 30s                           # how long a dead process holds its jobs
//	  poll: 1s                             # how often to look for other replicas' jobs
//	  retention: 168h                      # finished jobs kept this long
//	secrets:
//	  key_file: /etc/lading/secret.key     # 32 bytes sealing registry credentials (default: a key in the database)
//	  previous_key_files: []               # older keys, to open what they sealed (rotation)
//	replication:
//	  concurrency: 4                       # replication tasks at once, across replicas
//	  timeout: 30s                         # wait for a remote registry's answer
//	proxy_cache:
//	  freshness_timeout: 3s                # the upstream's HEAD of a tag; past it the cached copy is served
//	  timeout: 30s                         # wait for the upstream's answer to a fetch
//	trust:                                 # signers projects trust (fixed: the API cannot change them)
//	  projects:
//	    prod:
//	      cosign_keys: [/etc/lading/keys/release.pub]
//	      notation:
//	        trust_policy: /etc/lading/notation/trustpolicy.json
//	        trust_store: /etc/lading/notation/truststore
//	scan:
//	  db: /var/lib/lading/vuln.db          # --vuln-db: a lading db build file, used as is
//	  db_source:                           # where to update it from (else never updated)
//	    repository: security/lading-db:1  # lading db push'ed, here (project/repo:tag) or host/repo:tag
//	    feeds: [/srv/feeds]                # or feed files and directories (db build --from)
//	    schedule: "@daily"                 # or six cron fields
//	    offline: true                      # never the network
//	  max_layer_size: 8589934592           # a layer expanding beyond fails its scan
//	  concurrency: 4                       # scans at once, across replicas
//	  adapter: {auth: X-ScannerAdapter-API-Key, credential: secret}  # /api/v1 for Harbor
type Config struct {
	Address string `yaml:"address"`
	// ShutdownTimeout bounds how long a shutdown waits for requests in
	// flight before it cuts them off; nil: 30s, 0: no wait.
	ShutdownTimeout *time.Duration `yaml:"shutdown_timeout"`
	TLS             TLSConfig      `yaml:"tls"`
	Storage         StorageConfig  `yaml:"storage"`
	Database        DatabaseConfig `yaml:"database"`
	Auth            AuthConfig     `yaml:"auth"`
	Limits          LimitsConfig   `yaml:"limits"`
	// Settings fix Harbor's settings (/api/v2.0/configurations): they
	// win over the database and cannot be changed through the API.
	Settings map[string]any `yaml:"settings"`
	GC       GCConfig       `yaml:"gc"`
	Log      LogConfig      `yaml:"log"`
	Metrics  MetricsConfig  `yaml:"metrics"`
	// ExternalURL is how clients name the registry (Harbor's
	// ext_endpoint), for webhook payloads; default from address.
	ExternalURL string            `yaml:"external_url"`
	Outbound    OutboundConfig    `yaml:"outbound"`
	Jobs        JobsConfig        `yaml:"jobs"`
	Secrets     SecretsConfig     `yaml:"secrets"`
	Replication ReplicationConfig `yaml:"replication"`
	ProxyCache  ProxyCacheConfig  `yaml:"proxy_cache"`
	// Trust names the signers projects trust (see TrustConfig).
	Trust TrustConfig `yaml:"trust"`
	// Scan configures registry-side scanning (package scanning).
	Scan ScanConfig `yaml:"scan"`

	// Root is the lading root (where a generated admin password goes);
	// set by Defaults.
	Root string `yaml:"-"`
}

// TLSConfig names the certificate and key files; both or neither.
type TLSConfig struct {
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
}

// StorageConfig selects and configures the storage driver.
type StorageConfig struct {
	Driver     string   `yaml:"driver"`
	Filesystem FSConfig `yaml:"filesystem"`
	S3         S3Config `yaml:"s3"`
}

// FSConfig configures the filesystem driver.
type FSConfig struct {
	Root string `yaml:"root"`
}

// S3Config configures the S3 driver.
type S3Config struct {
	Endpoint  string `yaml:"endpoint"`
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	Region    string `yaml:"region"`
	Insecure  bool   `yaml:"insecure"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	PartSize  int64  `yaml:"part_size"`
	Create    bool   `yaml:"create_bucket"`
}

// DatabaseConfig selects the metadata database.
type DatabaseConfig struct {
	URL    string `yaml:"url"`
	SQLite string `yaml:"sqlite"`
}

// AuthConfig configures authentication.
type AuthConfig struct {
	// Mode is "db_auth" (the default: users, robots and projects) or
	// "none" (an open registry, for throwaway local use).
	Mode string `yaml:"mode"`
	// AdminPassword is the first administrator's password on first start
	// (else $LADING_ADMIN_PASSWORD, else a random one written to
	// <root>/registry/initial-admin-password).
	AdminPassword string `yaml:"admin_password"`
	// Htpasswd names an htpasswd file (bcrypt entries) whose users are
	// imported as database users at each start (existing ones are left
	// alone).
	Htpasswd string      `yaml:"htpasswd"`
	Token    TokenConfig `yaml:"token"`
	// CAFile names PEM certificates trusted, besides the system's, for
	// the LDAP directory and the OIDC provider (ldap_verify_cert,
	// oidc_verify_cert).
	CAFile string `yaml:"ca_file"`

	// Replaced settings of lading before Harbor's layer; set, they are
	// refused with a message saying what replaced them.
	AnonymousRead *bool `yaml:"anonymous_read"`
	Access        []any `yaml:"access"`
}

// TokenConfig configures the token service's challenge.
type TokenConfig struct {
	// Service is the tokens' audience; default "harbor-registry".
	Service string `yaml:"service"`
	// Realm is the token service's URL in challenges; default
	// /service/token on the scheme and host of each request.
	Realm string `yaml:"realm"`

	// Replaced: the token service is always on, its key is in the
	// database and token_expiration (a setting) is its tokens' lifetime.
	Enabled *bool          `yaml:"enabled"`
	KeyFile string         `yaml:"key_file"`
	TTL     *time.Duration `yaml:"ttl"`
}

// LimitsConfig mirrors registry.Limits.
type LimitsConfig struct {
	MaxManifestSize int64          `yaml:"max_manifest_size"`
	IdleTimeout     *time.Duration `yaml:"idle_timeout"` // nil: 60s
}

// GCConfig configures the periodic collector. A duration left out (nil) is
// the default; one written as 0 is 0.
type GCConfig struct {
	Interval  time.Duration  `yaml:"interval"`   // 0: no periodic collection
	Grace     *time.Duration `yaml:"grace"`      // nil: 1h; 0: no grace window
	UploadTTL *time.Duration `yaml:"upload_ttl"` // nil: 24h
}

// LogConfig configures logging.
type LogConfig struct {
	Access *bool `yaml:"access"`
}

// MetricsConfig configures metrics.
type MetricsConfig struct {
	Enabled *bool `yaml:"enabled"` // nil: on
	// Address is a listen address of their own for /metrics, which the
	// registry's port then does not serve.
	Address string `yaml:"address"`
}

// DefaultAddress is where the registry listens unless told otherwise.
const DefaultAddress = "127.0.0.1:5000"

// LoadConfig reads a YAML configuration file. Unknown keys are errors, so
// a typo does not silently leave a default in place.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(b)
}

// ParseConfig parses a YAML configuration. Keys are checked against
// Config (an unknown one is an error naming it and its line), and so are
// durations: Go durations ("90s", "1h30m") or a bare 0; a number with no
// unit is refused rather than guessed.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		return Config{}, errdefs.InvalidArgument(fmt.Errorf("config: %w", err))
	}
	if err := checkNode(doc.Content[0], reflect.TypeFor[Config](), ""); err != nil {
		return Config{}, errdefs.InvalidArgument(fmt.Errorf("config: %w", err))
	}
	if err := doc.Decode(&c); err != nil {
		return Config{}, errdefs.InvalidArgument(fmt.Errorf("config: %w", err))
	}
	return c, nil
}

var durationType = reflect.TypeFor[time.Duration]()

// checkNode checks a YAML node against the Go type it decodes into: every
// mapping key names a field, and every duration is one. A bare 0 becomes
// "0s" for the decoder. key is the node's dotted path, for messages.
func checkNode(n *yaml.Node, t reflect.Type, key string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	switch {
	case t == durationType:
		return checkDuration(n, key)
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			sub := k.Value
			if key != "" {
				sub = key + "." + k.Value
			}
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: unknown key %s", k.Line, sub)
			}
			if err := checkNode(n.Content[i+1], ft, sub); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, e := range n.Content {
			if err := checkNode(e, t.Elem(), fmt.Sprintf("%s[%d]", key, i)); err != nil {
				return err
			}
		}
	}
	// Anything else is the decoder's to judge (and to refuse with its
	// own message).
	return nil
}

// checkDuration checks the scalar n of a duration key.
func checkDuration(n *yaml.Node, key string) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s: want a duration such as 90s, 5m or 1h30m", n.Line, key)
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f == 0 {
			n.Tag, n.Value, n.Style = "!!str", "0s", 0
			return nil
		}
		return fmt.Errorf("line %d: %s: %s has no unit; write %ss, %sm or %sh", n.Line, key, n.Value, n.Value, n.Value, n.Value)
	}
	if _, err := time.ParseDuration(n.Value); err != nil {
		return fmt.Errorf("line %d: %s: %q is not a duration such as 90s, 5m or 1h30m", n.Line, key, n.Value)
	}
	n.Tag = "!!str"
	return nil
}

// Defaults fills what the configuration leaves open, relative to the lading
// root directory.
func (c *Config) Defaults(root string) {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Storage.Driver == "" {
		c.Storage.Driver = "filesystem"
	}
	if c.Storage.Filesystem.Root == "" {
		c.Storage.Filesystem.Root = filepath.Join(root, "registry", "content")
	}
	if c.Database.URL == "" && c.Database.SQLite == "" {
		c.Database.SQLite = filepath.Join(root, "registry", "meta.db")
	}
	if c.Auth.Mode == "" {
		c.Auth.Mode = "db_auth"
	}
	if c.Auth.Token.Service == "" {
		c.Auth.Token.Service = "harbor-registry"
	}
	if c.Auth.AdminPassword == "" {
		c.Auth.AdminPassword = os.Getenv("LADING_ADMIN_PASSWORD")
	}
	c.Root = root
	if c.Storage.S3.AccessKey == "" {
		c.Storage.S3.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if c.Storage.S3.SecretKey == "" {
		c.Storage.S3.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if c.Storage.S3.Region == "" {
		c.Storage.S3.Region = "us-east-1"
	}
	setDefault(&c.ShutdownTimeout, 30*time.Second)
	setDefault(&c.GC.Grace, registry.DefaultGrace)
	setDefault(&c.GC.UploadTTL, registry.DefaultUploadTTL)
	setDefault(&c.Limits.IdleTimeout, 60*time.Second)
	if c.Scan.DB == "" {
		c.Scan.DB = filepath.Join(root, "registry", "vuln.db")
	}
}

// setDefault points an unset duration at its default.
func setDefault(p **time.Duration, d time.Duration) {
	if *p == nil {
		*p = &d
	}
}

// Validate checks the configuration for contradictions and for values that
// make no sense.
func (c *Config) Validate() error {
	if err := c.validateDurations(); err != nil {
		return err
	}
	if (c.TLS.Certificate == "") != (c.TLS.Key == "") {
		return errdefs.InvalidArgument(errors.New("config: tls needs both certificate and key"))
	}
	switch c.Storage.Driver {
	case "filesystem":
	case "s3":
		if c.Storage.S3.Endpoint == "" || c.Storage.S3.Bucket == "" {
			return errdefs.InvalidArgument(errors.New("config: storage.s3 needs endpoint and bucket"))
		}
	default:
		return errdefs.InvalidArgument(fmt.Errorf("config: storage driver %q is not filesystem or s3", c.Storage.Driver))
	}
	switch c.Auth.Mode {
	case "", "db_auth", "none":
	default:
		return errdefs.InvalidArgument(fmt.Errorf("config: auth.mode %q is not db_auth or none", c.Auth.Mode))
	}
	if c.Auth.AnonymousRead != nil {
		return errdefs.InvalidArgument(errors.New("config: auth.anonymous_read is replaced by public projects: anonymous callers pull from projects whose metadata.public is true"))
	}
	if c.Auth.Access != nil {
		return errdefs.InvalidArgument(errors.New("config: auth.access is replaced by projects, members with roles and robot accounts (see the README's Authentication section)"))
	}
	if c.Auth.Token.Enabled != nil || c.Auth.Token.KeyFile != "" || c.Auth.Token.TTL != nil {
		return errdefs.InvalidArgument(errors.New("config: auth.token.enabled, key_file and ttl are replaced: the token service is always on at /service/token, its key is in the database, and the setting token_expiration is its tokens' lifetime"))
	}
	if c.Scan.MaxLayerSize < 0 || c.Scan.Parallel < 0 || c.Scan.Concurrency < 0 || c.Scan.Timeout < 0 || c.Scan.CacheSize < 0 {
		return errdefs.InvalidArgument(errors.New("config: scan: sizes, counts and the timeout cannot be negative"))
	}
	if c.Metrics.Address != "" && c.Metrics.Enabled != nil && !*c.Metrics.Enabled {
		return errdefs.InvalidArgument(errors.New("config: metrics.address with metrics.enabled false"))
	}
	if _, err := outbound.Parse(c.Outbound.Allow); err != nil {
		return err
	}
	if c.Jobs.Workers < 0 || c.Jobs.Workers > 1000 || c.Jobs.Lease < 0 || (c.Jobs.Lease > 0 && c.Jobs.Lease < 3*time.Second) || c.Jobs.Poll < 0 || c.Jobs.Retention < 0 {
		return errdefs.InvalidArgument(errors.New("config: jobs: workers 0 to 1000, lease at least 3s, poll and retention not negative"))
	}
	if c.Replication.Concurrency < 0 || c.Replication.Concurrency > 1000 || c.Replication.Timeout < 0 || c.ProxyCache.FreshnessTimeout < 0 || c.ProxyCache.Timeout < 0 {
		return errdefs.InvalidArgument(errors.New("config: replication.concurrency 0 to 1000; replication.timeout, proxy_cache.freshness_timeout and proxy_cache.timeout not negative"))
	}
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errdefs.InvalidArgument(fmt.Errorf("config: external_url %q: want http(s)://host[:port]", c.ExternalURL))
		}
	}
	if c.Database.URL != "" {
		u, err := url.Parse(c.Database.URL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return errdefs.InvalidArgument(errors.New("config: database.url must be a postgres:// URL"))
		}
	}
	return nil
}

// validateDurations refuses negative durations, and zero where zero would
// mean something nobody wants.
func (c *Config) validateDurations() error {
	for _, d := range []struct {
		key      string
		v        *time.Duration
		zeroSays string // why 0 is refused; "" when 0 is fine
	}{
		{"shutdown_timeout", c.ShutdownTimeout, ""},
		{"gc.interval", &c.GC.Interval, ""},
		{"gc.grace", c.GC.Grace, ""},
		{"gc.upload_ttl", c.GC.UploadTTL, "would expire every upload in progress"},
		{"limits.idle_timeout", c.Limits.IdleTimeout, "would cut off every request body"},
	} {
		switch {
		case d.v == nil:
		case *d.v < 0:
			return errdefs.InvalidArgument(fmt.Errorf("config: %s: %s is negative", d.key, *d.v))
		case *d.v == 0 && d.zeroSays != "":
			return errdefs.InvalidArgument(fmt.Errorf("config: %s: 0 %s; leave the key out for the default", d.key, d.zeroSays))
		}
	}
	return nil
}

// ScanConfig configures registry-side scanning.
type ScanConfig struct {
	// DB is the vulnerability database file (lading db build's, used as
	// is; --vuln-db); updates replace it. Default <root>/registry/vuln.db.
	DB string `yaml:"db"`
	// DBSource is where the database is updated from, on a schedule.
	DBSource DBSourceConfig `yaml:"db_source"`
	// MaxLayerSize bounds a layer's uncompressed size (default 8 GiB).
	MaxLayerSize int64 `yaml:"max_layer_size"`
	// Parallel is how many layers one scan reads at once (default 2).
	Parallel int `yaml:"parallel"`
	// Concurrency bounds the scans at once across replicas (default 4).
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one scan (default 30m).
	Timeout time.Duration `yaml:"timeout"`
	// CacheSize bounds the layer results kept, in bytes (default 1 GiB).
	CacheSize int64 `yaml:"cache_size"`
	// Adapter is the Pluggable Scanner API's own credential (besides the
	// registry's users and robots): auth Basic ("user:password"),
	// Bearer or X-ScannerAdapter-API-Key.
	Adapter ScanAdapterConfig `yaml:"adapter"`
}

// DBSourceConfig is where the vulnerability database comes from.
type DBSourceConfig struct {
	// Repository is a lading db push'ed database: "project/repo:tag" in
	// this registry, or "host/repo:tag" in another.
	Repository string `yaml:"repository"`
	// Feeds are feed files and directories to build it from.
	Feeds []string `yaml:"feeds"`
	// Schedule is a cron expression (six fields) or @hourly, @daily,
	// @weekly; default @daily.
	Schedule string `yaml:"schedule"`
	// Offline: never reach the network (repository must be this
	// registry's).
	Offline bool `yaml:"offline"`
	// Insecure: plain HTTP or unverified TLS to a remote registry.
	Insecure bool `yaml:"insecure"`
}

// ScanAdapterConfig is the scanner adapter API's credential.
type ScanAdapterConfig struct {
	Auth       string `yaml:"auth"`
	Credential string `yaml:"credential"`
}

// OutboundConfig is the one switch for every outbound target: CIDR
// prefixes that may be reached although they are loopback, private,
// link-local or cloud metadata addresses (package outbound).
type OutboundConfig struct {
	Allow []string `yaml:"allow"`
}

// JobsConfig configures the job service (package jobs).
type JobsConfig struct {
	Workers   int           `yaml:"workers"`
	Lease     time.Duration `yaml:"lease"`
	Poll      time.Duration `yaml:"poll"`
	Retention time.Duration `yaml:"retention"`
}

// SecretsConfig says where the keys that seal stored credentials are
// (package secrets): without a key file, a key kept in the database.
type SecretsConfig struct {
	KeyFile          string   `yaml:"key_file"`
	PreviousKeyFiles []string `yaml:"previous_key_files"`
}

// ReplicationConfig configures replication (package replication).
type ReplicationConfig struct {
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
}

// ProxyCacheConfig configures proxy-cache projects (package proxycache).
type ProxyCacheConfig struct {
	FreshnessTimeout time.Duration `yaml:"freshness_timeout"`
	Timeout          time.Duration `yaml:"timeout"`
}

// ParseStorageFlag reads the --storage flag: a directory, or
// s3://bucket[/prefix]?endpoint=host:port[&region=..][&insecure=true]
// [&create=true].
func ParseStorageFlag(s string, c *StorageConfig) error {
	if !strings.HasPrefix(s, "s3://") {
		c.Driver = "filesystem"
		c.Filesystem.Root = s
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("--storage %q: %w", s, err))
	}
	c.Driver = "s3"
	c.S3.Bucket = u.Host
	c.S3.Prefix = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	c.S3.Endpoint = q.Get("endpoint")
	if r := q.Get("region"); r != "" {
		c.S3.Region = r
	}
	if v := q.Get("insecure"); v != "" {
		c.S3.Insecure, _ = strconv.ParseBool(v)
	}
	if v := q.Get("create"); v != "" {
		c.S3.Create, _ = strconv.ParseBool(v)
	}
	if c.S3.Endpoint == "" {
		return errdefs.InvalidArgument(fmt.Errorf("--storage %q: the endpoint parameter is required", s))
	}
	return nil
}
