package core

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/lading-dev/lading/internal/config"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity/ldap"
	"github.com/lading-dev/lading/internal/identity/oidc"
	"github.com/lading-dev/lading/internal/jobs"
)

// The external identities' wiring: the LDAP directory and the OIDC
// relying party read their settings at every call; the auth mode is
// guarded; the LDAP group sync is a scheduled job.

// LDAPSyncKind is the job (and schedule vendor type) that refreshes LDAP
// users' groups between their logins.
const LDAPSyncKind = "LDAP_GROUP_SYNC"

// newSources makes the LDAP directory and the OIDC service (c.OIDC).
func (c *Core) newSources(o Options) *ldap.Directory {
	dir := ldap.New(func(ctx context.Context) (ldap.Config, error) {
		st, err := c.Settings.Get(ctx)
		return ldap.ConfigOf(st.Values), err
	}, ldap.WithRootCAs(o.RootCAs), ldap.WithLogger(o.Log))
	c.OIDC = oidc.New(c.DB, c.Access, c.Audit, func(ctx context.Context) (oidc.Config, oidc.Settings, error) {
		st, err := c.Settings.Get(ctx)
		return oidc.ConfigOf(st.Values), oidc.Settings{AuthMode: st.AuthMode, SessionTimeout: st.SessionTimeout}, err
	}, oidc.WithRootCAs(o.RootCAs), oidc.WithLogger(o.Log))
	return dir
}

// watchIdentitySettings checks the sync schedule, re-arms it when it (or
// the auth mode) changes, and registers the sync job. (The auth mode's
// guard is identity's: CanChangeAuthMode.)
func (c *Core) watchIdentitySettings() error {
	c.Settings.SetCheck(func(_ context.Context, _ config.Settings, changes map[string]any) error {
		if cron, ok := changes["ldap_group_sync_cron"].(string); ok && cron != "" {
			if _, err := jobs.ParseCron(cron); err != nil {
				return errdefs.InvalidArgument(errors.New("configuration ldap_group_sync_cron: " + err.Error()))
			}
		}
		return nil
	})
	c.Settings.OnChange(func(ctx context.Context, names []string) {
		if slices.Contains(names, "ldap_group_sync_cron") || slices.Contains(names, "auth_mode") {
			if err := c.armLDAPSync(ctx); err != nil {
				c.log.Warn("cannot schedule the LDAP group sync", "error", err)
			}
		}
	})
	c.Jobs.Register(jobs.Definition{Kind: LDAPSyncKind, Run: c.runLDAPSync, Concurrency: 1, MaxAttempts: 3, Timeout: time.Hour})
	return nil
}

// armLDAPSync schedules the group sync under ldap_auth
// (ldap_group_sync_cron; "" for none) and removes it otherwise.
func (c *Core) armLDAPSync(ctx context.Context) error {
	st, err := c.Settings.Get(ctx)
	if err != nil {
		return err
	}
	cron, _ := st.Values["ldap_group_sync_cron"].(string)
	if st.AuthMode != "ldap_auth" || cron == "" {
		return c.Jobs.DeleteSchedule(ctx, LDAPSyncKind, 0)
	}
	_, err = c.Jobs.SetSchedule(ctx, jobs.Schedule{VendorType: LDAPSyncKind, Kind: LDAPSyncKind, Cron: cron})
	return err
}

// runLDAPSync is the group sync job.
func (c *Core) runLDAPSync(ctx context.Context, j *jobs.Job) error {
	st, err := c.Settings.Get(ctx)
	if err != nil {
		return err
	}
	if st.AuthMode != "ldap_auth" {
		j.Log.Info("the auth mode is not ldap_auth; nothing to sync", "auth_mode", st.AuthMode)
		return nil
	}
	_, err = c.LDAP.Sync(ctx, j.Log)
	return err
}
