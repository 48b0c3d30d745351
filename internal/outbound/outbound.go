// Package outbound is the one gate for every connection lading opens to a
// target that a user named: webhook receivers now, replication endpoints,
// proxy-cache upstreams and external scanners as they come. A registry
// that connects wherever a project administrator points it is a way into
// the network behind it (the cloud's metadata service, the database, the
// admin consoles on loopback), so connections to these are refused:
//
//	loopback           127.0.0.0/8, ::1
//	private            10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7 (ULA)
//	link-local         169.254.0.0/16, fe80::/10
//	cloud metadata     169.254.169.254, fd00:ec2::254, 100.100.100.200
//	shared/reserved    0.0.0.0/8, 100.64.0.0/10, 192.0.0.0/24, 198.18.0.0/15,
//	                   240.0.0.0/4, multicast, broadcast, unspecified
//
// unless the administrator allows them: Policy.Allow takes CIDR prefixes
// (lading serve --allow-outbound CIDR, config outbound.allow), and an
// address inside any of them is allowed whatever its class. IPv4 addresses
// written in IPv6 (::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are
// judged as the IPv4 address they carry.
//
// The check happens when the connection is made, on the address the
// dialer is about to connect to (net.Dialer.Control), after name
// resolution: a name that resolves to a public address when a policy is
// saved and to 127.0.0.1 when it is used (DNS rebinding) is refused all
// the same, and so is every redirect hop. Clients built here use no proxy
// from the environment, which would connect on the caller's behalf.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Class names why an address is refused; "" for a public address.
func Class(a netip.Addr) string {
	a = embedded(a.Unmap())
	switch {
	case metadata[a]:
		return "cloud metadata"
	case a.IsLoopback():
		return "loopback"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsPrivate():
		if a.Is6() {
			return "private (unique local)"
		}
		return "private"
	case a.IsMulticast():
		return "multicast"
	case a.IsLinkLocalUnicast():
		return "link-local"
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return "reserved"
		}
	}
	return ""
}

// metadata are the cloud providers' instance metadata services.
var metadata = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true, // AWS, GCP, Azure, OpenStack...
	netip.MustParseAddr("fd00:ec2::254"):   true, // AWS over IPv6
	netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	netip.MustParseAddr("169.254.170.2"):   true, // AWS ECS task metadata
}

// reserved are ranges that are neither public nor covered by netip's
// predicates.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"; 0.0.0.0 reaches the local host
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, cloud internal networks
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// embedded returns the IPv4 address an IPv6 address carries (NAT64, 6to4),
// or a itself.
func embedded(a netip.Addr) netip.Addr {
	if !a.Is6() {
		return a
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
	}
	return a
}

// Policy decides which addresses outbound connections may reach.
type Policy struct {
	allow []netip.Prefix
}

// New returns a policy that allows the public internet and the prefixes
// in allow.
func New(allow ...netip.Prefix) *Policy {
	return &Policy{allow: append([]netip.Prefix(nil), allow...)}
}

// Parse reads CIDR prefixes ("10.0.0.0/8", "::1/128"; a bare address is
// one host) into a policy, naming a bad entry in its error.
func Parse(allow []string) (*Policy, error) {
	var ps []netip.Prefix
	for _, s := range allow {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, errdefs.InvalidArgument(fmt.Errorf("outbound.allow %q: want a CIDR prefix such as 10.0.0.0/8 or fd00::/8", s))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		ps = append(ps, p.Masked())
	}
	return New(ps...), nil
}

// Allowed returns the prefixes the policy allows beyond the public
// internet.
func (p *Policy) Allowed() []netip.Prefix { return append([]netip.Prefix(nil), p.allow...) }

// RefusedError is the error for a connection the policy refuses. It is of
// class errdefs.ErrDenied.
type RefusedError struct {
	Addr  netip.Addr
	Class string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("outbound connection to %s refused: it is a %s address; an administrator can allow it with lading serve --allow-outbound %s (config outbound.allow)",
		e.Addr, e.Class, netip.PrefixFrom(e.Addr, e.Addr.BitLen()))
}

