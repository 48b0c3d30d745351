package server_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/server"
)

// immutable is a check as the later policies plug in: it refuses to
// overwrite or delete tags named "release".
type immutable struct {
	registry.AllowAll
	asked []registry.PushCheck
	mu    sync.Mutex
}

func (p *immutable) CheckPush(_ context.Context, s registry.Subject, m registry.PushCheck) error {
	p.mu.Lock()
	p.asked = append(p.asked, m)
	p.mu.Unlock()
	if slices.Contains(m.Tags, "release") {
		return errdefs.Denied(errors.New("tag release is immutable"))
	}
	return nil
}

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(kind string, e registry.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, kind+" "+e.Repository+" "+strings.Join(e.Tags, ",")+" by "+e.User)
}

func (r *recorder) Pushed(_ context.Context, e registry.Event)  { r.add("pushed", e) }
func (r *recorder) Pulled(_ context.Context, e registry.Event)  { r.add("pulled", e) }
func (r *recorder) Deleted(_ context.Context, e registry.Event) { r.add("deleted", e) }

func (r *recorder) seen(want string) bool {
	for range 100 {
		r.mu.Lock()
		ok := slices.Contains(r.events, want)
		r.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestPlugIns: the way later work (scan on push, webhooks, immutable
// tags, signature and vulnerability policies) plugs into the registry:
// Options.Policies are asked after read-only mode and the quota,
// Options.Events hear what happened, with the caller's name.
func TestPlugIns(t *testing.T) {
	pol, rec := &immutable{}, &recorder{}
	srv := harbortest.Start(t, harbortest.WithOptions(func(o *server.Options) {
		o.Policies = []registry.Policy{pol}
		o.Events = rec
	}))
	ctx := context.Background()
	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "library/app", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	err := srv.Push(ctx, img, "library/app", "release", "admin", harbortest.AdminPassword)
	if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("the policy did not refuse: %v", err)
	}
	if !rec.seen("pushed library/app v1 by admin") {
		t.Errorf("events: %v", rec.events)
	}
	if _, err := srv.Pull(ctx, "library/app:v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	if !rec.seen("pulled library/app v1 by admin") {
		t.Errorf("events: %v", rec.events)
	}
	// Read-only mode comes first: the plugged policy is not asked.
	if r := do(t, srv, "PUT", "/api/v2.0/configurations", `{"read_only": true}`, admin, adminPW); r.status != 200 {
		t.Fatalf("read_only: %d %s", r.status, r.body)
	}
	err = srv.Push(ctx, img, "library/app", "v2", "admin", harbortest.AdminPassword)
	if err == nil || !strings.Contains(err.Error(), "read only") {
		t.Errorf("read-only mode: %v", err)
	}
	pol.mu.Lock()
	defer pol.mu.Unlock()
	if len(pol.asked) != 2 || pol.asked[0].Repository != "library/app" || pol.asked[0].Digest == "" {
		t.Errorf("push checks: %+v", pol.asked)
	}
}
