package server_test

// Benchmarks of Harbor's layer (see the README's Registry section):
//
//	go test -run '^$' -bench 'Harbor' -benchtime 200x ./internal/registry/server/
//
// login+token: a token for a repository, traded for basic credentials as
//              registry clients do on every pull and push; the login form,
//              one user again and again: after the first, its verified
//              hash is cached (identity's login cache), so what it measures
//              is the rest (throttle, audit record, session); and argon2id
//              verification alone, the cost of a first login.
// artifacts:   GET .../artifacts of a repository with 10,000 tagged
//              artifacts; p50 and p99 (the goal is p99 < 50 ms).
// projects:    GET /projects with 10,000 projects, as an administrator
//              and as a member of 100 of them.
// pull:        an image of 16 MiB pulled as a client does (a token, the
//              manifest, the blobs), with authentication on and off in the
//              same run; the ratio is the cost of authorization.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/identity"
	lproject "github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/sqldb"
)

// timed runs op b.N times and reports latency percentiles.
func timed(b *testing.B, op func() error) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

var benchHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}

// get sends a GET with basic credentials and drains the answer.
func get(url, user, pass string) (int, []byte, error) {
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := benchHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func ok(status int, body []byte, err error) error {
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("status %d: %.200s", status, body)
	}
	return nil
}

func BenchmarkHarborLoginToken(b *testing.B) {
	srv := harbortest.Start(b)
	ctx := context.Background()
	if _, err := srv.Core.Identity.CreateUser(ctx, srv.AdminSubject(b), identity.UserCreate{Username: "bench", Email: "b@example.com", Realname: "B", Password: password}); err != nil {
		b.Fatal(err)
	}
	b.Run("token", func(b *testing.B) {
		url := srv.URL + "/service/token?service=harbor-registry&scope=repository:library/app:pull,push"
		timed(b, func() error { return ok(get(url, "bench", password)) })
	})
	b.Run("login-form", func(b *testing.B) {
		timed(b, func() error {
			resp, err := benchHTTP.PostForm(srv.URL+"/c/login", map[string][]string{"principal": {"bench"}, "password": {password}})
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("login: %d", resp.StatusCode)
			}
			return nil
		})
	})
	b.Run("argon2id-verify", func(b *testing.B) {
		hash := identity.HashPassword(password)
		timed(b, func() error {
			if !identity.CheckPassword(hash, password) {
				return fmt.Errorf("mismatch")
			}
			return nil
		})
	})
}