// Unwrap makes the error of class errdefs.ErrDenied.
func (e *RefusedError) Unwrap() error { return errdefs.ErrDenied }

// Check returns nil when a may be reached, else a *RefusedError.
func (p *Policy) Check(a netip.Addr) error {
	a = a.Unmap()
	if p != nil {
		for _, pre := range p.allow {
			if pre.Contains(a) {
				return nil
			}
		}
	}
	if c := Class(a); c != "" {
		return &RefusedError{Addr: a, Class: c}
	}
	return nil
}

// control is the dialer's last word before connecting: address is the
// resolved ip:port.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound: unexpected address %q: %w", address, err)
	}
	return p.Check(ap.Addr())
}

// Dialer returns a dialer that refuses what the policy refuses, at
// connect time.
func (p *Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
}

// ClientOptions configure an HTTP client.
type ClientOptions struct {
	// Timeout bounds a whole request, body included; default 30s.
	Timeout time.Duration
	// InsecureSkipVerify skips verifying the server's certificate.
	InsecureSkipVerify bool
	// RootCAs verify the server's certificate instead of the system's
	// roots (a private CA).
	RootCAs *x509.CertPool
	// NoRedirects makes a 3xx the response rather than followed.
	NoRedirects bool
}

// Client returns an HTTP client whose every connection (redirects
// included) the policy checks, with timeouts on each step so a target
// that hangs cannot hold a caller.
func (p *Policy) Client(o ClientOptions) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	dial := p.Dialer(min(o.Timeout, 10*time.Second))
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dial.DialContext,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}, //nolint:gosec // an administrator's choice per target
		TLSHandshakeTimeout:    min(o.Timeout, 10*time.Second),
		ResponseHeaderTimeout:  o.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	c := &http.Client{Transport: tr, Timeout: o.Timeout}
	if o.NoRedirects {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// MaxURL bounds the length of a target URL.
const MaxURL = 2048

// CheckURL validates a target URL as it is saved (a webhook address, a
// registry endpoint): http or https, a host, no credentials, no fragment,
// and, when the host is an address, one the policy allows. Names are
// resolved only at connect time, where the policy is enforced; CheckURL is
// the early, clear refusal. It returns the URL normalized.
func (p *Policy) CheckURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURL {
		return nil, errdefs.InvalidArgument(fmt.Errorf("address is %d bytes long; at most %d", len(raw), MaxURL))
	}
	if strings.ContainsAny(raw, " \t\r\n\x00") {
		return nil, errdefs.InvalidArgument(errors.New("address contains white space or control characters"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("address %q: %v", raw, err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errdefs.InvalidArgument(fmt.Errorf("address %q: the scheme must be http or https", redact(u)))
	}
	if u.User != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("address %q: credentials in the URL are not allowed; use the auth header", redact(u)))
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, errdefs.InvalidArgument(fmt.Errorf("address %q: a host is required", raw))
	}
	if port := u.Port(); port != "" {
		var n int
		if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 {
			return nil, errdefs.InvalidArgument(fmt.Errorf("address %q: bad port %q", raw, port))
		}
	}
	u.Fragment, u.RawFragment = "", ""
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.Check(a); err != nil {
			return nil, errdefs.InvalidArgument(err)
		}
	} else if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if err := p.Check(netip.MustParseAddr("127.0.0.1")); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: %w", host, err))
		}
	}
	return u, nil
}

func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("xxxxx")
	}
	return c.String()
}

// Resolve checks, before a connection is attempted, what a name resolves
// to: every address must be allowed. Connections are checked at connect
// time all the same; this gives a caller (a "test connection" button) a
// clear answer early.
func (p *Policy) Resolve(ctx context.Context, host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(a)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return errdefs.Unavailable(fmt.Errorf("resolving %s: %w", host, err))
	}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}
