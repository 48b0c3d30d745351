package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/errdefs"
)

func TestLoadFullConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	no := false
	want := Config{
		Address: "0.0.0.0:5443",
		TLS:     TLSConfig{Certificate: "/etc/lading/tls.crt", Key: "/etc/lading/tls.key"},
		Storage: StorageConfig{Driver: "s3", S3: S3Config{
			Endpoint: "s3.example.com:9000", Bucket: "registry", Prefix: "prod/", Region: "eu-west-1", Insecure: true,
			AccessKey: "AKIAEXAMPLE", SecretKey: "secret", PartSize: 16 << 20, Create: true,
		}},
		Database: DatabaseConfig{URL: "postgres://lading@db.example.com/registry?sslmode=require"},
		Auth: AuthConfig{
			Mode: "db_auth", AdminPassword: "Harbor12345", Htpasswd: "/etc/lading/htpasswd",
			Token: TokenConfig{Service: "registry.example.com", Realm: "https://registry.example.com/service/token"},
		},
		Settings: map[string]any{"project_creation_restriction": "adminonly", "token_expiration": 10},
		Limits:   LimitsConfig{MaxManifestSize: 8 << 20, IdleTimeout: ptr(2 * time.Minute)},
		GC:       GCConfig{Interval: 24 * time.Hour, Grace: ptr(2 * time.Hour), UploadTTL: ptr(48 * time.Hour)},
		Log:      LogConfig{Access: &no},
		Metrics:  MetricsConfig{Enabled: &no},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, y := range map[string]string{
		"unknown key":      "adress: x\n",
		"unknown nested":   "storage:\n  filesystem:\n    rot: /x\n",
		"wrong type":       "gc:\n  interval: often\n",
		"not YAML":         "a: [\n",
		"list at the root": "- a\n",
	} {
		if _, err := ParseConfig([]byte(y)); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c, err := ParseConfig(nil)
	if err != nil || !cmp.Equal(c, Config{}) {
		t.Errorf("empty config: %+v, %v", c, err)
	}
	// An unknown key is named with its path and line.
	_, err = ParseConfig([]byte("storage:\n  driver: filesystem\n  filesystem:\n    rot: /x\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4: unknown key storage.filesystem.rot") {
		t.Errorf("unknown nested key: %v", err)
	}
	// Keys of lading before Harbor's layer parse, and are refused saying
	// what replaced them.
	c, err = ParseConfig([]byte("auth:\n  access:\n    - users: [a]\n      actions: [pull]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.Defaults(t.TempDir())
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "replaced by projects, members with roles and robot accounts") {
		t.Errorf("auth.access: %v", err)
	}
}

// Whatever the bytes, the parser answers with a configuration or an
// invalid-argument error, never a panic.
func FuzzParseConfig(f *testing.F) {
	full, _ := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	for _, seed := range []string{string(full), "gc: {interval: 0, grace: 0s}\n", "gc: {interval: 90}\n", "a: &x 1\nb: *x\n", "- a\n", "gc:\n  grace: [1]\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error of no class: %v", err)
			}
			return
		}
		c.Defaults("/var/lib/lading")
		if err := c.Validate(); err != nil && !errdefs.IsInvalidArgument(err) {
			t.Fatalf("Validate: error of no class: %v", err)
		}
	})
}

func TestDefaultsAndValidate(t *testing.T) {
	var c Config
	c.Defaults("/root/lading")
	if c.Address != DefaultAddress || c.Storage.Driver != "filesystem" ||
		c.Storage.Filesystem.Root != "/root/lading/registry/content" || c.Database.SQLite != "/root/lading/registry/meta.db" ||
		*c.GC.Grace != time.Hour || *c.GC.UploadTTL != 24*time.Hour || *c.Limits.IdleTimeout != time.Minute || c.Auth.Mode != "db_auth" || c.Auth.Token.Service != "harbor-registry" {
		t.Errorf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	bad := map[string]func(*Config){
		"cert without key":  func(c *Config) { c.TLS.Certificate = "x" },
		"unknown driver":    func(c *Config) { c.Storage.Driver = "ftp" },
		"s3 without bucket": func(c *Config) { c.Storage.Driver = "s3"; c.Storage.S3.Endpoint = "e" },
		"auth mode":         func(c *Config) { c.Auth.Mode = "ldap" },
		"token.enabled":     func(c *Config) { yes := true; c.Auth.Token.Enabled = &yes },
		"token key file":    func(c *Config) { c.Auth.Token.KeyFile = "/k" },
		"anonymous_read":    func(c *Config) { yes := true; c.Auth.AnonymousRead = &yes },
		"access rules":      func(c *Config) { c.Auth.Access = []any{"x"} },
		"mysql url":         func(c *Config) { c.Database.URL = "mysql://x" },
	}
	for name, mod := range bad {
		var c Config
		c.Defaults(t.TempDir())
		mod(&c)
		if err := c.Validate(); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseStorageFlag(t *testing.T) {
	var c StorageConfig
	if err := ParseStorageFlag("/srv/registry", &c); err != nil || c.Driver != "filesystem" || c.Filesystem.Root != "/srv/registry" {
		t.Errorf("directory: %+v %v", c, err)
	}
	c = StorageConfig{S3: S3Config{Region: "us-east-1"}}
	if err := ParseStorageFlag("s3://bucket/some/prefix/?endpoint=127.0.0.1:9000&insecure=true&create=1&region=x", &c); err != nil {
		t.Fatal(err)
	}
	want := StorageConfig{Driver: "s3", S3: S3Config{Endpoint: "127.0.0.1:9000", Bucket: "bucket", Prefix: "some/prefix/", Region: "x", Insecure: true, Create: true}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("s3 (-want +got):\n%s", diff)
	}
	if err := ParseStorageFlag("s3://bucket", &c); err == nil {
		t.Error("s3 without endpoint accepted")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	base := func() Config {
		var c Config
		c.Defaults(t.TempDir())
		return c
	}
	c := base()
	c.Auth.Htpasswd = filepath.Join(dir, "missing")
	if _, err := Open(t.Context(), c, Options{}); err == nil {
		t.Error("missing htpasswd accepted")
	}
	c = base()
	c.Auth.AdminPassword = "short"
	if _, err := Open(t.Context(), c, Options{}); err == nil || !strings.Contains(err.Error(), "admin password") {
		t.Errorf("weak admin password: %v", err)
	}
	c = base()
	c.Settings = map[string]any{"token_expiration": "soon"}
	if _, err := Open(t.Context(), c, Options{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad setting: %v", err)
	}
	_ = bcrypt.MinCost
}

// The configuration shown in the README parses, so the documentation
// cannot drift from the code.
func TestREADMEConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	_, rest, ok := strings.Cut(string(b), "### Configuration file\n\n```yaml\n")
	if !ok {
		t.Fatal("README.md has no configuration example")
	}
	y, _, _ := strings.Cut(rest, "```")
	c, err := ParseConfig([]byte(y))
	if err != nil {
		t.Fatalf("README configuration: %v", err)
	}
	c.Defaults(t.TempDir())
	if err := c.Validate(); err != nil {
		t.Errorf("README configuration does not validate: %v", err)
	}
	if c.Auth.Mode != "db_auth" || c.Settings["token_expiration"] != 30 || c.GC.Interval != 24*time.Hour {
		t.Errorf("README configuration read as %+v", c)
	}
}
