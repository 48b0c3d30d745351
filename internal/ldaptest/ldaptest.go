// Package ldaptest runs a real OpenLDAP directory for tests: Debian's
// slapd, started by the test on 127.0.0.1 with a private cn=config and data
// directory under t.TempDir(), and filled with ldapmodify (ldap-utils), so
// that what the tests check comes from OpenLDAP, not from lading's client.
//
// The directory (suffix dc=example,dc=org) has:
//
//	cn=config             generated LDIF, loaded with slapadd -n 0
//	  modules             back_mdb, memberof, refint, ppolicy
//	  schema              core, cosine, nis, inetorgperson, and adshape:
//	                      Active Directory's sAMAccountName and
//	                      userAccountControl (with AD's OIDs) on an
//	                      auxiliary class user, so that entries can look
//	                      like AD's accounts (written here, not AD's schema)
//	  TLS                 a test CA (package testca) and a certificate for
//	                      127.0.0.1/localhost: ldaps on one port, StartTLS
//	                      on the plain one
//	  {1}mdb              dc=example,dc=org; rootdn cn=admin
//	    memberof          groupOfNames member <-> memberOf, kept by refint
//	    ppolicy           default policy with pwdLockout, so that
//	                      pwdAccountLockedTime 000001010000Z disables an
//	                      account (binds fail with invalidCredentials)
//	ou=people             users (inetOrgPerson, uid=NAME)
//	ou=groups             groups (groupOfNames, cn=NAME)
//	ou=services           cn=lading: the search account, read-only
//
// Access: a user may read the directory once bound; anonymous clients may
// only bind. When slapd or ldap-utils are missing the test is skipped
// (failed under LADING_CI=1) through package testenv.
package ldaptest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/testca"
	"github.com/lading-dev/lading/internal/testenv"
)

// Names in the test directory.
const (
	BaseDN         = "dc=example,dc=org"
	PeopleDN       = "ou=people," + BaseDN
	GroupsDN       = "ou=groups," + BaseDN
	AdminDN        = "cn=admin," + BaseDN
	AdminPassword  = "admin-secret"
	SearchDN       = "cn=lading,ou=services," + BaseDN
	SearchPassword = "lading-search-secret"
)

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:PORT (StartTLS is offered there);
	// LDAPSURL is ldaps://127.0.0.1:PORT2.
	URL, LDAPSURL string
	// CA signed the server's certificate.
	CA *testca.CA

	dir   string
	slapd string
	tools map[string]string

	mu      sync.Mutex
	cmd     *exec.Cmd
	stderr  *bytes.Buffer
	exited  chan struct{}
	stopped bool
}

// User is a directory user.
type User struct {
	UID, CN, Mail, Password string
	// AccountName, when set, makes the entry look like an Active
	// Directory account: objectClass user with this sAMAccountName.
	AccountName string
	// AccountControl, when not 0, is its userAccountControl (AD's
	// flags: 512 a normal account, 514 a disabled one).
	AccountControl int
}

// AD's userAccountControl values.
const (
	NormalAccount   = 512
	DisabledAccount = 514 // NORMAL_ACCOUNT | ACCOUNTDISABLE
)

// UserDN is the DN of user uid.
func UserDN(uid string) string { return "uid=" + escapeDN(uid) + "," + PeopleDN }

// GroupDN is the DN of group cn.
func GroupDN(cn string) string { return "cn=" + escapeDN(cn) + "," + GroupsDN }