// seedArtifacts puts n tagged artifacts into repo through the artifact
// view's hook, as the registry's pushes would (in batches).
func seedArtifacts(b *testing.B, srv *harbortest.Server, repo string, n int) {
	ctx := context.Background()
	for start := 0; start < n; start += 1000 {
		err := srv.DB.Tx(ctx, "seed", func(tx *sqldb.Tx) error {
			for i := start; i < min(start+1000, n); i++ {
				m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"sha256:%064x"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"sha256:%064x"}]}`, 100+i, i, 1000+i, i+1<<40)
				p := artifact.Pushed{Repo: repo, Digest: fmt.Sprintf("sha256:%064x", i+1<<50), MediaType: "application/vnd.oci.image.manifest.v1+json",
					Size: int64(len(m)), Content: []byte(m), Tags: []string{fmt.Sprintf("v%d", i)}}
				if err := srv.Core.Artifacts.ManifestPut(ctx, tx, p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHarborListArtifacts10k(b *testing.B) {
	srv := harbortest.Start(b)
	seedArtifacts(b, srv, "library/big", 10000)
	base := srv.URL + "/api/v2.0/projects/library/repositories/big/artifacts"
	for _, tc := range []struct{ name, query string }{
		{"first-page", "?page=1&page_size=10"},
		{"page-size-100", "?page=1&page_size=100"},
		{"deep-page", "?page=900&page_size=10"},
		{"by-tag", "?q=tags%3Dv9876"},
		{"fuzzy-tag-sorted", "?q=tags%3D~v99&sort=-push_time&page_size=50"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			timed(b, func() error { return ok(get(base+tc.query, admin, adminPW)) })
		})
	}
}

// seedProjects creates n projects in one transaction (the project
// service's rows: project, owner membership, quota), and makes user a
// member of every n/100th.
func seedProjects(b *testing.B, srv *harbortest.Server, n int, userID int64) {
	ctx := context.Background()
	err := srv.DB.Tx(ctx, "seed", func(tx *sqldb.Tx) error {
		now := sqldb.Nanos(time.Now())
		for i := range n {
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO projects (name, owner_id, public, created, updated) VALUES (?, 1, ?, ?, ?) RETURNING id`,
				fmt.Sprintf("p%05d", i), i%10 == 0, now+int64(i), now+int64(i)).Scan(&id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO members (project_id, user_id, role, created, updated) VALUES (?, 1, 1, ?, ?)`, id, now, now); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO quotas (project_id, hard, used, created, updated) VALUES (?, -1, 0, ?, ?)`, id, now, now); err != nil {
				return err
			}
			if i%(n/100) == 0 {
				if _, err := tx.Exec(ctx, `INSERT INTO members (project_id, user_id, role, created, updated) VALUES (?, ?, 2, ?, ?)`, id, userID, now, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkHarborListProjects10k(b *testing.B) {
	srv := harbortest.Start(b)
	u, err := srv.Core.Identity.CreateUser(context.Background(), srv.AdminSubject(b), identity.UserCreate{Username: "member", Email: "m@example.com", Realname: "M", Password: password})
	if err != nil {
		b.Fatal(err)
	}
	seedProjects(b, srv, 10000, u.ID)
	base := srv.URL + "/api/v2.0/projects"
	for _, tc := range []struct{ name, user, pass, query string }{
		{"admin-first-page", admin, adminPW, "?page=1&page_size=10"},
		{"admin-page-size-100", admin, adminPW, "?page=1&page_size=100"},
		{"admin-deep-page", admin, adminPW, "?page=900&page_size=10"},
		{"admin-fuzzy-name", admin, adminPW, "?name=p0999"},
		{"member-first-page", "member", password, "?page=1&page_size=10"},
		{"anonymous-public", "", "", "?page=1&page_size=10"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			timed(b, func() error { return ok(get(base+tc.query, tc.user, tc.pass)) })
		})
	}
}

// pullImage pulls repo:v1 as a registry client does: a token (when the
// registry asks for one), the manifest, every blob. It returns the bytes
// read.
func pullImage(host, repo, user, pass string) (int64, error) {
	base := "http://" + host
	auth := ""
	if user != "" {
		status, body, err := get(base+"/service/token?service=harbor-registry&scope=repository:"+repo+":pull", user, pass)
		if err := ok(status, body, err); err != nil {
			return 0, err
		}
		var t struct{ Token string }
		json.Unmarshal(body, &t)
		auth = "Bearer " + t.Token
	}
	fetch := func(path, accept string) ([]byte, error) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := benchHTTP.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d %.200s", path, resp.StatusCode, b)
		}
		return b, err
	}
	mb, err := fetch("/v2/"+repo+"/manifests/v1", "application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json")
	if err != nil {
		return 0, err
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	json.Unmarshal(mb, &m)
	n := int64(len(mb))
	for _, d := range append([]string{m.Config.Digest}, func() []string {
		var out []string
		for _, l := range m.Layers {
			out = append(out, l.Digest)
		}
		return out
	}()...) {
		b, err := fetch("/v2/"+repo+"/blobs/"+d, "")
		if err != nil {
			return 0, err
		}
		n += int64(len(b))
	}
	return n, nil
}

func BenchmarkHarborPullAuth(b *testing.B) {
	ctx := context.Background()
	on := harbortest.Start(b)
	off := harbortest.Start(b, harbortest.WithConfig(func(c *server.Config) { c.Auth.Mode = "none" }))
	img, err := random.Image(1<<20, 16)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := on.Core.Projects.Create(ctx, on.AdminSubject(b), lproject.Create{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	if _, err := on.Core.Identity.CreateUser(ctx, on.AdminSubject(b), identity.UserCreate{Username: "puller", Email: "p@example.com", Realname: "P", Password: password}); err != nil {
		b.Fatal(err)
	}
	if _, err := on.Core.Projects.AddMember(ctx, on.AdminSubject(b), lproject.Ref{Name: "bench"}, lproject.MemberCreate{Role: access.Guest, Username: "puller"}); err != nil {
		b.Fatal(err)
	}
	if err := on.Push(ctx, img, "bench/app", "v1", admin, adminPW); err != nil {
		b.Fatal(err)
	}
	if err := off.Push(ctx, img, "bench/app", "v1", "", ""); err != nil {
		b.Fatal(err)
	}
	// Interleaved rounds, alternating which goes first, so both see the
	// same machine; the ratio reported is the median of the rounds'.
	var durOn, durOff time.Duration
	var bytesOn, bytesOff int64
	var ratios []float64
	pull := func(srv *harbortest.Server, user, pass string) (int64, time.Duration) {
		t0 := time.Now()
		n, err := pullImage(srv.Host, "bench/app", user, pass)
		if err != nil {
			b.Fatal(err)
		}
		return n, time.Since(t0)
	}
	b.ResetTimer()
	for i := range b.N {
		var nOn, nOff int64
		var dOn, dOff time.Duration
		if i%2 == 0 {
			nOn, dOn = pull(on, "puller", password)
			nOff, dOff = pull(off, "", "")
		} else {
			nOff, dOff = pull(off, "", "")
			nOn, dOn = pull(on, "puller", password)
		}
		durOn, durOff, bytesOn, bytesOff = durOn+dOn, durOff+dOff, bytesOn+nOn, bytesOff+nOff
		ratios = append(ratios, dOff.Seconds()/dOn.Seconds())
	}
	b.StopTimer()
	slices.Sort(ratios)
	mbps := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(bytesOn, durOn), "auth-MB/s")
	b.ReportMetric(mbps(bytesOff, durOff), "noauth-MB/s")
	b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
}
