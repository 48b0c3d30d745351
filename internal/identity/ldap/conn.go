package ldap

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
)

// pool keeps idle connections to one directory with one set of
// connection settings (key).
type pool struct {
	key  string
	idle chan *goldap.Conn
}

const idleConns = 8

func (p *pool) drain() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}

// poolKey identifies the connection settings a pooled connection was made
// with; the search password enters as a hash.
func poolKey(cfg Config, bound bool) string {
	h := sha256.Sum256([]byte(cfg.SearchPassword))
	return strings.Join([]string{cfg.URL, strconv.FormatBool(cfg.StartTLS), strconv.FormatBool(cfg.VerifyCert),
		strconv.FormatBool(bound), cfg.SearchDN, hex.EncodeToString(h[:8])}, "\x00")
}

// poolFor returns the pool of searches (bound) or of users' binds for
// cfg, replacing one made with other settings.
func (d *Directory) poolFor(cfg Config, bound bool) *pool {
	key := poolKey(cfg, bound)
	d.mu.Lock()
	defer d.mu.Unlock()
	slot := &d.bind
	if bound {
		slot = &d.search
	}
	if *slot == nil || (*slot).key != key {
		if *slot != nil {
			(*slot).drain()
		}
		*slot = &pool{key: key, idle: make(chan *goldap.Conn, idleConns)}
	}
	return *slot
}

// with runs fn on a connection of the search pool (bound: bound as the
// search DN) or of the bind pool. A pooled connection that the server
// closed meanwhile is replaced once, within the same deadline.
func (d *Directory) with(ctx context.Context, cfg Config, bound bool, fn func(*goldap.Conn) error) error {
	p := d.poolFor(cfg, bound)
	for attempt := 0; ; attempt++ {
		c, reused, err := d.get(ctx, cfg, p, bound)
		if err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok {
			c.SetTimeout(max(time.Until(dl), time.Millisecond))
		}
		err = fn(c)
		broken := isNetwork(err) || c.IsClosing()
		if broken {
			c.Close()
		} else {
			select {
			case p.idle <- c:
			default:
				c.Close()
			}
		}
		if broken && reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		if err != nil && isNetwork(err) {
			return d.unavailable(ctx, cfg, err)
		}
		return err
	}
}

// get takes an idle connection or dials one.
func (d *Directory) get(ctx context.Context, cfg Config, p *pool, bound bool) (*goldap.Conn, bool, error) {
	for {
		select {
		case c := <-p.idle:
			if c.IsClosing() {
				c.Close()
				continue
			}
			return c, true, nil
		default:
		}
		break
	}
	c, err := d.dial(ctx, cfg)
	if err != nil {
		return nil, false, err
	}
	if bound {
		if dl, ok := ctx.Deadline(); ok {
			c.SetTimeout(max(time.Until(dl), time.Millisecond))
		}
		if err := bindSearch(c, cfg); err != nil {
			c.Close()
			if isNetwork(err) {
				return nil, false, d.unavailable(ctx, cfg, err)
			}
			return nil, false, err
		}
	}
	return c, false, nil
}

// bindSearch binds as the search DN (anonymously when there is none).
func bindSearch(c *goldap.Conn, cfg Config) error {
	var err error
	if cfg.SearchDN == "" {
		err = c.UnauthenticatedBind("")
	} else {
		err = c.Bind(cfg.SearchDN, cfg.SearchPassword)
	}
	if err == nil {
		return nil
	}
	if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		return errdefs.FailedPrecondition(fmt.Errorf("the LDAP server refused the bind of the search DN %q: invalid credentials (check ldap_search_dn and ldap_search_password)", cfg.SearchDN))
	}
	if isNetwork(err) {
		return err
	}
	return errdefs.FailedPrecondition(fmt.Errorf("the LDAP server refused the bind of the search DN %q: %v", cfg.SearchDN, err))
}

// dial connects to the directory, with TLS as configured. Certificate
// problems come back as a *TLSError naming them.
func (d *Directory) dial(ctx context.Context, cfg Config) (*goldap.Conn, error) {
	e, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	var dialer net.Dialer
	raw, err := dialer.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return nil, unavailable(describeDial(e.addr, err))
	}
	tc, verr := d.tlsConfig(cfg, e.host)
	if e.tls {
		tconn := tls.Client(raw, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, tlsError(e.addr, *verr, err)
		}
		c := goldap.NewConn(tconn, true)
		c.Start()
		return c, nil
	}
	c := goldap.NewConn(raw, false)
	c.Start()
	if cfg.StartTLS {
		if dl, ok := ctx.Deadline(); ok {
			c.SetTimeout(max(time.Until(dl), time.Millisecond))
		}
		if err := c.StartTLS(tc); err != nil {
			c.Close()
			if *verr != nil || strings.Contains(err.Error(), "TLS handshake failed") {
				return nil, tlsError(e.addr, *verr, err)
			}
			return nil, unavailable(fmt.Errorf("StartTLS with the LDAP server at %s failed: %w", e.addr, err))
		}
	}
	return c, nil
}

