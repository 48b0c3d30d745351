package ldaptest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/ldaptest"
)

// TestServer checks the harness against OpenLDAP's own client: memberOf
// is maintained, TLS works on both ports with the test CA, AD-shaped
// accounts are searchable by sAMAccountName, a locked account cannot bind.
func TestServer(t *testing.T) {
	s := ldaptest.Start(t)
	s.AddUser(t, ldaptest.User{UID: "alice", Mail: "alice@example.org", Password: "alice-pw"})
	s.AddGroup(t, "devs", "alice")
	if out := s.Search(t, ldaptest.UserDN("alice"), "(objectClass=*)", "memberOf"); !strings.Contains(out, "memberOf: "+ldaptest.GroupDN("devs")) {
		t.Errorf("memberOf not maintained:\n%s", out)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CA.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-H", s.LDAPSURL}, {"-H", s.URL, "-ZZ"}} {
		cmd := exec.Command("ldapwhoami", append(args, "-x", "-D", ldaptest.UserDN("alice"), "-w", "alice-pw")...)
		cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+ca, "LDAPTLS_REQCERT=demand")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ldapwhoami %v: %v\n%s", args, err, out)
		}
	}
	s.AddUser(t, ldaptest.User{UID: "jdoe", Password: "jdoe-pw", AccountName: "John.Doe", AccountControl: ldaptest.DisabledAccount})
	if out := s.Search(t, ldaptest.PeopleDN, "(&(objectClass=user)(sAMAccountName=john.doe))", "userAccountControl"); !strings.Contains(out, "userAccountControl: 514") {
		t.Errorf("an AD-shaped account not found by its sAMAccountName:\n%s", out)
	}
	s.Lock(t, "alice")
	if out, err := exec.Command("ldapwhoami", "-x", "-H", s.URL, "-D", ldaptest.UserDN("alice"), "-w", "alice-pw").CombinedOutput(); err == nil {
		t.Errorf("a locked account could bind: %s", out)
	}
	s.Restart(t)
	if out := s.Search(t, ldaptest.GroupDN("devs"), "(objectClass=*)", "member"); !strings.Contains(out, ldaptest.UserDN("alice")) {
		t.Errorf("data lost across a restart:\n%s", out)
	}
}
