package cli

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/lading-dev/lading/internal/vulndb"
)

// dbFeeds writes small feeds of several formats into a directory.
func dbFeeds(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"npm/1.json": `{"id": 1, "title": "Command injection", "module_name": "left-pad", "cves": ["CVE-2099-0001"],
			"vulnerable_versions": "<1.0.0", "patched_versions": ">=1.0.0", "cvss_vector": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}`,
		"secdb/v3.20/main.yaml": "distroversion: v3.20\npackages:\n  - pkg:\n      name: openssl\n      secfixes:\n        3.3.2-r1:\n          - CVE-2099-0002\n",
		"osv/GO-2099-1.json": `{"id": "GO-2099-1", "summary": "Panic in parser", "modified": "2099-01-01T00:00:00Z",
			"affected": [{"package": {"ecosystem": "Go", "name": "example.com/m"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}`,
		"osv/broken.json": `{"id": "GO-2099-2", "affected": [`,
	}
	for n, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newDBLading(t *testing.T) *lading {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LADING_DB", "")
	return newLading(t)
}

func TestDBBuildInfoLookup(t *testing.T) {
	l := newDBLading(t)
	feeds := dbFeeds(t)

	_, errs, code := l.run("db", "info")
	if code != exitError || !strings.Contains(errs, "lading db update") || !strings.Contains(errs, "lading db build --from") {
		t.Errorf("info without a database: exit %d\n%s", code, errs)
	}
	if _, _, code := l.run("db", "build"); code != exitUsage {
		t.Errorf("build without --from: exit %d", code)
	}

	out, errs, code := l.run("db", "build", "--from", feeds)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, errs)
	}
	if !strings.Contains(out, "3 advisories for 3 packages in 3 namespaces") {
		t.Errorf("build said %q", out)
	}
	if !strings.Contains(errs, "broken.json") {
		t.Errorf("no warning naming the broken file:\n%s", errs)
	}
	want := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "lading", "db", "vuln.db")
	if _, err := os.Stat(want); err != nil {
		t.Errorf("not at the default path: %v", err)
	}

	out = l.ok("db", "info")
	for _, s := range []string{"Schema:           1", "alpine-secdb", "nodejs-security-wg", "osv:Go", "malformed file 1", "alpine:3.20 1", "by lading"} {
		if !strings.Contains(out, s) {
			t.Errorf("info lacks %q:\n%s", s, out)
		}
	}
	var info struct {
		Path       string         `json:"path"`
		Size       int64          `json:"size"`
		Schema     int            `json:"schema"`
		Advisories int            `json:"advisories"`
		Namespaces map[string]int `json:"namespaces"`
	}
	if err := json.Unmarshal([]byte(l.ok("db", "info", "--json")), &info); err != nil || info.Path != want || info.Advisories != 3 || info.Size == 0 {
		t.Errorf("info --json: %+v, %v", info, err)
	}

	out = l.ok("db", "lookup", "npm", "left-pad", "0.9.0")
	if !strings.Contains(out, "CVE-2099-0001") || !strings.Contains(out, ">=1.0.0") || !strings.Contains(out, "CRITICAL") {
		t.Errorf("lookup with version:\n%s", out)
	}
	out = l.ok("db", "lookup", "alpine:3.20.3", "libcrypto3", "3.3.2-r0", "--source-name", "openssl")
	if !strings.Contains(out, "CVE-2099-0002") || !strings.Contains(out, "3.3.2-r1") {
		t.Errorf("lookup by origin:\n%s", out)
	}
	out = l.ok("db", "lookup", "golang", "example.com/m")
	if !strings.Contains(out, "GO-2099-1") || !strings.Contains(out, "[0, 1.2.0)") {
		t.Errorf("lookup without version:\n%s", out)
	}
	if out := l.ok("db", "lookup", "npm", "left-pad", "1.0.0"); !strings.Contains(out, "no known vulnerabilities") {
		t.Errorf("fixed version:\n%s", out)
	}
	var ms []map[string]any
	if err := json.Unmarshal([]byte(l.ok("db", "lookup", "npm", "left-pad", "0.9.0", "--json")), &ms); err != nil || len(ms) != 1 || ms[0]["status"] != "fixed" {
		t.Errorf("lookup --json: %v, %v", ms, err)
	}

	// --db elsewhere.
	other := filepath.Join(t.TempDir(), "other.db")
	l.ok("db", "build", "--from", filepath.Join(feeds, "npm"), "-o", other)
	if out := l.ok("db", "--db", other, "info"); !strings.Contains(out, "Advisories:       1") {
		t.Errorf("info --db:\n%s", out)
	}
}

