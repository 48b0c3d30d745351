package token

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIssueVerify(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	i := New("harbor-registry", key)
	access := []Access{{Type: "repository", Name: "p/app", Actions: []string{"pull"}}}
	tok, cl := i.Issue("alice", access, time.Minute)
	got, err := i.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cl, got); diff != "" || got.Subject != "alice" {
		t.Errorf("claims (-issued +verified):\n%s", diff)
	}
	parts := strings.Split(tok, ".")
	for name, bad := range map[string]string{
		"other key": func() string {
			s, _ := New("harbor-registry", []byte(strings.Repeat("x", 32))).Issue("alice", access, time.Minute)
			return s
		}(),
		"other service": func() string { s, _ := New("other", key).Issue("alice", access, time.Minute); return s }(),
		"alg none":      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
		"tampered":      parts[0] + "." + parts[1] + "x." + parts[2],
		"two parts":     parts[0] + "." + parts[1],
		"garbage":       "a.b.c",
		"huge":          strings.Repeat("a", 70<<10),
	} {
		if _, err := i.Verify(bad); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	i.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := i.Verify(tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Access
		bad  bool
	}{
		{in: "repository:p/app:pull,push", want: Access{Type: "repository", Name: "p/app", Actions: []string{"pull", "push"}}},
		{in: "repository:host:5000/p/app:pull", want: Access{Type: "repository", Name: "host:5000/p/app", Actions: []string{"pull"}}},
		{in: "registry:catalog:*", want: Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{in: "repository:p/app:pull,pull,", want: Access{Type: "repository", Name: "p/app", Actions: []string{"pull"}}},
		{in: "repository:p/app", bad: true},
		{in: ":x:pull", bad: true},
		{in: strings.Repeat("r", 2000), bad: true},
	} {
		got, err := ParseScope(tc.in)
		if tc.bad != (err != nil) {
			t.Errorf("%.30q: %v", tc.in, err)
			continue
		}
		if !tc.bad {
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%q (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

// FuzzVerify: no token makes Verify panic, and none but the issuer's
// verifies.
func FuzzVerify(f *testing.F) {
	i := New("harbor-registry", []byte(strings.Repeat("k", 32)))
	tok, _ := i.Issue("alice", nil, time.Minute)
	f.Add(tok)
	f.Add("a.b.c")
	f.Add(strings.SplitN(tok, ".", 2)[0] + ".e30.")
	f.Fuzz(func(t *testing.T, s string) {
		cl, err := i.Verify(s)
		if err == nil && s != tok {
			t.Fatalf("a token not issued verified: %q -> %+v", s, cl)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:p/app:pull", "registry:catalog:*", "a:b:c:d", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseScope(s)
		if err == nil && (a.Type == "" || a.Name == "") {
			t.Fatalf("%q parsed to %+v", s, a)
		}
	})
}
