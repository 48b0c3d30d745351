package ldap

import (
	"net"
	"strconv"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// FuzzUserFilter: whatever the name, the user filter compiles to the
// administrator's filter AND one equality assertion on ldap_uid whose
// value is exactly the name: no character of it becomes filter syntax.
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"alice", "*", "a*", "alice)(uid=*", "*)(|(uid=*", `\`, "\x00", "(", ")", "ü", `o\2a`, "a\x00)(|(cn=*"} {
		f.Add(s)
	}
	cfg := Config{Filter: "(|(objectClass=person)(objectClass=inetOrgPerson))", UID: "uid"}.withDefaults()
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" {
			return
		}
		filter, err := userFilter(cfg, name)
		if err != nil {
			t.Fatalf("userFilter(%q): %v", name, err)
		}
		p, err := goldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("userFilter(%q) = %q does not compile: %v", name, filter, err)
		}
		if p.Tag != goldap.FilterAnd || len(p.Children) != 2 {
			t.Fatalf("userFilter(%q) = %q: not an AND of two", name, filter)
		}
		eq := p.Children[1]
		if eq.Tag != goldap.FilterEqualityMatch || len(eq.Children) != 2 {
			t.Fatalf("userFilter(%q) = %q: the second term is not an equality", name, filter)
		}
		if attr := eq.Children[0].Data.String(); attr != "uid" {
			t.Errorf("userFilter(%q): attribute %q", name, attr)
		}
		if v := eq.Children[1].Data.String(); v != name {
			t.Errorf("userFilter(%q): the assertion value is %q", name, v)
		}
	})
}

// FuzzParseURL: any ldap_url is parsed or refused, never a panic; what is
// accepted names a host and a port.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"ldap://h", "ldaps://h:636", "h:389", "h:636", "ldap://[::1]:1", "http://h", "ldap://u@h", "ldap://h/x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseURL(s)
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(e.addr)
		if n, perr := strconv.Atoi(port); err != nil || host != e.host || host == "" || perr != nil || n <= 0 || n > 65535 {
			t.Errorf("ParseURL(%q) = %+v", s, e)
		}
	})
}
