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
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Config is the registry's configuration, as written in its YAML file:
//
//	address: 127.0.0.1:5000
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
//	  interval: 24h                        # 0: no periodic collection
//	  grace: 1h
//	  upload_ttl: 24h
//	log:
//	  access: true                         # JSON access log on stderr
//	metrics:
//	  enabled: true                        # /metrics
type Config struct {
	Address  string         `yaml:"address"`
	TLS      TLSConfig      `yaml:"tls"`
	Storage  StorageConfig  `yaml:"storage"`
	Database DatabaseConfig `yaml:"database"`
	Auth     AuthConfig     `yaml:"auth"`
	Limits   LimitsConfig   `yaml:"limits"`
	// Settings fix Harbor's settings (/api/v2.0/configurations): they
	// win over the database and cannot be changed through the API.
	Settings map[string]any `yaml:"settings"`
	GC       GCConfig       `yaml:"gc"`
	Log      LogConfig      `yaml:"log"`
	Metrics  MetricsConfig  `yaml:"metrics"`

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
	MaxManifestSize int64         `yaml:"max_manifest_size"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
}

// GCConfig configures the periodic collector.
type GCConfig struct {
	Interval  time.Duration `yaml:"interval"`
	Grace     time.Duration `yaml:"grace"`
	UploadTTL time.Duration `yaml:"upload_ttl"`
}

// LogConfig configures logging.
type LogConfig struct {
	Access *bool `yaml:"access"`
}

// MetricsConfig configures metrics.
type MetricsConfig struct {
	Enabled *bool `yaml:"enabled"`
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

// ParseConfig parses a YAML configuration.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, errdefs.InvalidArgument(fmt.Errorf("config: %w", err))
	}
	return c, nil
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
	if c.GC.Grace == 0 {
		c.GC.Grace = time.Hour
	}
	if c.GC.UploadTTL == 0 {
		c.GC.UploadTTL = 24 * time.Hour
	}
}

// Validate checks the configuration for contradictions.
func (c *Config) Validate() error {
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
	if c.Database.URL != "" {
		u, err := url.Parse(c.Database.URL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return errdefs.InvalidArgument(errors.New("config: database.url must be a postgres:// URL"))
		}
	}
	return nil
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
