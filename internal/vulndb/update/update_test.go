package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
	"github.com/lading-dev/lading/internal/vulndb/oci"
)

// feedServer serves files under names, with ETags, and can be told to
// fail.
type feedServer struct {
	files map[string]string // URL path → file
	mu    sync.Mutex
	fail  map[string]bool
	gets  map[string]int
	not   map[string]int // 304 answers
}

func (s *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.gets[r.URL.Path]++
	fail := s.fail[r.URL.Path]
	s.mu.Unlock()
	if fail {
		http.Error(w, "feed server on fire", http.StatusInternalServerError)
		return
	}
	p, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	st, err := os.Stat(p)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	etag := fmt.Sprintf(`"%x"`, sha256.Sum256([]byte(fmt.Sprint(p, st.Size(), st.ModTime()))))
	if r.Header.Get("If-None-Match") == etag {
		s.mu.Lock()
		s.not[r.URL.Path]++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	f, _ := os.Open(p)
	defer f.Close()
	http.ServeContent(w, r, "", time.Time{}, f)
}

func newFeedServer(t *testing.T, files map[string]string) (*feedServer, string) {
	s := &feedServer{files: files, fail: map[string]bool{}, gets: map[string]int{}, not: map[string]int{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func logger() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// TestUpdateFromTheCorpusFeeds serves the corpus feeds over HTTP and
// updates from them, twice.
func TestUpdateFromTheCorpusFeeds(t *testing.T) {
	feeds := filepath.Join(corpustest.Dir(t), "feeds")
	srv, base := newFeedServer(t, map[string]string{
		"/Go/all.zip":           filepath.Join(feeds, "osv", "Go.zip"),
		"/crates.io/all.zip":    filepath.Join(feeds, "osv", "crates.io.zip"),
		"/npm/vuln.zip":         filepath.Join(feeds, "npm", "nodejs-security-wg-vuln-npm.zip"),
		"/v3.10/main.yaml":      filepath.Join(feeds, "alpine-secdb", "v3.10", "main.yaml"),
		"/v3.10/community.yaml": filepath.Join(feeds, "alpine-secdb", "v3.10", "community.yaml"),
		"/debian/DSA/list":      filepath.Join(feeds, "debian", "DSA", "list"),
	})
	cfg := Config{Feeds: []Feed{
		{Name: "osv-Go", URL: base + "/Go/all.zip", Format: feed.OSV},
		{Name: "osv-crates.io", URL: base + "/crates.io/all.zip"},
		{Name: "nswg", URL: base + "/npm/vuln.zip"},
		{Name: "alpine-v3.10-main", URL: base + "/v3.10/main.yaml", Format: feed.Alpine},
		{Name: "alpine-v3.10-community", URL: base + "/v3.10/community.yaml", Format: feed.Alpine},
		{Name: "debian-dsa", URL: base + "/debian/DSA/list"},
	}}
	dir := t.TempDir()
	log, _ := logger()
	var mu sync.Mutex
	phases := map[string]int{}
	var lastDownload Event
	progress := WithProgress(func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		phases[e.Phase]++
		if e.Phase == "download" && e.Feed == "osv-Go" {
			lastDownload = e
		}
	})
	meta, err := Update(context.Background(), log, cfg, filepath.Join(dir, vulndb.FileName), progress, WithBuiltBy("test"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, s := range meta.Sources {
		got[s.Name] = s.Records
	}
	// v3.10's secdb has 1902 entries, 4 of them repeated.
	want := map[string]int{"osv:Go": 4274, "osv:crates.io": 1193, "nodejs-security-wg": 467, "alpine-secdb": 1898, "debian-dsa": 18237}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records per source (-want +got):\n%s", diff)
	}
	if st, _ := os.Stat(filepath.Join(feeds, "osv", "Go.zip")); lastDownload.Done != st.Size() || lastDownload.Total != st.Size() {
		t.Errorf("last download event %+v, want %d of %d", lastDownload, st.Size(), st.Size())
	}
	if phases["download"] == 0 || phases["build"] == 0 || phases["done"] != 1 {
		t.Errorf("phases %v", phases)
	}
	db, err := vulndb.Open(filepath.Join(dir, vulndb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	advs, _ := db.Advisories(context.Background(), "Go", "github.com/gin-gonic/gin")
	db.Close()
	if len(advs) == 0 || meta.Builder != "test" {
		t.Errorf("gin: %d advisories; builder %q", len(advs), meta.Builder)
	}

	// Again: nothing changed, nothing downloaded.
	clear(phases)
	if _, err := Update(context.Background(), log, cfg, filepath.Join(dir, vulndb.FileName), progress); err != nil {
		t.Fatal(err)
	}
	if phases["cached"] != len(cfg.Feeds) || phases["download"] != 0 {
		t.Errorf("second update: phases %v", phases)
	}
	if n := srv.not["/Go/all.zip"]; n != 1 {
		t.Errorf("%d not-modified answers for Go", n)
	}
}

func smallFeeds(t *testing.T) (*feedServer, string, Config) {
	dir := t.TempDir()
	p := filepath.Join(dir, "1.json")
	os.WriteFile(p, []byte(`{"id": 1, "module_name": "left-pad", "cves": [], "vulnerable_versions": "<1.0.0", "title": "t"}`), 0o644)
	q := filepath.Join(dir, "main.yaml")
	os.WriteFile(q, []byte("distroversion: v3.20\npackages:\n  - pkg:\n      name: zlib\n      secfixes:\n        1.3.1-r0:\n          - CVE-2099-1\n"), 0o644)
	srv, base := newFeedServer(t, map[string]string{"/npm/1.json": p, "/v3.20/main.yaml": q})
	return srv, base, Config{Feeds: []Feed{{Name: "npm", URL: base + "/npm/1.json"}, {Name: "alpine", URL: base + "/v3.20/main.yaml"}}}
}

func TestFailingFeed(t *testing.T) {
	srv, _, cfg := smallFeeds(t)
	dir := t.TempDir()
	log, logs := logger()
	srv.fail["/v3.20/main.yaml"] = true

	// No previous download: the update fails and writes nothing.
	_, err := Update(context.Background(), log, cfg, filepath.Join(dir, vulndb.FileName))
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "feed alpine") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, vulndb.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed update wrote a database")
	}

	// With a previous download: built from it, with a warning.
	srv.fail["/v3.20/main.yaml"] = false
	if _, err := Update(context.Background(), log, cfg, filepath.Join(dir, vulndb.FileName)); err != nil {
		t.Fatal(err)
	}
	srv.fail["/v3.20/main.yaml"] = true
	meta, err := Update(context.Background(), log, cfg, filepath.Join(dir, vulndb.FileName))
	if err != nil || meta.Advisories != 2 {
		t.Fatalf("meta %+v, err %v", meta, err)
	}
	if !strings.Contains(logs.String(), "building from the previous download") {
		t.Errorf("no warning:\n%s", logs)
	}
	// A missing feed is not found.
	cfg.Feeds = append(cfg.Feeds, Feed{Name: "gone", URL: cfg.Feeds[0].URL + "-gone"})
	if _, err := Update(context.Background(), log, cfg, filepath.Join(dir, vulndb.FileName)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing feed: %v", err)
	}
}

func TestPullFromRepository(t *testing.T) {
	_, _, cfg := smallFeeds(t)
	log, _ := logger()
	built := t.TempDir()
	if _, err := Update(context.Background(), log, cfg, filepath.Join(built, vulndb.FileName)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log0())))
	t.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/lading/db:1"
	ref, _ := name.ParseReference(repo)
	if _, err := oci.Push(context.Background(), filepath.Join(built, vulndb.FileName), ref); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var pulled int64
	meta, err := Update(context.Background(), log, Config{Repository: repo}, filepath.Join(dir, vulndb.FileName), WithProgress(func(e Event) {
		if e.Phase == "pull" {
			pulled = e.Done
		}
	}))
	if err != nil || meta.Advisories != 2 || pulled == 0 {
		t.Fatalf("pull: %+v, %v (%d bytes)", meta, err, pulled)
	}
	if _, err := os.Stat(filepath.Join(dir, "feeds")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a pull downloaded feeds")
	}
}

func log0() *log.Logger { return log.New(io.Discard, "", 0) }

func TestConfig(t *testing.T) {
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range d.Feeds {
		names = append(names, f.Name)
	}
	for _, want := range []string{"osv-Go", "osv-Rocky-Linux", "osv-Ubuntu", "alpine-v3.20-main", "alpine-edge-community", "debian-tracker"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("default feeds lack %s", want)
		}
	}
	if d.Feeds[11].URL != OSVBase+"/Rocky%20Linux/all.zip" {
		t.Errorf("Rocky Linux URL %q", d.Feeds[11].URL)
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "db.yaml")
	os.WriteFile(p, []byte("repository: registry.example.com/db:1\n"), 0o644)
	c, err := LoadConfig(p)
	if err != nil || c.Repository != "registry.example.com/db:1" || len(c.Feeds) != len(d.Feeds) {
		t.Errorf("LoadConfig: %+v, %v", c.Repository, err)
	}
	b, _ := d.Marshal()
	os.WriteFile(p, b, 0o644)
	if c, err := LoadConfig(p); err != nil || !cmp.Equal(c, d) {
		t.Errorf("round trip: %v", err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "none.yaml")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	for _, bad := range []string{
		"feeds:\n  - name: ../x\n    url: https://e.org/a\n",
		"feeds:\n  - name: a\n    url: file:///etc/passwd\n",
		"feeds:\n  - name: a\n    url: https://e.org/a\n  - name: a\n    url: https://e.org/b\n",
		"feeds:\n  - name: a\n    url: https://e.org/a\n    format: cobol\n",
		"feeds: [[[\n",
		"feeds: []\n",
	} {
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := LoadConfig(p); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("LoadConfig(%q): %v", bad, err)
		}
	}
	for in, want := range map[string]string{
		"https://e.org/Go/all.zip": "all.zip", "https://e.org/tracker/data/json": "json", "https://e.org/": "feed",
		"https://e.org/a/..": "feed", "https://e.org/v3.20/main.json?x=1": "main.json",
	} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}
