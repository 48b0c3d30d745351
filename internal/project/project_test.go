package project_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/config"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
)

var migrations = append(append(append(append([]sqldb.Migration{}, config.Migrations...), audit.Migrations...), identity.Migrations...), project.Migrations...)

type env struct {
	db       *sqldb.DB
	ids      *identity.Service
	projects *project.Service
	admin    access.Subject
}

func setup(t *testing.T, db *sqldb.DB) *env {
	ctx := context.Background()
	store := project.NewStore(db)
	checker := access.New(store)
	var cfg *config.Store
	log := audit.New(db, checker, func(ctx context.Context) (audit.Settings, error) {
		st, err := cfg.Get(ctx)
		return audit.Settings{ForwardEndpoint: st.AuditForwardEndpoint, SkipDatabase: st.SkipAuditDatabase, Disabled: st.DisabledAuditEvents}, err
	}, nil)
	cfg = config.New(db, checker, log)
	ids := identity.New(db, checker, log, cfg, store)
	projects := project.New(db, store, checker, log, cfg, ids, nil)
	if _, _, err := ids.Bootstrap(ctx, "Admin12345"); err != nil {
		t.Fatal(err)
	}
	if err := projects.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := ids.Login(ctx, "admin", "Admin12345", "127.0.0.1:1", true)
	if err != nil {
		t.Fatal(err)
	}
	return &env{db: db, ids: ids, projects: projects, admin: admin}
}

