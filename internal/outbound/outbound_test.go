package outbound_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/outbound"
)

func TestClass(t *testing.T) {
	for _, tc := range []struct {
		addr, class string
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"fc00::1", "private (unique local)"},
		{"fd12:3456::1", "private (unique local)"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"169.254.169.254", "cloud metadata"},
		{"fd00:ec2::254", "cloud metadata"},
		{"100.100.100.200", "cloud metadata"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"64:ff9b::a9fe:a9fe", "cloud metadata"}, // NAT64 of 169.254.169.254
		{"2002:7f00:1::1", "loopback"},           // 6to4 of 127.0.0.1
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "reserved"},
		{"100.64.0.1", "reserved"},
		{"255.255.255.255", "reserved"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"8.8.8.8", ""},
		{"172.32.0.1", ""},
		{"2606:4700::1111", ""},
	} {
		if got := outbound.Class(netip.MustParseAddr(tc.addr)); got != tc.class {
			t.Errorf("Class(%s) = %q, want %q", tc.addr, got, tc.class)
		}
	}
}

func TestAllow(t *testing.T) {
	p, err := outbound.Parse([]string{"127.0.0.0/8", "fd00:ec2::254", " 10.0.0.0/8 "})
	if err != nil {
		t.Fatal(err)
	}
	for addr, ok := range map[string]bool{
		"127.0.0.1": true, "::ffff:127.0.0.2": true, "fd00:ec2::254": true, "10.9.9.9": true,
		"::1": false, "169.254.169.254": false, "192.168.0.1": false, "1.1.1.1": true,
	} {
		err := p.Check(netip.MustParseAddr(addr))
		if (err == nil) != ok {
			t.Errorf("Check(%s) = %v, want allowed=%v", addr, err, ok)
		}
		var re *outbound.RefusedError
		if err != nil && (!errors.As(err, &re) || !errors.Is(err, errdefs.ErrDenied)) {
			t.Errorf("Check(%s): error %T is not a denied RefusedError", addr, err)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "nonsense", "10.0.0.0/8/8"} {
		if _, err := outbound.Parse([]string{bad}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Parse(%q) = %v, want invalid argument", bad, err)
		}
	}
}

// TestConnectTime dials real listeners: the refusal happens when the
// connection is made, on the resolved address, for names and redirects
// alike.
func TestConnectTime(t *testing.T) {
	final := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer final.Close()
	port := final.URL[strings.LastIndex(final.URL, ":")+1:]
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Linux routes all of 127/8 to the loopback device, so 127.0.0.2
		// would connect; the policy must refuse it first.
		http.Redirect(w, r, "http://127.0.0.2:"+port+"/", http.StatusFound)
	}))
	defer redirect.Close()
	ctx := context.Background()

	refused := outbound.New().Client(outbound.ClientOptions{Timeout: 5 * time.Second})
	for _, u := range []string{final.URL, strings.Replace(final.URL, "127.0.0.1", "localhost", 1)} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		_, err := refused.Do(req)
		var re *outbound.RefusedError
		if !errors.As(err, &re) || re.Class != "loopback" {
			t.Errorf("GET %s without allowing loopback: %v, want a loopback refusal", u, err)
		}
	}

	one, _ := outbound.Parse([]string{"127.0.0.1/32"})
	c := one.Client(outbound.ClientOptions{Timeout: 5 * time.Second})
	resp, err := c.Get(final.URL)
	if err != nil {
		t.Fatalf("GET allowed loopback: %v", err)
	}
	resp.Body.Close()
	_, err = c.Get(redirect.URL)
	var re *outbound.RefusedError
	if !errors.As(err, &re) || re.Addr != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("redirect to 127.0.0.2: %v, want it refused at connect", err)
	}
}

func TestTimeout(t *testing.T) {
	block := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer hang.Close()
	defer close(block)
	p, _ := outbound.Parse([]string{"127.0.0.0/8"})
	c := p.Client(outbound.ClientOptions{Timeout: 200 * time.Millisecond})
	_, err := c.Get(hang.URL)
	if err == nil || !strings.Contains(err.Error(), "Timeout") && !strings.Contains(err.Error(), "timeout") {
		t.Errorf("GET of a hanging server: %v, want a timeout", err)
	}
}

func TestCheckURL(t *testing.T) {
	p := outbound.New()
	for _, tc := range []struct {
		url, want string // want: "" ok, else a part of the error
	}{
		{"https://hooks.example.com/x?y=1", ""},
		{"http://hooks.example.com:8080/x#frag", ""},
		{"ftp://example.com/", "scheme"},
		{"file:///etc/passwd", "scheme"},
		{"gopher://example.com:70/", "scheme"},
		{"javascript:alert(1)", "scheme"},
		{"http://user:secret@example.com/", "credentials"},
		{"http:///path", "host"},
		{"http://example.com:99999/", "port"},
		{"http://127.0.0.1/", "loopback"},
		{"http://[::1]:80/", "loopback"},
		{"http://localhost:5000/", "loopback"},
		{"http://api.localhost/", "loopback"},
		{"http://169.254.169.254/latest/meta-data/", "cloud metadata"},
		{"http://[fd00:ec2::254]/", "cloud metadata"},
		{"http://[::ffff:10.0.0.1]/", "private"},
		{"http://192.168.0.10/", "private"},
		{"http://0.0.0.0:80/", "unspecified"},
		{"http://example.com/\r\nX-Evil: 1", "control"},
		{"http://" + strings.Repeat("a", 3000) + ".com/", "long"},
	} {
		u, err := p.CheckURL(tc.url)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckURL(%.60q) = %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errdefs.IsInvalidArgument(err)):
			t.Errorf("CheckURL(%.60q) = %v, want an invalid-argument error about %q", tc.url, err, tc.want)
		case err == nil && u.Fragment != "":
			t.Errorf("CheckURL(%q) kept the fragment", tc.url)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("CheckURL(%q) error shows the password: %v", tc.url, err)
		}
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1/", "https://a.b/c", "http://[::ffff:1.2.3.4]:1/", "%", "http://[fe80::1%25eth0]/"} {
		f.Add(s)
	}
	p := outbound.New()
	f.Fuzz(func(t *testing.T, s string) {
		u, err := p.CheckURL(s)
		if err == nil {
			if u.Scheme != "http" && u.Scheme != "https" || u.User != nil {
				t.Fatalf("accepted %q", s)
			}
			if a, err := netip.ParseAddr(u.Hostname()); err == nil && outbound.Class(a) != "" {
				t.Fatalf("accepted %q, a %s address", s, outbound.Class(a))
			}
		}
	})
}
