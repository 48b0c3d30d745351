package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/jobs"
)

// TestJobService: the administrator's job service dashboard lists this
// process's runner and each kind's queue; pausing a queue through the
// page holds jobs queued after it (the queue says so), dropping empties
// it, resuming runs it again; a user who is not an administrator is
// refused the page and its form.
func TestJobService(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	if _, err := s.Core.Identity.CreateUser(ctx, s.admin(t), identity.UserCreate{Username: "user", Email: "u@example.com", Realname: "U", Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	queue := func(kind string) jobs.QueueInfo {
		t.Helper()
		qs, err := s.Core.Jobs.Queues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Kind == kind {
				return q
			}
		}
		t.Fatalf("no queue %s in %v", kind, qs)
		return jobs.QueueInfo{}
	}
	b := newBrowser(t, s.URL)
	b.login("admin", "Harbor12345")
	// The runner registers as the server starts.
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var st int
		st, body = b.get("/admin/jobs")
		if st != http.StatusOK {
			t.Fatalf("job service page: %d", st)
		}
		if strings.Contains(body, "1 runners") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(body, "1 runners") || !strings.Contains(body, "<td>WEBHOOK</td>") || !strings.Contains(body, `aria-label="Pause WEBHOOK"`) {
		t.Fatalf("job service page does not show the runner and the WEBHOOK queue: %.2000s", body)
	}
	checkNoInline(t, "/admin/jobs", body)

	if st, loc := b.post("/admin/jobs", url.Values{"kind": {"WEBHOOK"}, "action": {"pause"}}); st != http.StatusSeeOther || loc != "/admin/jobs" {
		t.Fatalf("pause: %d %s", st, loc)
	}
	for range 3 {
		if _, _, err := s.Core.Jobs.Enqueue(ctx, jobs.Request{Kind: "WEBHOOK", Args: map[string]string{}}); err != nil {
			t.Fatal(err)
		}
	}
	if q := queue("WEBHOOK"); !q.Paused || q.Count != 3 {
		t.Errorf("after pausing and queueing 3: %+v", q)
	}
	_, body = b.get("/admin/jobs")
	if !strings.Contains(body, `aria-label="Resume WEBHOOK"`) || !strings.Contains(body, "Drop the 3 pending WEBHOOK jobs?") {
		t.Errorf("the page does not offer to resume and drop the paused queue")
	}
	if st, _ := b.post("/admin/jobs", url.Values{"kind": {"WEBHOOK"}, "action": {"stop"}}); st != http.StatusSeeOther {
		t.Errorf("drop: %d", st)
	}
	if q := queue("WEBHOOK"); q.Count != 0 {
		t.Errorf("after dropping: %+v", q)
	}
	if st, _ := b.post("/admin/jobs", url.Values{"kind": {"WEBHOOK"}, "action": {"resume"}}); st != http.StatusSeeOther {
		t.Errorf("resume: %d", st)
	}
	if q := queue("WEBHOOK"); q.Paused {
		t.Errorf("after resuming: %+v", q)
	}
	if st, _ := b.post("/admin/jobs", url.Values{"kind": {"NO SUCH"}, "action": {"pause"}}); st != http.StatusSeeOther {
		t.Errorf("a bad kind: %d, want the page with the reason", st)
	}

	u := newBrowser(t, s.URL)
	u.login("user", userPassword)
	if st, _ := u.get("/admin/jobs"); st != http.StatusForbidden {
		t.Errorf("the page for a user: %d, want 403", st)
	}
	if st, _ := u.post("/admin/jobs", url.Values{"kind": {"WEBHOOK"}, "action": {"pause"}}); st != http.StatusForbidden {
		t.Errorf("pause posted by a user: %d, want 403", st)
	}
	if queue("WEBHOOK").Paused {
		t.Error("a user's post paused the queue")
	}
}
