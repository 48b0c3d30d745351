package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/identity/ldap"
	"github.com/lading-dev/lading/internal/identity/oidc"
	"github.com/lading-dev/lading/internal/query"
)

// The external identities' endpoints: user groups, LDAP, OIDC.

// groupJSON is Harbor's UserGroup.
type groupJSON struct {
	ID          int64  `json:"id,omitempty"`
	GroupName   string `json:"group_name"`
	GroupType   int    `json:"group_type,omitempty"`
	LdapGroupDN string `json:"ldap_group_dn,omitempty"`
}

func toGroup(g identity.Group) groupJSON {
	j := groupJSON{ID: g.ID, GroupName: g.Name, GroupType: g.Type}
	if g.Type == identity.GroupLDAP {
		j.LdapGroupDN = g.ExternalID
	}
	return j
}

func (s *Server) listGroups(c *call) error {
	page, err := c.page()
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	var lq query.Query
	if name := q.Get("group_name"); name != "" {
		lq = lq.WithFuzzy("group_name", name)
	}
	if dn := q.Get("ldap_group_dn"); dn != "" {
		if n, err := ldap.NormalizeDN(dn); err == nil {
			dn = n
		}
		lq = lq.With("ldap_group_dn", dn)
	}
	list, total, err := s.svc.Identity.ListGroups(c.ctx, c.who, lq, page)
	if err != nil {
		return err
	}
	out := make([]groupJSON, len(list))
	for i, g := range list {
		out[i] = toGroup(g)
	}
	return c.list(page, total, out)
}

func (s *Server) searchGroups(c *call) error {
	page, err := c.page()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Identity.SearchGroups(c.ctx, c.who, c.r.URL.Query().Get("groupname"), page)
	if err != nil {
		return err
	}
	type item struct {
		ID        int64  `json:"id"`
		GroupName string `json:"group_name"`
		GroupType int    `json:"group_type"`
	}
	out := make([]item, len(list))
	for i, g := range list {
		out[i] = item{g.ID, g.Name, g.Type}
	}
	return c.list(page, total, out)
}

func (s *Server) createGroup(c *call) error {
	var req groupJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	g, err := s.svc.Identity.CreateGroup(c.ctx, c.who, identity.GroupCreate{Name: req.GroupName, Type: req.GroupType, LdapDN: req.LdapGroupDN})
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(g.ID, 10))
}

func (s *Server) getGroup(c *call) error {
	id, err := c.id("group_id")
	if err != nil {
		return err
	}
	g, err := s.svc.Identity.GetGroup(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toGroup(g))
}