// escapeDN escapes an attribute value for a DN (RFC 4514 2.4).
func escapeDN(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case strings.IndexByte(`\,+"<>;=`, c) >= 0, c == '#' && i == 0, c == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == 0:
			b.WriteString(`\00`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Start starts slapd with the base entries; it stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{dir: t.TempDir(), tools: map[string]string{}}
	s.slapd = testenv.Tool(t, "slapd", "slapd")
	slapadd := testenv.Tool(t, "slapadd", "slapd")
	for _, tool := range []string{"ldapmodify", "ldapsearch"} {
		s.tools[tool] = testenv.Tool(t, tool, "ldap-utils")
	}
	schemaDir := "/etc/ldap/schema"
	if _, err := os.Stat(filepath.Join(schemaDir, "inetorgperson.ldif")); err != nil {
		testenv.Skip(t, "OpenLDAP's schema LDIF files are not in %s (install slapd)", schemaDir)
	}
	moduleDir := "/usr/lib/ldap"
	if _, err := os.Stat(filepath.Join(moduleDir, "memberof.so")); err != nil {
		testenv.Skip(t, "OpenLDAP's overlay modules are not in %s (install slapd)", moduleDir)
	}
	s.CA = testca.New(t, "lading test LDAP CA")
	caFile, certFile, keyFile := s.CA.WriteFiles(t, s.dir, s.CA.Server(t))

	cfgDir, dataDir := filepath.Join(s.dir, "slapd.d"), filepath.Join(s.dir, "data")
	for _, d := range []string{cfgDir, dataDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ldif, err := configLDIF(schemaDir, moduleDir, dataDir, caFile, certFile, keyFile, filepath.Join(s.dir, "slapd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slapadd, "-n", "0", "-F", cfgDir)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("slapadd of the test configuration: %v\n%s", err, out)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if lastErr = s.start(cfgDir, "", ""); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	t.Cleanup(s.Stop)
	s.Modify(t, baseLDIF)
	return s
}

// start runs slapd on the given ports ("" for free ones) and waits until
// both accept connections.
func (s *Server) start(cfgDir, port, tlsPort string) error {
	if port == "" {
		port, tlsPort = freePort(), freePort()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.URL = "ldap://127.0.0.1:" + port
	s.LDAPSURL = "ldaps://127.0.0.1:" + tlsPort
	s.stderr = &bytes.Buffer{}
	s.cmd = exec.Command(s.slapd, "-F", cfgDir, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "0")
	s.cmd.Stderr = s.stderr
	s.cmd.Stdout = s.stderr
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting slapd: %w", err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func() { s.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range []string{port, tlsPort} {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				return fmt.Errorf("slapd exited at start: %s", s.stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				s.cmd.Process.Kill()
				<-exited
				return fmt.Errorf("slapd did not listen on port %s within 15s: %s", p, s.stderr.String())
			}
		}
	}
	s.stopped = false
	return nil
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "0"
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// Stop stops slapd (the directory goes down; Restart brings it back).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.stopped {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.stopped = true
}

// Restart starts a stopped slapd again on the same ports, with its data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "ldap://"))
	_, tlsPort, _ := net.SplitHostPort(strings.TrimPrefix(s.LDAPSURL, "ldaps://"))
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(filepath.Join(s.dir, "slapd.d"), port, tlsPort); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the old socket may linger
	}
	t.Fatal(err)
}

// Pause freezes slapd (SIGSTOP): connections are accepted by the kernel
// but never answered, as from a hung or overloaded directory. Resume
// thaws it; the test's end does too.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Resume() })
	// The signal is delivered asynchronously: wait until every thread of
	// slapd is stopped, so that no request sent after Pause is answered.
	deadline := time.Now().Add(10 * time.Second)
	for !allStopped(s.cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("slapd did not stop within 10s of SIGSTOP")
		}
		time.Sleep(time.Millisecond)
	}
}

// allStopped reports whether every thread of process pid is in the
// stopped state (T in /proc/PID/task/TID/stat).
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume thaws a paused slapd.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && !s.stopped {
		s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Modify applies LDIF change records (changetype: add, modify, delete...)
// with ldapmodify, bound as the directory's root.
func (s *Server) Modify(t testing.TB, ldif string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.tools["ldapmodify"], "-x", "-H", s.URL, "-D", AdminDN, "-w", AdminPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify: %v\n%s\nLDIF:\n%s", err, out, ldif)
	}
}

// Search runs ldapsearch as the root and returns its LDIF output, without
// line wrapping: what OpenLDAP itself says is there.
func (s *Server) Search(t testing.TB, base, filter string, attrs ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-x", "-LLL", "-o", "ldif-wrap=no", "-H", s.URL, "-D", AdminDN, "-w", AdminPassword, "-b", base, filter}, attrs...)
	out, err := exec.CommandContext(ctx, s.tools["ldapsearch"], args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch %s %s: %v\n%s", base, filter, err, out)
	}
	return string(out)
}

// AddUser adds a user under ou=people.
func (s *Server) AddUser(t testing.TB, u User) {
	t.Helper()
	cn := u.CN
	if cn == "" {
		cn = u.UID
	}
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n", UserDN(u.UID), u.UID, cn, cn)
	if u.Mail != "" {
		fmt.Fprintf(&b, "mail: %s\n", u.Mail)
	}
	if u.Password != "" {
		fmt.Fprintf(&b, "userPassword: %s\n", u.Password)
	}
	if u.AccountName != "" {
		fmt.Fprintf(&b, "objectClass: user\nsAMAccountName: %s\n", u.AccountName)
	}
	if u.AccountControl != 0 {
		fmt.Fprintf(&b, "userAccountControl: %d\n", u.AccountControl)
	}
	s.Modify(t, b.String())
}

