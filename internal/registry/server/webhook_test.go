package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/quota"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/webhook"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/registry/server"
	lwebhook "github.com/lading-dev/lading/internal/webhook"
)

// hookReceiver records deliveries and when they arrived.
type hookReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []hookDelivery
	ch  chan hookDelivery
}

type hookDelivery struct {
	at      time.Time
	key     string
	payload lwebhook.Payload
	raw     []byte
}

func newHookReceiver(t testing.TB) *hookReceiver {
	r := &hookReceiver{ch: make(chan hookDelivery, 1024)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		d := hookDelivery{at: time.Now(), key: req.Header.Get("Idempotency-Key"), raw: b}
		json.Unmarshal(b, &d.payload)
		r.mu.Lock()
		r.got = append(r.got, d)
		r.mu.Unlock()
		r.ch <- d
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits for a delivery of type typ.
func (r *hookReceiver) next(t testing.TB, typ string) hookDelivery {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case d := <-r.ch:
			if d.payload.Type == typ {
				return d
			}
		case <-timeout:
			t.Fatalf("no %s delivery within 30s", typ)
		}
	}
}

func loopbackServer(t testing.TB) *harbortest.Server {
	return harbortest.Start(t, harbortest.WithConfig(func(c *server.Config) {
		c.Outbound.Allow = []string{"127.0.0.0/8"}
		c.Jobs.Poll = 50 * time.Millisecond
		c.ExternalURL = "http://127.0.0.1:5000" // as clients would name it
	}))
}

func hookTo(t testing.TB, srv *harbortest.Server, project, addr string, types ...string) {
	t.Helper()
	_, err := srv.Admin().Webhook.CreateWebhookPolicyOfProject(context.Background(), webhook.NewCreateWebhookPolicyOfProjectParams().WithProjectNameOrID(project).
		WithPolicy(&models.WebhookPolicy{Name: "hook", Enabled: true, EventTypes: types, Targets: []*models.WebhookTargetObject{{Type: "http", Address: addr}}}))
	if err != nil {
		t.Fatal(err)
	}
}