func TestProjectsAndMembers(t *testing.T) {
	sqldbtest.Each(t, migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e := setup(t, db)
		u, err := e.ids.CreateUser(ctx, e.admin, identity.UserCreate{Username: "alice", Email: "alice@example.com", Realname: "Alice", Password: "Alice12345"})
		if err != nil {
			t.Fatal(err)
		}
		alice, err := e.ids.Login(ctx, "alice", "Alice12345", "", false)
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.projects.Create(ctx, alice, project.Create{Name: "team", StorageLimit: ptr(int64(100))})
		if err != nil {
			t.Fatal(err)
		}
		if p.OwnerID != u.ID || len(p.Roles) != 1 || p.Roles[0] != access.ProjectAdmin {
			t.Errorf("creator: owner %d roles %v", p.OwnerID, p.Roles)
		}
		// Only sysadmins choose a storage limit.
		q, err := e.projects.Quota(ctx, e.admin, p.ID)
		if err != nil || q.Hard != -1 {
			t.Errorf("quota of a user's project: %+v %v", q, err)
		}
		if _, err := e.projects.Create(ctx, alice, project.Create{Name: "team"}); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("duplicate: %v", err)
		}
		for _, bad := range []string{"", "Team", "a b", "-x", "x--y", "../x", string(make([]byte, 256))} {
			if _, err := e.projects.Create(ctx, alice, project.Create{Name: bad}); !errdefs.IsInvalidArgument(err) {
				t.Errorf("name %q: %v, want invalid", bad, err)
			}
		}
		// Alice lists library (public) and team (member).
		list, total, err := e.projects.List(ctx, alice, query.Query{}, query.Page{Number: 1, Size: 10})
		if err != nil || total != 2 || len(list) != 2 {
			t.Fatalf("alice's list: %d %v", total, err)
		}
		anon, total, err := e.projects.List(ctx, access.Subject{}, query.Query{}, query.Page{Number: 1, Size: 10})
		if err != nil || total != 1 || anon[0].Name != "library" {
			t.Errorf("anonymous list: %+v %v", anon, err)
		}
		// Members.
		bob, err := e.ids.CreateUser(ctx, e.admin, identity.UserCreate{Username: "bob", Email: "bob@example.com", Realname: "Bob", Password: "Bob1234567"})
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.projects.AddMember(ctx, alice, project.Ref{Name: "team"}, project.MemberCreate{Role: access.Guest, Username: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(project.Member{ID: m.ID, ProjectID: p.ID, EntityID: bob.ID, EntityName: "bob", EntityType: "u", Role: access.Guest}, m); diff != "" {
			t.Errorf("member (-want +got):\n%s", diff)
		}
		bobS, _ := e.ids.Login(ctx, "bob", "Bob1234567", "", false)
		if _, err := e.projects.AddMember(ctx, bobS, project.Ref{Name: "team"}, project.MemberCreate{Role: access.ProjectAdmin, Username: "bob"}); !errors.Is(err, errdefs.ErrDenied) {
			t.Errorf("guest adds member: %v", err)
		}
		if err := e.projects.Delete(ctx, bobS, project.Ref{Name: "team"}); !errors.Is(err, errdefs.ErrDenied) {
			t.Errorf("guest deletes project: %v", err)
		}
		// The library's members are not team's.
		lib, _ := e.projects.Get(ctx, e.admin, project.Ref{Name: "library"})
		libMembers, _, _ := e.projects.Members(ctx, e.admin, project.Ref{ID: lib.ID}, "", query.Page{})
		if _, err := e.projects.Member(ctx, alice, project.Ref{Name: "team"}, libMembers[0].ID); !errdefs.IsNotFound(err) {
			t.Errorf("another project's member by id: %v", err)
		}
		// Deleting the user removes the membership.
		if err := e.ids.DeleteUser(ctx, e.admin, bob.ID); err != nil {
			t.Fatal(err)
		}
		ms, _, _ := e.projects.Members(ctx, alice, project.Ref{Name: "team"}, "", query.Page{})
		if len(ms) != 1 {
			t.Errorf("members after deleting bob: %+v", ms)
		}
		if err := e.projects.Delete(ctx, alice, project.Ref{Name: "team"}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestQuotaConcurrent links blobs from many goroutines, in several
// repositories of one project, and checks that each blob counts once and
// the limit is never exceeded.
func TestQuotaConcurrent(t *testing.T) {
	sqldbtest.Each(t, migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e := setup(t, db)
		p, err := e.projects.Create(ctx, e.admin, project.Create{Name: "q", StorageLimit: ptr(int64(1000))})
		if err != nil {
			t.Fatal(err)
		}
		link := func(repo, dgst string, size int64) error {
			return db.Tx(ctx, "link", func(tx *sqldb.Tx) error { return e.projects.Linked(ctx, tx, repo, dgst, size) })
		}
		unlink := func(repo, dgst string) error {
			return db.Tx(ctx, "unlink", func(tx *sqldb.Tx) error { return e.projects.Unlinked(ctx, tx, repo, dgst) })
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		denied := 0
		// 20 blobs of 100 bytes, each linked into 3 repositories: only
		// 10 fit.
		for i := range 20 {
			for r := range 3 {
				wg.Go(func() {
					err := link(fmt.Sprintf("q/repo%d", r), fmt.Sprintf("sha256:%064d", i), 100)
					var ex *project.ExceededError
					if errors.As(err, &ex) {
						mu.Lock()
						denied++
						mu.Unlock()
						if ex.Limit != 1000 || ex.Needed != 100 || !errors.Is(err, errdefs.ErrDenied) {
							t.Errorf("exceeded: %+v", ex)
						}
					} else if err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		q, _ := e.projects.Quota(ctx, e.admin, p.ID)
		if q.Used != 1000 {
			t.Errorf("used %d, want 1000 (denied %d)", q.Used, denied)
		}
		// Unlinking one of several links frees nothing; the last frees.
		var linked []string
		rows, _ := db.Query(ctx, `SELECT digest FROM project_blobs WHERE project_id = ? AND refs = 3 ORDER BY digest`, p.ID)
		for rows.Next() {
			var d string
			rows.Scan(&d)
			linked = append(linked, d)
		}
		rows.Close()
		if len(linked) == 0 {
			t.Fatal("no blob linked in all three repositories")
		}
		for r := range 3 {
			if err := unlink(fmt.Sprintf("q/repo%d", r), linked[0]); err != nil {
				t.Fatal(err)
			}
			q, _ := e.projects.Quota(ctx, e.admin, p.ID)
			if want := map[bool]int64{true: 900, false: 1000}[r == 2]; q.Used != want {
				t.Errorf("after unlink %d: used %d, want %d", r, q.Used, want)
			}
		}
		// Outside any project nothing counts.
		if err := link("nowhere/x", "sha256:1", 10); err != nil {
			t.Error(err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