func (s *Server) updateGroup(c *call) error {
	id, err := c.id("group_id")
	if err != nil {
		return err
	}
	var req groupJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Identity.UpdateGroup(c.ctx, c.who, id, req.GroupName); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteGroup(c *call) error {
	id, err := c.id("group_id")
	if err != nil {
		return err
	}
	if err := s.svc.Identity.DeleteGroup(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

// ldapAdmin is the LDAP service, or the error saying there is none.
func (s *Server) ldapAdmin() (*ldap.Admin, error) {
	if s.svc.LDAP == nil {
		return nil, errdefs.FailedPrecondition(errors.New("LDAP is not available in this server"))
	}
	return s.svc.LDAP, nil
}

// ldapPing tries an LDAP configuration: the stored one, changed by the
// fields of the body (Harbor's LdapConf). It answers 200 with success
// and, on failure, what is wrong.
func (s *Server) ldapPing(c *call) error {
	l, err := s.ldapAdmin()
	if err != nil {
		return err
	}
	var req struct {
		URL        *string `json:"ldap_url"`
		SearchDN   *string `json:"ldap_search_dn"`
		Password   *string `json:"ldap_search_password"`
		BaseDN     *string `json:"ldap_base_dn"`
		Filter     *string `json:"ldap_filter"`
		UID        *string `json:"ldap_uid"`
		Scope      *int    `json:"ldap_scope"`
		Timeout    *int64  `json:"ldap_connection_timeout"`
		VerifyCert *bool   `json:"ldap_verify_cert"`
	}
	if c.r.ContentLength != 0 {
		if err := c.decode(&req); err != nil {
			return err
		}
	}
	err = l.Ping(c.ctx, c.who, func(cfg *ldap.Config) {
		set(&cfg.URL, req.URL)
		set(&cfg.SearchDN, req.SearchDN)
		set(&cfg.SearchPassword, req.Password)
		set(&cfg.BaseDN, req.BaseDN)
		set(&cfg.Filter, req.Filter)
		set(&cfg.UID, req.UID)
		set(&cfg.Scope, req.Scope)
		set(&cfg.VerifyCert, req.VerifyCert)
		if req.Timeout != nil && *req.Timeout > 0 && *req.Timeout <= 300 {
			cfg.Timeout = time.Duration(*req.Timeout) * time.Second
		}
	})
	if errdefs.IsUnauthorized(err) || errors.Is(err, errdefs.ErrDenied) {
		return err
	}
	ok, msg := ldap.PingMessage(err)
	return c.json(http.StatusOK, struct {
		Success bool   `json:"success"`
		Message string `json:"message,omitempty"`
	}{ok, msg})
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) ldapSearchUsers(c *call) error {
	l, err := s.ldapAdmin()
	if err != nil {
		return err
	}
	users, err := l.SearchUsers(c.ctx, c.who, c.r.URL.Query().Get("username"))
	if err != nil {
		return err
	}
	type item struct {
		Username string `json:"username"`
		Realname string `json:"realname"`
		Email    string `json:"email"`
	}
	out := make([]item, len(users))
	for i, u := range users {
		out[i] = item{u.Username, u.Realname, u.Email}
	}
	return c.json(http.StatusOK, out)
}

// ldapImportUsers answers 200 when every user was imported, else 404
// with those that were not, as Harbor does.
func (s *Server) ldapImportUsers(c *call) error {
	l, err := s.ldapAdmin()
	if err != nil {
		return err
	}
	var req struct {
		UIDs []string `json:"ldap_uid_list"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if len(req.UIDs) > 1000 {
		return errdefs.InvalidArgument(errors.New("at most 1000 users at once"))
	}
	failed, err := l.ImportUsers(c.ctx, c.who, req.UIDs)
	if err != nil {
		return err
	}
	if len(failed) == 0 {
		return c.ok()
	}
	type item struct {
		UID   string `json:"uid"`
		Error string `json:"error"`
	}
	out := make([]item, len(failed))
	for i, f := range failed {
		out[i] = item{f.UID, f.Error}
	}
	return c.json(http.StatusNotFound, out)
}

func (s *Server) ldapSearchGroups(c *call) error {
	l, err := s.ldapAdmin()
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	groups, err := l.SearchGroups(c.ctx, c.who, q.Get("groupname"), q.Get("groupdn"))
	if err != nil {
		return err
	}
	out := make([]groupJSON, len(groups))
	for i, g := range groups {
		out[i] = groupJSON{GroupName: g.Name, LdapGroupDN: g.DN}
	}
	return c.json(http.StatusOK, out)
}

// oidcService is the OIDC service, or the error saying there is none.
func (s *Server) oidcService() (*oidc.Service, error) {
	if s.svc.OIDC == nil {
		return nil, errdefs.FailedPrecondition(errors.New("OIDC is not available in this server"))
	}
	return s.svc.OIDC, nil
}

func (s *Server) oidcPing(c *call) error {
	o, err := s.oidcService()
	if err != nil {
		return err
	}
	var req struct {
		URL        string `json:"url"`
		VerifyCert bool   `json:"verify_cert"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := o.Ping(c.ctx, c.who, req.URL, req.VerifyCert); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) setCLISecret(c *call) error {
	o, err := s.oidcService()
	if err != nil {
		return err
	}
	id, err := c.id("user_id")
	if err != nil {
		return err
	}
	var req struct {
		Secret string `json:"secret"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := o.SetCLISecret(c.ctx, c.who, id, req.Secret); err != nil {
		return err
	}
	return c.ok()
}

// The OIDC login's cookie: it binds a login in progress to the browser.
const oidcCookie = "lading_oidc"

// baseURL is lading's URL as the client reached it.
func (c *call) baseURL() string {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.r.Host
}

func (c *call) setOIDCCookie(value string, maxAge int) {
	http.SetCookie(c.w, &http.Cookie{Name: oidcCookie, Value: value, Path: "/c/oidc", MaxAge: maxAge, HttpOnly: true,
		Secure: c.r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// oidcLogin sends the browser to the provider.
func (s *Server) oidcLogin(c *call) error {
	o, err := s.oidcService()
	if err != nil {
		return err
	}
	to, cookie, err := o.Begin(c.ctx, c.baseURL(), c.r.URL.Query().Get("redirect_url"))
	if err != nil {
		return err
	}
	c.setOIDCCookie(cookie, 600)
	http.Redirect(c.w, c.r, to, http.StatusFound)
	return nil
}

// oidcCallback finishes a login: a session, or the onboarding page when
// the user must choose a name.
func (s *Server) oidcCallback(c *call) error {
	o, err := s.oidcService()
	if err != nil {
		return err
	}
	var cookie string
	if ck, err := c.r.Cookie(oidcCookie); err == nil {
		cookie = ck.Value
	}
	c.setOIDCCookie("", -1)
	res, err := o.Callback(c.ctx, c.baseURL(), cookie, c.r.URL.Query())
	if err != nil {
		return err
	}
	if res.Redirect == "" {
		res.Redirect = "/"
	}
	if res.Cookie != "" {
		c.setOIDCCookie(res.Cookie, 600)
		http.Redirect(c.w, c.r, "/oidc-onboard?username="+url.QueryEscape(res.Username)+"&redirect_url="+url.QueryEscape(res.Redirect), http.StatusFound)
		return nil
	}
	return s.startSession(c, res)
}

// oidcOnboard names a user whose login awaits a name.
func (s *Server) oidcOnboard(c *call) error {
	o, err := s.oidcService()
	if err != nil {
		return err
	}
	var req struct {
		Username string `json:"username"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	var cookie string
	if ck, err := c.r.Cookie(oidcCookie); err == nil {
		cookie = ck.Value
	}
	res, err := o.Onboard(c.ctx, cookie, req.Username)
	if err != nil {
		return err
	}
	c.setOIDCCookie("", -1)
	res.Redirect = ""
	return s.startSession(c, res)
}

// startSession opens the session of an OIDC login and redirects to where
// the login asked to go (200 when it named nowhere).
func (s *Server) startSession(c *call, res oidc.Result) error {
	res.Subject.Address = c.r.RemoteAddr
	sess, err := s.svc.Identity.StartSession(c.ctx, res.Subject)
	if err != nil {
		return err
	}
	http.SetCookie(c.w, &http.Cookie{Name: SessionCookie, Value: sess.Token, Path: "/", HttpOnly: true, Secure: c.r.TLS != nil, SameSite: http.SameSiteLaxMode, Expires: sess.Expires})
	c.w.Header().Set(CSRFHeader, sess.CSRF)
	if res.Redirect == "" {
		return c.ok()
	}
	http.Redirect(c.w, c.r, res.Redirect, http.StatusFound)
	return nil
}
