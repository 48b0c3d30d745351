package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
)

// Cookie and field names. SessionCookie and CSRFHeader are the Harbor
// core's (package api), so that one login serves the UI and the API.
const (
	SessionCookie = "sid"
	CSRFHeader    = "X-Harbor-CSRF-Token"
	CSRFField     = "_csrf"
	// preCookie holds the double-submit token of forms posted without a
	// session (the login form).
	preCookie   = "lading_csrf"
	flashCookie = "lading_flash"
)

// errCSRF refuses an unsafe request without the right token.
var errCSRF = errdefs.Denied(errors.New("the form's CSRF token is missing or wrong; reload the page and try again"))

// authenticate sets the caller from the session cookie; without one (or
// with an expired one) the caller is anonymous.
func (s *Server) authenticate(c *call) error {
	if s.opt.NoAuth {
		c.who = access.Subject{Kind: access.KindUser, ID: identity.AdminID, Name: "admin", SysAdmin: true, Address: c.r.RemoteAddr}
		c.csrf = s.preToken(c)
		return nil
	}
	c.who = access.Subject{Address: c.r.RemoteAddr}
	if ck, err := c.r.Cookie(SessionCookie); err == nil && ck.Value != "" {
		who, sess, err := s.svc.Identity.Session(c.ctx, ck.Value)
		switch {
		case err == nil:
			who.Address = c.r.RemoteAddr
			c.who, c.csrf, c.session = who, sess.CSRF, true
			return nil
		case errdefs.IsUnauthorized(err):
			// Expired or unknown: forget it.
			http.SetCookie(c.w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.r.TLS != nil, SameSite: http.SameSiteLaxMode})
		default:
			return err
		}
	}
	c.csrf = s.preToken(c)
	return nil
}

// preToken returns the double-submit token of a caller without a session,
// setting the cookie when there is none.
func (s *Server) preToken(c *call) string {
	if ck, err := c.r.Cookie(preCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(c.w, &http.Cookie{Name: preCookie, Value: tok, Path: "/", HttpOnly: true, Secure: c.r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return tok
}

// checkCSRF refuses an unsafe request that does not carry the caller's
// token (form field or header) or that comes from another origin.
func (s *Server) checkCSRF(c *call) error {
	switch c.r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if o := c.r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != c.r.Host {
			return errdefs.Denied(errors.New("cross-origin form posts are refused"))
		}
	}
	if err := c.r.ParseForm(); err != nil {
		return errdefs.InvalidArgument(errors.New("the form could not be read"))
	}
	got := c.r.Header.Get(CSRFHeader)
	if got == "" {
		got = c.r.PostForm.Get(CSRFField)
	}
	if c.csrf == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.csrf)) != 1 {
		return errCSRF
	}
	return nil
}

func (s *Server) loginPage(c *call) error {
	if c.who.Authenticated() && !s.opt.NoAuth {
		return c.redirect(safeNext(c.r.URL.Query().Get("next")))
	}
	return s.renderLogin(c, http.StatusOK, "", c.r.URL.Query().Get("next"))
}

func (s *Server) renderLogin(c *call, status int, msg, next string) error {
	st, err := s.svc.Settings.Get(c.ctx)
	if err != nil {
		return err
	}
	oidcName, _ := st.Values["oidc_name"].(string)
	return c.render(status, "login", "Log in", map[string]any{
		"Error": msg, "Next": safeNext(next), "OIDC": st.AuthMode == "oidc_auth", "OIDCName": oidcName,
		"LDAP": st.AuthMode == "ldap_auth",
	})
}

// login checks the credentials with identity (database or LDAP users, as
// auth_mode says), opens a session and goes where the user was going.
func (s *Server) login(c *call) error {
	next := c.r.PostForm.Get("next")
	who, err := s.svc.Identity.Login(c.ctx, c.r.PostForm.Get("principal"), c.r.PostForm.Get("password"), c.r.RemoteAddr, true)
	var throttled *identity.ThrottledError
	switch {
	case errors.As(err, &throttled):
		return s.renderLogin(c, http.StatusTooManyRequests, throttled.Error(), next)
	case errdefs.IsUnauthorized(err):
		return s.renderLogin(c, http.StatusUnauthorized, "Invalid user name or password.", next)
	case err != nil:
		return err
	}
	sess, err := s.svc.Identity.StartSession(c.ctx, who)
	if err != nil {
		return err
	}
	http.SetCookie(c.w, &http.Cookie{Name: SessionCookie, Value: sess.Token, Path: "/", HttpOnly: true, Secure: c.r.TLS != nil,
		SameSite: http.SameSiteLaxMode, Expires: sess.Expires})
	return c.redirect(safeNext(next))
}

// logout ends the session on the server and forgets the cookie.
func (s *Server) logout(c *call) error {
	if ck, err := c.r.Cookie(SessionCookie); err == nil && c.session {
		if err := s.svc.Identity.EndSession(c.ctx, ck.Value); err != nil {
			return err
		}
	}
	http.SetCookie(c.w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.r.TLS != nil, SameSite: http.SameSiteLaxMode})
	return c.redirect("/login")
}

// safeNext keeps a post-login destination on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/projects"
	}
	return next
}

// redirect answers a POST or GET with "see other" (the UI's script
// follows redirects as a browser does).
func (c *call) redirect(to string) error {
	http.Redirect(c.w, c.r, to, http.StatusSeeOther)
	return nil
}

// flash leaves a message for the next page.
func (c *call) flash(msg string) {
	http.SetCookie(c.w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: "/", MaxAge: 60, HttpOnly: true,
		Secure: c.r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// takeFlash reads and clears the message left for this page.
func (c *call) takeFlash() string {
	ck, err := c.r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(c.w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.r.TLS != nil, SameSite: http.SameSiteLaxMode})
	msg, _ := url.QueryUnescape(ck.Value)
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return msg
}
