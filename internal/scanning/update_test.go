package scanning_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/webhook"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/scanning"
	"github.com/lading-dev/lading/internal/vulndb/feed"
	"github.com/lading-dev/lading/internal/vulndb/oci"
)

// hookPayloads is a webhook receiver: the payloads, in Harbor's default
// format, as they arrive.
func hookPayloads(t *testing.T) (string, <-chan map[string]any) {
	ch := make(chan map[string]any, 64)
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p map[string]any
		if json.Unmarshal(b, &p) == nil {
			ch <- p
		}
	}))
	t.Cleanup(rs.Close)
	return rs.URL, ch
}

// TestDBUpdateReevaluates scans the corpus's alpine-3.20-app against a
// database built from the Go feed alone, then updates the database from
// scan.db_source (the Go, npm and Alpine feeds) with every layer blob of
// the image destroyed on disk: the report is recomputed from its stored
// inventory (the npm advisories appear, no layer is read) and the
// verdict's change raises SCANNING_COMPLETED with operator "lading".
func TestDBUpdateReevaluates(t *testing.T) {
	ctx := context.Background()
	feeds := feedsOf(t)
	goOnly := filepath.Join(t.TempDir(), "go.db")
	if _, err := feed.Build(ctx, nil, goOnly, feeds[2:]); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	srv := start(t, goOnly, harbortest.WithRoot(root), harbortest.WithScanning(func(o *scanning.Options) {
		o.Source = scanning.Source{Feeds: feeds, Schedule: "@weekly"}
	}))
	newProject(t, srv, "team", map[string]string{"auto_scan": "true"})
	hook, got := hookPayloads(t)
	if _, err := srv.Admin().Webhook.CreateWebhookPolicyOfProject(ctx, webhook.NewCreateWebhookPolicyOfProjectParams().WithProjectNameOrID("team").
		WithPolicy(&models.WebhookPolicy{Name: "scans", Enabled: true, EventTypes: []string{"SCANNING_COMPLETED"},
			Targets: []*models.WebhookTargetObject{{Type: "http", Address: hook}}})); err != nil {
		t.Fatal(err)
	}
	img := corpusImage(t, "alpine-3.20-app.oci.tar")
	dgst := push(t, srv, img, "team/app:1")
	before := waitScan(t, srv, "team", "app", "1")
	if before.ScanStatus != "Success" {
		t.Fatalf("scan: %+v", before)
	}
	packages := func() map[string]bool {
		m := map[string]bool{}
		for _, v := range vulnerabilities(t, srv, "team", "app", dgst).Vulnerabilities {
			m[v.Package] = true
		}
		return m
	}
	if p := packages(); p["lodash"] || !p["github.com/gin-gonic/gin"] {
		t.Fatalf("against the Go feed alone: %v", p)
	}
	waitHook(t, got, "admin")

	// Destroy every layer blob: a re-evaluation that read one would fail.
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		destroyBlob(t, root, d.Hex)
	}
	if _, err := srv.Scanning.UpdateDB(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s := overview(t, srv, "team", "app", "1")
		if s != nil && s.Summary != nil && s.Summary.Total > before.Summary.Total {
			if s.ScanStatus != "Success" {
				t.Errorf("after re-evaluation: %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report did not change after the update: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p := packages()
	for _, want := range []string{"lodash", "handlebars", "morgan", "moment", "github.com/gin-gonic/gin"} {
		if !p[want] {
			t.Errorf("after the update, the report misses %s", want)
		}
	}
	waitHook(t, got, "lading")
}

// waitHook waits for a SCANNING_COMPLETED payload by operator.
func waitHook(t *testing.T, got <-chan map[string]any, operator string) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case p := <-got:
			if p["type"] == "SCANNING_COMPLETED" && p["operator"] == operator {
				return
			}
		case <-timeout:
			t.Fatalf("no SCANNING_COMPLETED by %s within a minute", operator)
		}
	}
}