func TestDBSchemaRefused(t *testing.T) {
	l := newDBLading(t)
	l.ok("db", "build", "--from", dbFeeds(t))
	path := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "lading", "db", "vuln.db")
	b, _ := os.ReadFile(path)
	binary.LittleEndian.PutUint32(b[8:], 99)
	binary.LittleEndian.PutUint32(b[124:], crc32.Checksum(b[:124], crc32.MakeTable(crc32.Castagnoli)))
	os.WriteFile(path, b, 0o644)
	_, errs, code := l.run("db", "info")
	if code != exitError || !strings.Contains(errs, "schema version 99") || !strings.Contains(errs, "upgrade lading") {
		t.Errorf("exit %d:\n%s", code, errs)
	}
}

func TestDBPushPull(t *testing.T) {
	l := newDBLading(t)
	l.ok("db", "build", "--from", dbFeeds(t))
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/security/lading-db:1"

	out := l.ok("db", "push", ref)
	if !strings.Contains(out, "sha256:") {
		t.Errorf("push said %q", out)
	}
	dest := filepath.Join(t.TempDir(), "pulled.db")
	out = l.ok("db", "pull", ref, "-o", dest)
	if !strings.Contains(out, "3 advisories") {
		t.Errorf("pull said %q", out)
	}
	a, _ := os.ReadFile(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "lading", "db", "vuln.db"))
	b, _ := os.ReadFile(dest)
	if string(a) != string(b) {
		t.Error("pulled database differs")
	}
	if _, errs, code := l.run("db", "pull", strings.TrimPrefix(srv.URL, "http://")+"/security/none:1", "-o", dest); code != exitError || !strings.Contains(errs, "none") {
		t.Errorf("missing artifact: exit %d\n%s", code, errs)
	}
	if _, _, code := l.run("db", "push", "UPPER/case:1"); code != exitUsage {
		t.Errorf("bad reference: exit %d", code)
	}

	// update pulls when a repository is configured.
	l2 := newDBLading(t)
	out = l2.ok("db", "update", "--repository", ref)
	if !strings.Contains(out, "3 advisories") {
		t.Errorf("update from a repository said %q", out)
	}
}

func TestDBUpdate(t *testing.T) {
	l := newDBLading(t)
	feeds := dbFeeds(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(feeds)))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "db.yaml")
	os.WriteFile(cfg, []byte("feeds:\n  - name: npm\n    url: "+srv.URL+"/npm/1.json\n  - name: alpine-v3.20-main\n    url: "+srv.URL+"/secdb/v3.20/main.yaml\n    format: alpine-secdb\n"), 0o644)

	out, errs, code := l.run("--progress", "plain", "db", "update", "--config", cfg)
	if code != 0 {
		t.Fatalf("update: exit %d\n%s", code, errs)
	}
	if !strings.Contains(out, "2 advisories") {
		t.Errorf("update said %q", out)
	}
	dir := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "lading", "db")
	if _, err := os.Stat(filepath.Join(dir, "feeds", "npm", "1.json")); err != nil {
		t.Errorf("download not kept: %v", err)
	}
	db, err := vulndb.Open(filepath.Join(dir, "vuln.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	// The default configuration file is read when it exists.
	def := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "lading", "db.yaml")
	os.MkdirAll(filepath.Dir(def), 0o755)
	os.WriteFile(def, []byte("feeds:\n  - name: only-npm\n    url: "+srv.URL+"/npm/1.json\n"), 0o644)
	out = l.ok("db", "update", "--print-config")
	if !strings.Contains(out, "only-npm") || strings.Contains(out, "osv-Go") {
		t.Errorf("print-config with the default file:\n%s", out)
	}
	os.Remove(def)
	out = l.ok("db", "update", "--print-config")
	for _, s := range []string{"osv-Go", "https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip", "alpine-v3.20-main", "debian-tracker"} {
		if !strings.Contains(out, s) {
			t.Errorf("default config lacks %s", s)
		}
	}
	if _, _, code := l.run("db", "update", "--config", filepath.Join(t.TempDir(), "none.yaml")); code != exitUsage {
		t.Errorf("missing config: exit %d", code)
	}
}