// TestRegistryWebhooks pushes, pulls and deletes through the registry and
// checks that the registry's events reach a receiver as Harbor's
// payloads, quota events included.
func TestRegistryWebhooks(t *testing.T) {
	ctx := context.Background()
	srv := loopbackServer(t)
	recv := newHookReceiver(t)
	hookTo(t, srv, "library", recv.URL+"/hook", "PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "QUOTA_EXCEED", "QUOTA_WARNING")

	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "library/app", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	dgst, _ := img.Digest()
	push := recv.next(t, "PUSH_ARTIFACT")
	ed := push.payload.EventData
	if push.payload.Operator != "admin" || ed == nil || len(ed.Resources) != 1 || ed.Resources[0].Digest != dgst.String() || ed.Resources[0].Tag != "v1" ||
		ed.Resources[0].ResourceURL != "127.0.0.1:5000/library/app:v1" || ed.Repository.RepoFullName != "library/app" || ed.Repository.RepoType != "public" ||
		ed.Repository.DateCreated == 0 {
		t.Errorf("push payload: %s", push.raw)
	}
	if _, err := srv.Pull(ctx, "library/app:v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	if pull := recv.next(t, "PULL_ARTIFACT"); pull.payload.EventData.Resources[0].Digest != dgst.String() {
		t.Errorf("pull payload: %s", pull.raw)
	}
	req, _ := http.NewRequest("DELETE", srv.URL+"/v2/library/app/manifests/"+dgst.String(), nil)
	req.SetBasicAuth("admin", harbortest.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("delete: %v %v", resp, err)
	}
	resp.Body.Close()
	if del := recv.next(t, "DELETE_ARTIFACT"); del.payload.EventData.Resources[0].Tag != dgst.String() {
		t.Errorf("delete payload: %s", del.raw)
	}
	// So does a deletion through Harbor's API.
	img2 := harbortest.Image(t)
	if err := srv.Push(ctx, img2, "library/app", "v2", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	recv.next(t, "PUSH_ARTIFACT")
	if _, err := srv.Admin().Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName("library").WithRepositoryName("app").WithReference("v2")); err != nil {
		t.Fatal(err)
	}
	dgst2, _ := img2.Digest()
	if del := recv.next(t, "DELETE_ARTIFACT"); del.payload.Operator != "admin" || del.payload.EventData.Resources[0].Digest != dgst2.String() {
		t.Errorf("payload of a deletion through the API: %s", del.raw)
	}

	// A quota of a few bytes: the next push is refused (QUOTA_EXCEED).
	quotas, err := srv.Admin().Quota.ListQuotas(ctx, quota.NewListQuotasParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range quotas.Payload {
		if q.Ref != nil {
			if ref, ok := q.Ref.(map[string]any); ok && ref["name"] == "library" {
				if _, err := srv.Admin().Quota.UpdateQuota(ctx, quota.NewUpdateQuotaParams().WithID(q.ID).WithHard(&models.QuotaUpdateReq{Hard: models.ResourceList{"storage": 10}})); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := srv.Push(ctx, harbortest.Image(t), "library/big", "v1", "admin", harbortest.AdminPassword); err == nil {
		t.Fatal("a push over the quota succeeded")
	}
	ex := recv.next(t, "QUOTA_EXCEED")
	if ex.payload.EventData.Custom["Details"] == "" || ex.payload.EventData.Repository.RepoFullName != "library/big" {
		t.Errorf("quota exceeded payload: %s", ex.raw)
	}
	// No event failed to publish.
	if strings.Contains(srv.Logs.String(), "publishing a webhook event") {
		t.Errorf("publishing failed:\n%s", srv.Logs.String())
	}
}

// BenchmarkWebhookLatency measures the time from a push's acknowledgement
// (the manifest PUT answered) to the receiver holding the PUSH_ARTIFACT
// delivery, on SQLite.
func BenchmarkWebhookLatency(b *testing.B) {
	ctx := context.Background()
	srv := loopbackServer(b)
	recv := newHookReceiver(b)
	hookTo(b, srv, "library", recv.URL+"/hook", "PUSH_ARTIFACT")
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		img := harbortest.Image(b)
		b.StopTimer()
		b.StartTimer()
		if err := srv.Push(ctx, img, "library/app", "v1", "admin", harbortest.AdminPassword); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		d := recv.next(b, "PUSH_ARTIFACT")
		lat = append(lat, d.at.Sub(acked))
	}
	b.StopTimer()
	// The baseline: the same receiver sent the last payload directly,
	// by this process, over a fresh connection as each delivery may be.
	var base []time.Duration
	last := recv.got[len(recv.got)-1].raw
	for range len(lat) {
		start := time.Now()
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Post(recv.URL+"/hook", "application/json", strings.NewReader(string(last)))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		d := <-recv.ch
		base = append(base, d.at.Sub(start))
	}
	p50 := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	if len(lat) > 0 {
		l, bl := p50(lat), p50(base)
		b.ReportMetric(float64(l.Microseconds())/1000, "ms-p50")
		b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "ms-p90")
		b.ReportMetric(float64(bl.Microseconds())/1000, "baseline-ms-p50")
		b.ReportMetric(float64(l)/float64(bl), "x-baseline")
	}
}

// TestReplicasWebhooks runs two lading serve replicas on one PostgreSQL
// and one storage root: pushes to either become deliveries that each run
// exactly once, on one replica or the other.
func TestReplicasWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short")
	}
	const pushes = 40
	ctx := context.Background()
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	root := t.TempDir()
	opts := []harbortest.Option{harbortest.WithDatabase(url), harbortest.WithRoot(root), harbortest.WithConfig(func(c *server.Config) {
		c.Outbound.Allow = []string{"127.0.0.0/8"}
		c.Jobs.Poll = 50 * time.Millisecond
		c.Jobs.Workers = 2
	})}
	a := harbortest.Start(t, opts...)
	b := harbortest.Start(t, opts...)
	recv := newHookReceiver(t)
	hookTo(t, a, "library", recv.URL+"/hook", "PUSH_ARTIFACT")
	for i := range pushes {
		srv := []*harbortest.Server{a, b}[i%2]
		if err := srv.Push(ctx, harbortest.Image(t), "library/app", fmt.Sprintf("t%d", i), "admin", harbortest.AdminPassword); err != nil {
			t.Fatal(err)
		}
	}
	for range pushes {
		recv.next(t, "PUSH_ARTIFACT")
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate, if there were one
	recv.mu.Lock()
	perKey := map[string]int{}
	for _, d := range recv.got {
		perKey[d.key]++
	}
	recv.mu.Unlock()
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("delivery %s ran %d times", k, n)
		}
	}
	if len(perKey) != pushes {
		t.Errorf("%d deliveries, want %d", len(perKey), pushes)
	}
	rows, err := a.DB.Query(ctx, `SELECT pool, COUNT(*) FROM jobs WHERE kind = 'WEBHOOK' GROUP BY pool`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	pools := 0
	for rows.Next() {
		var pool string
		var n int
		rows.Scan(&pool, &n)
		t.Logf("pool %s ran %d deliveries", pool, n)
		pools++
	}
	if pools != 2 {
		t.Errorf("deliveries ran on %d replicas, want both", pools)
	}
}
