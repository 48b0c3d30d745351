package core_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/member"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
	"github.com/lading-dev/lading/internal/webhook"
)

// harness is a core with its API served, its job service running, and
// the users of the authorization tests: "admin" (system administrator),
// and in project "team" (private) "padmin" (project admin), "maint"
// (maintainer), "dev" (developer), "guest"; "outsider" is in no project.
type harness struct {
	core  *core.Core
	srv   *httptest.Server
	logs  *syncBuffer
	admin *v2.HarborAPI
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harnessOptions struct {
	allow    []string // outbound.allow
	timeout  time.Duration
	register func(*jobs.Queue)
}

func newHarness(t *testing.T, ho harnessOptions) *harness {
	t.Helper()
	ctx := context.Background()
	db := sqldbtest.SQLite(t, core.Migrations())
	pol, err := outbound.Parse(ho.allow)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if ho.timeout == 0 {
		ho.timeout = 5 * time.Second
	}
	c, err := core.New(ctx, db, core.Options{Log: log, AccessLog: log, Outbound: pol,
		Jobs:     jobs.Options{Workers: 4, Poll: 20 * time.Millisecond, Lease: 2 * time.Second},
		Webhooks: webhook.Options{Timeout: ho.timeout, MaxAttempts: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if ho.register != nil {
		ho.register(c.Jobs)
	}
	if err := c.Bootstrap(ctx, "Harbor12345", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(runCtx) }()
	mux := http.NewServeMux()
	mux.Handle("/api/", c.API)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); cancel(); <-done; c.Close() })
	h := &harness{core: c, srv: srv, logs: logs, admin: client(t, srv, httptransport.BasicAuth("admin", "Harbor12345"))}
	h.setupUsers(t)
	return h
}

func (h *harness) setupUsers(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, u := range []string{"padmin", "maint", "dev", "guest", "outsider"} {
		if _, err := h.admin.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: u, Email: u + "@example.com", Realname: u, Password: "Passw0rd1"})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.admin.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "team"})); err != nil {
		t.Fatal(err)
	}
	for u, role := range map[string]int64{"padmin": 1, "dev": 2, "guest": 3, "maint": 4} {
		_, err := h.admin.Member.CreateProjectMember(ctx, member.NewCreateProjectMemberParams().WithProjectNameOrID("team").
			WithProjectMember(&models.ProjectMember{RoleID: role, MemberUser: &models.UserEntity{Username: u}}))
		if err != nil {
			t.Fatal(err)
		}
	}
}

// as is a client authenticated as user ("" for anonymous).
func (h *harness) as(t *testing.T, name string) *v2.HarborAPI {
	switch name {
	case "":
		return client(t, h.srv, nil)
	case "admin":
		return h.admin
	}
	return client(t, h.srv, httptransport.BasicAuth(name, "Passw0rd1"))
}

// raw sends a request as user and returns the status and body.
func (h *harness) raw(t *testing.T, who, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+"/api/v2.0"+path, bytes.NewReader(body))
	if who != "" {
		pass := "Passw0rd1"
		if who == "admin" {
			pass = "Harbor12345"
		}
		req.SetBasicAuth(who, pass)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
