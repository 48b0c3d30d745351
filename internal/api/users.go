package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/identity/oidc"
)

// userJSON is Harbor's UserResp.
type userJSON struct {
	UserID          int64     `json:"user_id"`
	Username        string    `json:"username"`
	Email           string    `json:"email"`
	Realname        string    `json:"realname"`
	Comment         string    `json:"comment"`
	SysadminFlag    bool      `json:"sysadmin_flag"`
	AdminRoleInAuth bool      `json:"admin_role_in_auth"`
	CreationTime    time.Time `json:"creation_time"`
	UpdateTime      time.Time `json:"update_time"`
	OIDCUserMeta    *oidcMeta `json:"oidc_user_meta,omitempty"`
}

// oidcMeta is Harbor's OIDCUserInfo.
type oidcMeta struct {
	ID           int64     `json:"id"`
	UserID       int64     `json:"user_id"`
	SubIss       string    `json:"subiss"`
	Secret       string    `json:"secret,omitempty"`
	CreationTime time.Time `json:"creation_time"`
	UpdateTime   time.Time `json:"update_time"`
}

// withOIDC adds an OIDC user's record (the CLI secret for its owner only).
func (s *Server) withOIDC(c *call, j userJSON, u identity.User) (userJSON, error) {
	if s.svc.OIDC == nil || u.Source != oidc.Source {
		return j, nil
	}
	m, ok, err := s.svc.OIDC.MetaOf(c.ctx, c.who, u.ID)
	if err != nil || !ok {
		return j, err
	}
	j.OIDCUserMeta = &oidcMeta{ID: m.ID, UserID: m.UserID, SubIss: m.SubIss, Secret: m.Secret, CreationTime: m.Created.UTC(), UpdateTime: m.Updated.UTC()}
	return j, nil
}

func toUser(u identity.User) userJSON {
	return userJSON{UserID: u.ID, Username: u.Username, Email: u.Email, Realname: u.Realname, Comment: u.Comment,
		SysadminFlag: u.SysAdmin, CreationTime: u.Created.UTC(), UpdateTime: u.Updated.UTC()}
}

func (s *Server) listUsers(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	v := c.r.URL.Query()
	for _, k := range []string{"username", "email"} {
		if x := v.Get(k); x != "" {
			q = q.WithFuzzy(k, x)
		}
	}
	list, total, err := s.svc.Identity.ListUsers(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	out := make([]userJSON, len(list))
	for i, u := range list {
		out[i] = toUser(u)
	}
	return c.list(page, total, out)
}

func (s *Server) searchUsers(c *call) error {
	page, err := c.page()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Identity.SearchUsers(c.ctx, c.who, c.r.URL.Query().Get("username"), page)
	if err != nil {
		return err
	}
	type item struct {
		UserID   int64  `json:"user_id"`
		Username string `json:"username"`
	}
	out := make([]item, len(list))
	for i, u := range list {
		out[i] = item{u.ID, u.Username}
	}
	return c.list(page, total, out)
}

func (s *Server) createUser(c *call) error {
	var req struct {
		Username string `json:"username"`
		Email    string `json:"email"`
		Realname string `json:"realname"`
		Comment  string `json:"comment"`
		Password string `json:"password"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	u, err := s.svc.Identity.CreateUser(c.ctx, c.who, identity.UserCreate{Username: req.Username, Email: req.Email, Realname: req.Realname, Comment: req.Comment, Password: req.Password})
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(u.ID, 10))
}

func (s *Server) currentUser(c *call) error {
	u, err := s.svc.Identity.CurrentUser(c.ctx, c.who)
	if err != nil {
		return err
	}
	j := toUser(u)
	j.AdminRoleInAuth = u.AdminInAuth
	if j, err = s.withOIDC(c, j, u); err != nil {
		return err
	}
	return c.json(http.StatusOK, j)
}

func (s *Server) getUser(c *call) error {
	id, err := c.id("user_id")
	if err != nil {
		return err
	}
	u, err := s.svc.Identity.GetUser(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	j, err := s.withOIDC(c, toUser(u), u)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, j)
}

func (s *Server) updateUser(c *call) error {
	id, err := c.id("user_id")
	if err != nil {
		return err
	}
	var req struct {
		Email    string `json:"email"`
		Realname string `json:"realname"`
		Comment  string `json:"comment"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Identity.UpdateProfile(c.ctx, c.who, id, identity.Profile{Email: req.Email, Realname: req.Realname, Comment: req.Comment}); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteUser(c *call) error {
	id, err := c.id("user_id")
	if err != nil {
		return err
	}
	if err := s.svc.Identity.DeleteUser(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) setSysAdmin(c *call) error {
	id, err := c.id("user_id")
	if err != nil {
		return err
	}
	var req struct {
		SysadminFlag bool `json:"sysadmin_flag"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Identity.SetSysAdmin(c.ctx, c.who, id, req.SysadminFlag); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) setPassword(c *call) error {
	id, err := c.id("user_id")
	if err != nil {
		return err
	}
	var req struct {
		OldPassword string `json:"old_password"`
		NewPassword string `json:"new_password"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Identity.SetPassword(c.ctx, c.who, id, req.OldPassword, req.NewPassword); err != nil {
		return err
	}
	return c.ok()
}

// login is the login form: principal and password, form-encoded. It
// answers 200 with the session cookie.
func (s *Server) login(c *call) error {
	if err := c.r.ParseForm(); err != nil {
		return errdefsTooLargeOr(err)
	}
	who, err := s.svc.Identity.UserLogin(c.ctx, c.r.PostForm.Get("principal"), c.r.PostForm.Get("password"), c.r.RemoteAddr)
	if err != nil {
		return err
	}
	sess, err := s.svc.Identity.StartSession(c.ctx, who)
	if err != nil {
		return err
	}
	http.SetCookie(c.w, &http.Cookie{Name: SessionCookie, Value: sess.Token, Path: "/", HttpOnly: true, Secure: c.r.TLS != nil, SameSite: http.SameSiteLaxMode, Expires: sess.Expires})
	c.w.Header().Set(CSRFHeader, sess.CSRF)
	return c.ok()
}

func (s *Server) logout(c *call) error {
	if ck, err := c.r.Cookie(SessionCookie); err == nil {
		if err := s.svc.Identity.EndSession(c.ctx, ck.Value); err != nil {
			return err
		}
	}
	http.SetCookie(c.w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	return c.ok()
}
