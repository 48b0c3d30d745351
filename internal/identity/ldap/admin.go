package ldap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
)

// Admin serves Harbor's LDAP endpoints, each with its permission check,
// and the group sync.
type Admin struct {
	dir    *Directory
	ids    *identity.Service
	access *access.Checker
	log    *slog.Logger
}

// NewAdmin returns the LDAP endpoints' service.
func NewAdmin(dir *Directory, ids *identity.Service, checker *access.Checker, log *slog.Logger) *Admin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Admin{dir: dir, ids: ids, access: checker, log: log}
}

// Directory returns the directory.
func (a *Admin) Directory() *Directory { return a.dir }

// Ping tries the stored configuration changed by edit (the fields of
// /ldap/ping's body) and says what is wrong with it (system permission
// configuration read, as in Harbor). The stored search password is used
// when edit leaves the password empty, but only towards the stored URL
// and search DN: a ping cannot send it elsewhere.
func (a *Admin) Ping(ctx context.Context, who access.Subject, edit func(*Config)) error {
	if err := a.access.Require(ctx, who, access.Read, access.Configuration, 0); err != nil {
		return err
	}
	stored, err := a.dir.Current(ctx)
	if err != nil {
		return err
	}
	cfg := stored
	cfg.SearchPassword = ""
	edit(&cfg)
	if cfg.SearchPassword == "" && cfg.URL == stored.URL && cfg.SearchDN == stored.SearchDN {
		cfg.SearchPassword = stored.SearchPassword
	}
	if cfg.SearchDN != "" && cfg.SearchPassword == "" {
		return errdefs.InvalidArgument(errors.New("empty password: give ldap_search_password"))
	}
	return a.dir.Ping(ctx, cfg)
}

// SearchUsers finds directory users by exact name, every user when name
// is "" (system permission ldap-user list).
func (a *Admin) SearchUsers(ctx context.Context, who access.Subject, name string) ([]User, error) {
	if err := a.access.Require(ctx, who, access.List, access.LdapUser, 0); err != nil {
		return nil, err
	}
	return a.dir.SearchUsers(ctx, name)
}

// FailedImport is a user /ldap/users/import could not import.
type FailedImport struct {
	UID   string `json:"uid"`
	Error string `json:"err_msg"`
}

// ImportUsers makes lading users of directory users (system permission
// ldap-user create; under ldap_auth), with Harbor's reasons for those it
// cannot: empty_uid, unknown_user, failed_search_user.
func (a *Admin) ImportUsers(ctx context.Context, who access.Subject, uids []string) ([]FailedImport, error) {
	if err := a.access.Require(ctx, who, access.Create, access.LdapUser, 0); err != nil {
		return nil, err
	}
	if err := a.ids.RequireMode(ctx, "ldap_auth"); err != nil {
		return nil, err
	}
	failed := []FailedImport{}
	for _, uid := range uids {
		if uid == "" {
			failed = append(failed, FailedImport{UID: uid, Error: "empty_uid"})
			continue
		}
		ext, err := a.dir.Lookup(ctx, uid, "")
		switch {
		case errors.Is(err, identity.ErrGone):
			failed = append(failed, FailedImport{UID: uid, Error: "unknown_user"})
			continue
		case errors.Is(err, errdefs.ErrUnavailable), errors.Is(err, errdefs.ErrFailedPrecondition):
			return nil, err
		case err != nil:
			a.log.Warn("LDAP import: search failed", "uid", uid, "error", err)
			failed = append(failed, FailedImport{UID: uid, Error: "failed_search_user"})
			continue
		}
		if _, err := a.ids.ImportUser(ctx, who, "ldap_auth", ext); err != nil {
			if errdefs.IsUnauthorized(err) || errors.Is(err, errdefs.ErrDenied) || errors.Is(err, errdefs.ErrFailedPrecondition) {
				return nil, err
			}
			failed = append(failed, FailedImport{UID: uid, Error: "failed to import user: " + uid + ": " + err.Error()})
		}
	}
	return failed, nil
}

// SearchGroups finds directory groups by exact name, or the group at a
// DN (system permission ldap-user list); none is errdefs.ErrNotFound.
func (a *Admin) SearchGroups(ctx context.Context, who access.Subject, name, dn string) ([]Group, error) {
	if err := a.access.Require(ctx, who, access.List, access.LdapUser, 0); err != nil {
		return nil, err
	}
	groups, err := a.dir.SearchGroups(ctx, name, dn)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, errdefs.NotFound(fmt.Errorf("group name:%s, group DN:%s", name, dn))
	}
	return groups, nil
}

// SyncResult counts what a group sync did.
type SyncResult struct {
	Refreshed, Gone int
}

// Sync asks the directory about every LDAP user lading knows, as their
// next login would: their groups and administrator role are refreshed;
// those the directory no longer has, or marks disabled, lose their groups
// and sessions. It stops at the first failure of the directory itself
// (down, misconfigured), changing nothing more.
func (a *Admin) Sync(ctx context.Context, log *slog.Logger) (SyncResult, error) {
	var r SyncResult
	users, err := a.ids.SourceUsers(ctx, "ldap")
	if err != nil {
		return r, err
	}
	for _, u := range users {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		ext, err := a.dir.Lookup(ctx, u.Username, u.ExternalID)
		if errors.Is(err, identity.ErrGone) {
			if err := a.ids.Forget(ctx, u.ID); err != nil {
				return r, err
			}
			log.Info("LDAP group sync: the directory no longer has the user; their groups and sessions are dropped", "user", u.Username)
			r.Gone++
			continue
		}
		if err != nil {
			return r, fmt.Errorf("LDAP group sync, user %s: %w", u.Username, err)
		}
		if err := a.ids.Refresh(ctx, u.ID, ext); err != nil {
			return r, err
		}
		r.Refreshed++
	}
	log.Info("LDAP group sync done", "users", len(users), "refreshed", r.Refreshed, "gone", r.Gone)
	return r, nil
}