// tlsConfig verifies the server's certificate itself (unless
// ldap_verify_cert is off) so that the verification error keeps its type
// for the message, which go-ldap's StartTLS would flatten.
func (d *Directory) tlsConfig(cfg Config, host string) (*tls.Config, *error) {
	verr := new(error)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	if !cfg.VerifyCert {
		return tc, verr
	}
	roots := d.roots
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), DNSName: host}
		if len(cs.PeerCertificates) == 0 {
			*verr = errors.New("the server sent no certificate")
			return *verr
		}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		if err != nil && roots != nil {
			// Roots given: the system's count too.
			if sys, serr := x509.SystemCertPool(); serr == nil {
				opts.Roots = sys
				if _, err2 := cs.PeerCertificates[0].Verify(opts); err2 == nil {
					err = nil
				}
			}
		}
		*verr = err
		return err
	}
	return tc, verr
}

// TLSError is a failed TLS handshake with the directory; Problem names the
// certificate problem when there is one.
type TLSError struct {
	Addr    string
	Problem string
	Err     error
}

func (e *TLSError) Error() string {
	if e.Problem != "" {
		return fmt.Sprintf("TLS handshake with the LDAP server at %s failed: %s (%v)", e.Addr, e.Problem, e.Err)
	}
	return fmt.Sprintf("TLS handshake with the LDAP server at %s failed: %v", e.Addr, e.Err)
}

// Unwrap makes a TLSError of class errdefs.ErrUnavailable.
func (e *TLSError) Unwrap() []error { return []error{e.Err, errdefs.ErrUnavailable} }

// Public: the caller is told the certificate problem.
func (e *TLSError) Public() bool { return true }

func tlsError(addr string, verr, err error) error {
	cause := err
	if verr != nil {
		cause = verr
	}
	e := &TLSError{Addr: addr, Err: cause}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(cause, &ua):
		e.Problem = "the server's certificate is signed by an unknown authority (trust its CA, or turn ldap_verify_cert off)"
	case errors.As(cause, &he):
		e.Problem = "the server's certificate is not valid for the host name " + he.Host
	case errors.As(cause, &ci) && ci.Reason == x509.Expired:
		e.Problem = "the server's certificate has expired or is not yet valid"
	case errors.As(cause, &ci):
		e.Problem = "the server's certificate is invalid: " + ci.Error()
	case verr != nil:
		e.Problem = "the server's certificate could not be verified"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Problem = "the server did not answer the handshake in time (ldap_timeout)"
	case strings.Contains(err.Error(), "first record does not look like a TLS handshake"), errors.Is(err, io.EOF):
		e.Problem = "the server does not speak TLS on this port (use ldap://, with ldap_start_tls for TLS)"
	}
	return e
}

// describeDial names why the directory could not be reached.
func describeDial(addr string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Errorf("the LDAP server at %s did not answer in time (ldap_timeout): %w", addr, err)
	case strings.Contains(err.Error(), "connection refused"):
		return fmt.Errorf("cannot reach the LDAP server at %s: connection refused", addr)
	}
	return fmt.Errorf("cannot reach the LDAP server at %s: %w", addr, err)
}

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isNetwork reports a transport failure (as opposed to an LDAP result).
func isNetwork(err error) bool {
	return err != nil && goldap.IsErrorWithCode(err, goldap.ErrorNetwork)
}

// unavailable classes a transport failure during a call.
func (d *Directory) unavailable(ctx context.Context, cfg Config, err error) error {
	var classed interface{ Unwrap() []error }
	if errors.As(err, &classed) && errors.Is(err, errdefs.ErrUnavailable) {
		return err
	}
	e, _ := ParseURL(cfg.URL)
	if ctx.Err() != nil || strings.Contains(err.Error(), "timed out") {
		return unavailable(fmt.Errorf("the LDAP server at %s did not answer within %s (ldap_timeout)", e.addr, cfg.Timeout))
	}
	return unavailable(fmt.Errorf("the connection to the LDAP server at %s failed: %w", e.addr, err))
}

// unavailable is a directory that cannot answer, said to the caller (an
// administrator's search, a login's client): the reason names the server
// and what failed, never a password.
func unavailable(err error) error { return &identity.UnavailableError{Source: "ldap", Err: err} }
