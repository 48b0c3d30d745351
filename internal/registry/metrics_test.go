package registry_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/registry"
)

// With a Gate, /metrics on the registry's port answers a system
// administrator's basic credentials (Prometheus scrapes with static
// credentials, not a token flow); without one it is as open as the
// registry. WithoutMetricsRoute leaves it to another listener.
func TestMetricsAccess(t *testing.T) {
	t.Run("gate", func(t *testing.T) {
		tr, _ := gated(t)
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
		want(t, "not an administrator", tr.do(t, "GET", "/metrics", nil), http.StatusForbidden, "DENIED")
		tr.user, tr.pass = "admin", "admin-pw"
		r = tr.do(t, "GET", "/metrics", nil)
		want(t, "administrator", r, http.StatusOK, "")
		if !strings.Contains(string(r.body), "lading_registry_http_requests_total") {
			t.Errorf("metrics: %.300s", r.body)
		}
	})
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
