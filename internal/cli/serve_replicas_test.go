package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
)

// TestServeReplicas starts two `lading serve` processes on one PostgreSQL
// and one storage root, as replicas behind a load balancer run: a user
// created through A logs in through B, gets a token from B and pushes
// through B; A serves the image, takes B's token, and a session A made
// works on B. Nothing a replica needs lives in one process's memory.
func TestServeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two lading serve processes; skipped with -short")
	}
	const admin, password = "Harbor12345", "Carol12345"
	dbURL := pgtest.Start(t).NewDatabase(t)
	root := t.TempDir()
	cfg := filepath.Join(root, "serve.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("auth: {admin_password: %s}\ndatabase: {url: %q}\nlog: {access: false}\n", admin, dbURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startServe(t, root, "--config", cfg)
	b := startServe(t, root, "--config", cfg)
	if a.cmd.Process.Pid == b.cmd.Process.Pid || a.base == b.base {
		t.Fatalf("one process: %s %s", a.base, b.base)
	}

	// Through A: the user carol, the project shared, carol a developer.
	call := func(base, method, path, body string, h ...string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(h); i += 2 {
			if h[i] == "basic" {
				user, pass, _ := strings.Cut(h[i+1], ":")
				req.SetBasicAuth(user, pass)
				continue
			}
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out), resp.Header
	}
	asAdmin := []string{"basic", "admin:" + admin}
	for _, c := range []struct{ path, body string }{
		{"/api/v2.0/users", `{"username":"carol","email":"carol@example.com","realname":"Carol","password":"` + password + `"}`},
		{"/api/v2.0/projects", `{"project_name":"shared","metadata":{"public":"false"}}`},
		{"/api/v2.0/projects/shared/members", `{"role_id":2,"member_user":{"username":"carol"}}`},
	} {
		if st, body, _ := call(a.base, "POST", c.path, c.body, asAdmin...); st != http.StatusCreated {
			t.Fatalf("POST %s through A: %d %s", c.path, st, body)
		}
	}

	// Carol logs in through B (basic credentials and a token from B's
	// token service) and pushes through B.
	st, body, _ := call(b.base, "GET", "/service/token?service=harbor-registry&scope=repository:shared/app:pull,push", "", "basic", "carol:"+password)
	var tok struct{ Token string }
	json.Unmarshal([]byte(body), &tok)
	if st != http.StatusOK || tok.Token == "" {
		t.Fatalf("token from B: %d %s", st, body)
	}
	ctx := context.Background()
	carol := remote.WithAuth(&authn.Basic{Username: "carol", Password: password})
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	refB, err := name.NewTag(strings.TrimPrefix(b.base, "http://")+"/shared/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(refB, img, carol, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push through B: %v", err)
	}
	// A serves it, to carol with her credentials, not anonymously.
	refA, _ := name.NewTag(strings.TrimPrefix(a.base, "http://")+"/shared/app:v1", name.Insecure)
	got, err := remote.Image(refA, carol, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull through A: %v", err)
	}
	want, _ := img.Digest()
	if d, err := got.Digest(); err != nil || d != want {
		t.Errorf("pulled %v (%v), pushed %v", d, err, want)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer through A: %v", err)
		}
		_, err = io.Copy(io.Discard, rc) // verified against its digest
		rc.Close()
		if err != nil {
			t.Errorf("layer through A: %v", err)
		}
	}
	if _, err := remote.Image(refA, remote.WithContext(ctx)); err == nil {
		t.Error("anonymous pull of a private project through A succeeded")
	}
	// B's token opens A's registry.
	if st, body, _ := call(a.base, "POST", "/v2/shared/app/blobs/uploads/", "", "Authorization", "Bearer "+tok.Token); st != http.StatusAccepted {
		t.Errorf("B's token on A: %d %s", st, body)
	}

	// A session made by A works on B, CSRF token included.
	resp, err := http.PostForm(a.base+"/c/login", url.Values{"principal": {"carol"}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sid string
	for _, c := range resp.Cookies() {
		if c.Name == "sid" {
			sid = c.Value
		}
	}
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("login through A: %s", resp.Status)
	}
	st, body, h := call(b.base, "GET", "/api/v2.0/users/current", "", "Cookie", "sid="+sid)
	var me struct{ Username string }
	json.Unmarshal([]byte(body), &me)
	if st != http.StatusOK || me.Username != "carol" {
		t.Fatalf("A's session on B: %d %s", st, body)
	}
	csrf := h.Get("X-Harbor-CSRF-Token")
	if st, body, _ := call(b.base, "PUT", "/api/v2.0/projects/shared/repositories/app", `{"description":"from B"}`, "Cookie", "sid="+sid, "X-Harbor-CSRF-Token", csrf); st != http.StatusOK {
		t.Errorf("write with A's session on B: %d %s", st, body)
	}
	if st, body, _ := call(a.base, "GET", "/api/v2.0/projects/shared/repositories/app", "", "basic", "carol:"+password); st != http.StatusOK || !strings.Contains(body, `"description":"from B"`) {
		t.Errorf("the description through A: %d %s", st, body)
	}
	// Logging out through B ends the session on A too.
	call(b.base, "GET", "/c/log_out", "", "Cookie", "sid="+sid)
	if st, body, _ := call(a.base, "GET", "/api/v2.0/users/current", "", "Cookie", "sid="+sid); st != http.StatusUnauthorized {
		t.Errorf("A's session on A after logging out through B: %d %s", st, body)
	}
}