// SetAccountControl sets an AD-shaped account's userAccountControl (only
// a flag here: slapd does not act on it, as AD would).
func (s *Server) SetAccountControl(t testing.TB, uid string, v int) {
	t.Helper()
	s.Modify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: %d\n", UserDN(uid), v))
}

// AddGroup adds a group under ou=groups with members (uids). A
// groupOfNames needs a member; an empty group holds the root's DN.
func (s *Server) AddGroup(t testing.TB, cn string, uids ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nchangetype: add\nobjectClass: groupOfNames\ncn: %s\n", GroupDN(cn), cn)
	if len(uids) == 0 {
		fmt.Fprintf(&b, "member: %s\n", AdminDN)
	}
	for _, u := range uids {
		fmt.Fprintf(&b, "member: %s\n", UserDN(u))
	}
	s.Modify(t, b.String())
}

// AddMember adds a user to a group.
func (s *Server) AddMember(t testing.TB, group, uid string) {
	t.Helper()
	s.Modify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nadd: member\nmember: %s\n", GroupDN(group), UserDN(uid)))
}

// RemoveMember removes a user from a group.
func (s *Server) RemoveMember(t testing.TB, group, uid string) {
	t.Helper()
	s.Modify(t, fmt.Sprintf("dn: %s\nchangetype: modify\ndelete: member\nmember: %s\n", GroupDN(group), UserDN(uid)))
}

// DeleteUser deletes a user (refint removes them from their groups).
func (s *Server) DeleteUser(t testing.TB, uid string) {
	t.Helper()
	s.Modify(t, fmt.Sprintf("dn: %s\nchangetype: delete\n", UserDN(uid)))
}

// Lock disables an account the way OpenLDAP's password policy does:
// binds as the user fail from now on.
func (s *Server) Lock(t testing.TB, uid string) {
	t.Helper()
	s.Modify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n", UserDN(uid)))
}

// SetPassword changes a user's password.
func (s *Server) SetPassword(t testing.TB, uid, password string) {
	t.Helper()
	s.Modify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n", UserDN(uid), password))
}

// baseLDIF is the tree's skeleton, the search account and the password
// policy.
var baseLDIF = `dn: ` + BaseDN + `
changetype: add
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ` + PeopleDN + `
changetype: add
objectClass: organizationalUnit
ou: people

dn: ` + GroupsDN + `
changetype: add
objectClass: organizationalUnit
ou: groups

dn: ou=services,` + BaseDN + `
changetype: add
objectClass: organizationalUnit
ou: services

dn: ` + SearchDN + `
changetype: add
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: lading
userPassword: ` + SearchPassword + `

dn: ou=policies,` + BaseDN + `
changetype: add
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,` + BaseDN + `
changetype: add
objectClass: applicationProcess
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
`

// adShapeSchema gives entries Active Directory's account attributes:
// the OIDs are AD's, the definitions this package's (an auxiliary class,
// OpenLDAP's matching rules).
const adShapeSchema = `dn: cn=adshape,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: adshape
olcAttributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcObjectClasses: ( 1.2.840.113556.1.5.9 NAME 'user' AUXILIARY MAY ( sAMAccountName $ userAccountControl ) )

`

// configLDIF is the cn=config tree.
func configLDIF(schemaDir, moduleDir, dataDir, caFile, certFile, keyFile, pidFile string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %s
olcTLSCACertificateFile: %s
olcTLSCertificateFile: %s
olcTLSCertificateKeyFile: %s

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: %s
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

`, pidFile, caFile, certFile, keyFile, moduleDir)
	for _, name := range []string{"core", "cosine", "nis", "inetorgperson"} {
		schema, err := os.ReadFile(filepath.Join(schemaDir, name+".ldif"))
		if err != nil {
			return "", err
		}
		for line := range strings.SplitSeq(string(schema), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString(adShapeSchema)
	fmt.Fprintf(&b, `dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: %s
olcRootDN: %s
olcRootPW: %s
olcDbDirectory: %s
olcDbMaxSize: 67108864
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,member eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by users read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {1}refint
olcRefintAttribute: memberof
olcRefintAttribute: member

dn: olcOverlay={2}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {2}ppolicy
olcPPolicyDefault: cn=default,ou=policies,%s
olcPPolicyUseLockout: TRUE
`, BaseDN, AdminDN, AdminPassword, dataDir, BaseDN)
	return b.String(), nil
}
