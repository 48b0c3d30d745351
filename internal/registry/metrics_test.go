package registry_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/registry"
)

// With authentication on, /metrics on the registry's port answers only a
// user of the htpasswd file (HTTP basic, also in token mode: Prometheus
// scrapes with static credentials); without authentication it is as open
// as the registry. WithoutMetricsRoute leaves it to another listener.
func TestMetricsAccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth *registry.AuthConfig
	}{
		{"basic", &registry.AuthConfig{}},
		{"token", &registry.AuthConfig{Token: &registry.TokenConfig{}}},
		{"anonymous read", &registry.AuthConfig{AnonymousRead: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := authRegistry(t, *tc.auth)
			r := tr.do(t, "GET", "/metrics", nil)
			want(t, "anonymous /metrics", r, http.StatusUnauthorized, "UNAUTHORIZED")
			if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Basic ") {
				t.Errorf("challenge %q", ch)
			}
			if strings.Contains(string(r.body), "lading_registry") {
				t.Error("metrics shown without credentials")
			}
			tr.user, tr.pass = "alice", "wrong"
			want(t, "wrong password", tr.do(t, "GET", "/metrics", nil), http.StatusUnauthorized, "UNAUTHORIZED")
			tr.user, tr.pass = "alice", "alice-pw"
			r = tr.do(t, "GET", "/metrics", nil)
			want(t, "user", r, http.StatusOK, "")
			if !strings.Contains(string(r.body), "lading_registry_http_requests_total") {
				t.Errorf("metrics: %.300s", r.body)
			}
		})
	}
	t.Run("open registry", func(t *testing.T) {
		tr := newRegistry(t)
		want(t, "/metrics", tr.do(t, "GET", "/metrics", nil), http.StatusOK, "")
	})
	t.Run("served elsewhere", func(t *testing.T) {
		tr := newRegistry(t, registry.WithoutMetricsRoute())
		r := tr.do(t, "GET", "/metrics", nil)
		want(t, "/metrics", r, http.StatusNotFound, "")
		if strings.Contains(string(r.body), "lading_registry") {
			t.Error("metrics on the registry's port")
		}
	})
}
