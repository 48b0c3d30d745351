package proxycache

import (
	"testing"

	"github.com/lading-dev/lading/internal/endpoint"
)

func TestUpstreamRepository(t *testing.T) {
	for _, c := range []struct {
		typ, rest, want string
	}{
		{endpoint.TypeDockerHub, "nginx", "library/nginx"},
		{endpoint.TypeDockerHub, "library/nginx", "library/nginx"},
		{endpoint.TypeDockerHub, "bitnami/redis", "bitnami/redis"},
		{endpoint.TypeDockerRegistry, "nginx", "nginx"},
		{endpoint.TypeHarbor, "nginx", "nginx"},
		{endpoint.TypeHarbor, "team/app/sub", "team/app/sub"},
	} {
		if got := upstreamRepository(c.typ, c.rest); got != c.want {
			t.Errorf("upstreamRepository(%q, %q) = %q, want %q", c.typ, c.rest, got, c.want)
		}
	}
}
