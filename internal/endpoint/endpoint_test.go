package endpoint

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/outbound"
)

func TestCheck(t *testing.T) {
	loopback := outbound.New(netip.MustParsePrefix("127.0.0.0/8"))
	for _, c := range []struct {
		name   string
		policy *outbound.Policy
		in     Endpoint
		want   Endpoint // when ok
		err    error    // the class, when not
	}{
		{"docker hub defaults", outbound.New(), Endpoint{Type: TypeDockerHub}, Endpoint{Type: TypeDockerHub, URL: DockerHubURL}, nil},
		{"hub's web address", outbound.New(), Endpoint{Type: TypeDockerHub, URL: "https://hub.docker.com/"}, Endpoint{Type: TypeDockerHub, URL: DockerHubURL}, nil},
		{"trailing slash", loopback, Endpoint{Type: TypeHarbor, URL: "http://127.0.0.1:8080/"}, Endpoint{Type: TypeHarbor, URL: "http://127.0.0.1:8080"}, nil},
		{"basic implied", loopback, Endpoint{Type: TypeDockerRegistry, URL: "http://127.0.0.1:5000", Credential: Credential{AccessKey: "u", AccessSecret: "p"}},
			Endpoint{Type: TypeDockerRegistry, URL: "http://127.0.0.1:5000", Credential: Credential{Type: CredentialBasic, AccessKey: "u", AccessSecret: "p"}}, nil},
		{"unknown type", loopback, Endpoint{Type: "quay", URL: "http://127.0.0.1"}, Endpoint{}, errdefs.ErrInvalidArgument},
		{"no URL", loopback, Endpoint{Type: TypeHarbor}, Endpoint{}, errdefs.ErrInvalidArgument},
		{"loopback refused", outbound.New(), Endpoint{Type: TypeHarbor, URL: "http://127.0.0.1:8080"}, Endpoint{}, errdefs.ErrDenied},
		{"metadata refused", outbound.New(), Endpoint{Type: TypeHarbor, URL: "http://169.254.169.254"}, Endpoint{}, errdefs.ErrDenied},
		{"a path", loopback, Endpoint{Type: TypeHarbor, URL: "http://127.0.0.1/v2/"}, Endpoint{}, errdefs.ErrInvalidArgument},
		{"a query", loopback, Endpoint{Type: TypeHarbor, URL: "http://127.0.0.1?x=1"}, Endpoint{}, errdefs.ErrInvalidArgument},
		{"bad credential type", loopback, Endpoint{Type: TypeHarbor, URL: "http://127.0.0.1", Credential: Credential{Type: "kerberos"}}, Endpoint{}, errdefs.ErrInvalidArgument},
		{"colon in access key", loopback, Endpoint{Type: TypeHarbor, URL: "http://127.0.0.1", Credential: Credential{AccessKey: "a:b"}}, Endpoint{}, errdefs.ErrInvalidArgument},
		{"newline in secret", loopback, Endpoint{Type: TypeHarbor, URL: "http://127.0.0.1", Credential: Credential{AccessKey: "a", AccessSecret: "x\r\nHost: evil"}}, Endpoint{}, errdefs.ErrInvalidArgument},
		{"bad CA", loopback, Endpoint{Type: TypeHarbor, URL: "https://127.0.0.1", CACertificate: "not pem"}, Endpoint{}, errdefs.ErrInvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := c.in
			err := e.Check(c.policy)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Check(%+v) = %v, want an error of class %v", c.in, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check(%+v): %v", c.in, err)
			}
			if d := cmp.Diff(c.want, e); d != "" {
				t.Errorf("Check normalized (-want +got):\n%s", d)
			}
		})
	}
}

// FuzzCheck: any endpoint is refused with an error or normalized into
// one that checks again unchanged; never a panic.
func FuzzCheck(f *testing.F) {
	f.Add("harbor", "http://127.0.0.1:8080/", "u", "p", "")
	f.Add("docker-registry", "https://[::1]:5000", "", "", "")
	f.Add("docker-hub", "", "a:b", "x", "-----BEGIN CERTIFICATE-----\n")
	policy := outbound.New(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	f.Fuzz(func(t *testing.T, typ, url, key, secret, ca string) {
		e := Endpoint{Type: typ, URL: url, Credential: Credential{AccessKey: key, AccessSecret: secret}, CACertificate: ca}
		if err := e.Check(policy); err != nil {
			return
		}
		again := e
		if err := again.Check(policy); err != nil {
			t.Fatalf("a checked endpoint %+v fails a second check: %v", e, err)
		}
		if d := cmp.Diff(e, again); d != "" {
			t.Fatalf("a second check changed the endpoint:\n%s", d)
		}
	})
}
