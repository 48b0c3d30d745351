package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/replication"
	"github.com/lading-dev/lading/internal/task"
	"github.com/lading-dev/lading/internal/ui"
)

// BenchmarkSystemPages measures the server time of the system's
// Administration pages, seeded with 20 registries (Debian's
// docker-registry), 100 replication policies and 50 finished
// executions, as the administrator; the baseline, in the same loop, is
// the users page (one listing query).
func BenchmarkSystemPages(b *testing.B) {
	dist := registrytest.Start(b, registrytest.None)
	srv := startFull(b)
	ctx := context.Background()
	admin := srv.AdminSubject(b)
	var regs []int64
	for i := range 20 {
		r := replication.Registry{Name: fmt.Sprintf("reg-%02d", i)}
		r.Type, r.URL, r.Insecure = endpoint.TypeDockerRegistry, "http://"+dist.Host, true
		id, err := srv.Core.Replication.CreateRegistry(ctx, admin, r)
		if err != nil {
			b.Fatal(err)
		}
		regs = append(regs, id)
	}
	var pols []int64
	for i := range 100 {
		id, err := srv.Core.Replication.CreatePolicy(ctx, admin, replication.Policy{Name: fmt.Sprintf("policy-%03d", i), DestRegistry: regs[i%len(regs)],
			DestNamespaceReplaceCount: 1, Enabled: true, Filters: []replication.Filter{{Type: endpoint.FilterName, Value: "nothing/**"}}})
		if err != nil {
			b.Fatal(err)
		}
		pols = append(pols, id)
	}
	for i := range 50 {
		if _, err := srv.Core.Replication.Start(ctx, admin, pols[i]); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		_, total, err := srv.Core.Replication.Executions(ctx, admin, replication.ExecutionFilter{Policy: -1, Status: task.StatusSuccess}, query.Query{}, query.Page{Number: 1, Size: 1})
		if err != nil {
			b.Fatal(err)
		}
		if total == 50 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of 50 executions succeeded", total)
		}
	}
	who, err := srv.Core.Identity.Login(ctx, "admin", "Harbor12345", "", false)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := srv.Core.Identity.StartSession(ctx, who)
	if err != nil {
		b.Fatal(err)
	}
	ck := &http.Cookie{Name: ui.SessionCookie, Value: sess.Token}
	h := srv.Handler()
	get := func(path string) *http.Request {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(ck)
		return req
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get("/admin/replication"))
	if n := strings.Count(rec.Body.String(), `href="/admin/replication/policies/`); n != 100 {
		b.Fatalf("replication page lists %d policies, want 100", n)
	}
	for _, p := range systemPages {
		h.ServeHTTP(httptest.NewRecorder(), get(p)) // warm: the scanners' metadata is cached for a minute
	}
	for _, p := range systemPages {
		b.Run(strings.TrimPrefix(p, "/admin/"), func(b *testing.B) {
			runtime.LockOSThread() // the thread's CPU time is the request's
			defer runtime.UnlockOSThread()
			var w, c, bw, bc timings
			for b.Loop() {
				wt, ct := serve(b, h, get(p))
				w, c = append(w, wt), append(c, ct)
				b.StopTimer()
				wt, ct = serve(b, h, get("/admin/users"))
				bw, bc = append(bw, wt), append(bc, ct)
				b.StartTimer()
			}
			report(b, "", w, c)
			b.ReportMetric(float64(c.pct(0.5))/float64(bc.pct(0.5)), "page/users-cpu")
		})
	}
	b.Logf("load average %s", loadAverage())
}
