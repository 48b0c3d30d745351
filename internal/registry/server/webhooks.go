package server

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/webhook"
)

// The registry's events as webhook events: pushes, pulls and deletions
// become PUSH_ARTIFACT, PULL_ARTIFACT and DELETE_ARTIFACT; a push refused
// for its project's quota QUOTA_EXCEED; a push that leaves the project
// past 85% of its quota QUOTA_WARNING, as Harbor raises them.

// externalHost is how clients name the registry: external_url's host, or
// the listen address (the host name when it listens on every address).
func externalHost(cfg Config) string {
	if cfg.ExternalURL != "" {
		if u, err := url.Parse(cfg.ExternalURL); err == nil && u.Host != "" {
			return u.Host
		}
	}
	host, port, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return cfg.Address
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// notify publishes an artifact event; a failure is logged, never the
// client's problem.
func (e events) notify(ctx context.Context, typ string, ev registry.Event) {
	if err := e.core.Webhooks.Artifact(ctx, typ, e.host, ev.Repository, ev.Digest, ev.Tags, ev.User); err != nil && ctx.Err() == nil {
		e.core.Log().Warn("publishing a webhook event", "event", typ, "repository", ev.Repository, "error", err)
	}
}

// quotaWarning publishes QUOTA_WARNING when a push leaves its project's
// usage at or past the warning threshold.
func (e events) quotaWarning(ctx context.Context, ev registry.Event) {
	name, _, ok := cutProject(ev.Repository)
	if !ok {
		return
	}
	p, err := e.core.Projects.Resolve(ctx, project.Ref{Name: name})
	if err != nil {
		return
	}
	q, err := e.core.Projects.Quota(ctx, system, p.ID)
	if err != nil {
		return
	}
	details := webhook.QuotaWarningDetails(q.Used, q.Hard)
	if details == "" {
		return
	}
	tag := ""
	if len(ev.Tags) > 0 {
		tag = ev.Tags[0]
	}
	if err := e.core.Webhooks.Quota(ctx, webhook.QuotaWarning, ev.Repository, ev.Digest, tag, details, ev.User); err != nil && ctx.Err() == nil {
		e.core.Log().Warn("publishing a webhook event", "event", webhook.QuotaWarning, "repository", ev.Repository, "error", err)
	}
}

// system is lading acting on its own behalf.
var system = access.Subject{Kind: access.KindUser, Name: "lading", SysAdmin: true}

// quotaExceeded publishes QUOTA_EXCEED when err refuses a push for its
// quota. Inside the metadata store's transaction (inTx), which holds
// SQLite's one writer, the event is published after, from another
// goroutine.
func quotaExceeded(ctx context.Context, c *core.Core, repo, user string, err error, inTx bool) {
	var ex *project.ExceededError
	if !errors.As(err, &ex) {
		return
	}
	publish := func(ctx context.Context) {
		if err := c.Webhooks.Quota(ctx, webhook.QuotaExceed, repo, "", "", ex.Error(), user); err != nil && ctx.Err() == nil {
			c.Log().Warn("publishing a webhook event", "event", webhook.QuotaExceed, "repository", repo, "error", err)
		}
	}
	if inTx {
		go publish(context.WithoutCancel(ctx))
		return
	}
	publish(ctx)
}

func cutProject(repo string) (string, string, bool) {
	for i := 0; i < len(repo); i++ {
		if repo[i] == '/' {
			return repo[:i], repo[i+1:], i > 0
		}
	}
	return "", "", false
}
