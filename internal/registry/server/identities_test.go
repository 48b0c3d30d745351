package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/jobs"
)

// The external identities seen end to end: a lading serve configured
// through /configurations, Harbor's endpoints, registry clients through
// the token service. This file: helpers and LDAP; oidc_test.go: OIDC.

// client calls the API as Harbor's clients do.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
	user string
	pass string
	csrf string
}

func newClient(t testing.TB, srv *harbortest.Server, user, pass string) *client {
	return &client{t: t, base: srv.URL, hc: http.DefaultClient, user: user, pass: pass}
}

// do sends a request with a JSON body (nil: none) and returns the status
// and the body.
func (c *client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if c.csrf != "" {
		req.Header.Set("X-Harbor-CSRF-Token", c.csrf)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if tok := resp.Header.Get("X-Harbor-CSRF-Token"); tok != "" {
		c.csrf = tok
	}
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// must calls and fails the test unless the status is want.
func (c *client) must(want int, method, path string, body any) []byte {
	c.t.Helper()
	st, out := c.do(method, path, body)
	if st != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, st, out, want)
	}
	return out
}

// token asks the token service for scope with basic credentials and
// returns the status and the actions granted.
func token(t testing.TB, srv *harbortest.Server, user, pass, scope string) (int, []string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/service/token?service=harbor-registry&scope="+scope, nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil, string(b)
	}
	var tr struct{ Token string }
	json.Unmarshal(b, &tr)
	cl, err := srv.Core.Tokens.Verify(tr.Token)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, a := range cl.Access {
		acts = append(acts, a.Actions...)
	}
	return 200, acts, ""
}

func writeCA(t testing.TB, pem []byte) string {
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// runJob enqueues a job of kind and waits for it to finish.
func runJob(t testing.TB, srv *harbortest.Server, kind string) jobs.Info {
	t.Helper()
	ctx := context.Background()
	id, _, err := srv.Core.Jobs.Enqueue(ctx, jobs.Request{Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		info, err := srv.Core.Jobs.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if jobs.Finished(info.State) {
			return info
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish within a minute", kind)
	return jobs.Info{}
}