// destroyBlob truncates the stored blob with hex digest h under root.
func destroyBlob(t *testing.T, root, h string) {
	t.Helper()
	found := false
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "data" && strings.HasSuffix(filepath.Dir(p), string(filepath.Separator)+h) {
			if err := os.WriteFile(p, []byte("gone"), 0o644); err != nil {
				t.Fatal(err)
			}
			found = true
		}
		return nil
	})
	if !found {
		t.Fatalf("blob %s not found under %s", h, root)
	}
}

// staticKeychain gives one set of credentials for every registry.
type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }

// TestDBFromRegistry updates the database from a lading db push'ed
// artifact stored in this very registry (scan.db_source.repository,
// offline): the update reads it from storage, and the report changes.
func TestDBFromRegistry(t *testing.T) {
	ctx := context.Background()
	goOnly := filepath.Join(t.TempDir(), "go.db")
	if _, err := feed.Build(ctx, nil, goOnly, feedsOf(t)[2:]); err != nil {
		t.Fatal(err)
	}
	srv := start(t, goOnly, harbortest.WithScanning(func(o *scanning.Options) {
		o.Source = scanning.Source{Repository: "security/lading-db:1", Offline: true, Schedule: "@weekly"}
	}))
	newProject(t, srv, "security", nil)
	newProject(t, srv, "team", map[string]string{"auto_scan": "true"})
	ref, err := name.ParseReference(srv.Host+"/security/lading-db:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oci.Push(ctx, corpusDB(t), ref, oci.WithKeychain(staticKeychain{admin})); err != nil {
		t.Fatal(err)
	}
	push(t, srv, corpusImage(t, "alpine-3.20-app.oci.tar"), "team/app:1")
	before := waitScan(t, srv, "team", "app", "1")
	if before.ScanStatus != "Success" {
		t.Fatalf("scan: %+v", before)
	}
	if _, err := srv.Scanning.UpdateDB(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s := overview(t, srv, "team", "app", "1")
		if s != nil && s.Summary != nil && s.Summary.Total > before.Summary.Total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report did not change after the update from security/lading-db:1: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDBFromAnotherRegistry updates the database from an artifact that
// lading db push put in another registry (Debian's docker-registry on
// loopback: nothing leaves the machine), named by scan.db_source's
// repository: the update pulls it through the outbound policy, and the
// report changes. (scan.db_source.offline with a repository of another
// registry is refused when the server starts.)
func TestDBFromAnotherRegistry(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	ref, err := name.ParseReference(dist.Host+"/lading/db:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oci.Push(ctx, corpusDB(t), ref); err != nil {
		t.Fatal(err)
	}
	goOnly := filepath.Join(t.TempDir(), "go.db")
	if _, err := feed.Build(ctx, nil, goOnly, feedsOf(t)[2:]); err != nil {
		t.Fatal(err)
	}
	srv := start(t, goOnly, harbortest.WithScanning(func(o *scanning.Options) {
		o.Source = scanning.Source{Repository: dist.Host + "/lading/db:1", Insecure: true, Schedule: "@weekly"}
	}))
	newProject(t, srv, "team", map[string]string{"auto_scan": "true"})
	push(t, srv, corpusImage(t, "alpine-3.20-app.oci.tar"), "team/app:1")
	before := waitScan(t, srv, "team", "app", "1")
	if before.ScanStatus != "Success" {
		t.Fatalf("scan: %+v", before)
	}
	job, err := srv.Scanning.UpdateDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s := overview(t, srv, "team", "app", "1")
		if s != nil && s.Summary != nil && s.Summary.Total > before.Summary.Total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report did not change after the update from %s: %+v\n%s", ref, s, jobEnd(t, srv, job))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jobEnd waits until job has ended (its log says so) and returns its
// log.
func jobEnd(t *testing.T, srv *harbortest.Server, job int64) string {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		var b strings.Builder
		rows, err := srv.DB.Query(ctx, `SELECT line FROM job_log WHERE job_id = ? ORDER BY seq`, job)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var l string
			rows.Scan(&l)
			b.WriteString(l + "\n")
		}
		rows.Close()
		log := b.String()
		if strings.Contains(log, "] succeeded") || strings.Contains(log, "] failed: ") || time.Now().After(deadline) {
			return log
		}
		time.Sleep(50 * time.Millisecond)
	}
}
