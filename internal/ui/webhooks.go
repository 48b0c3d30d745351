package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/task"
	"github.com/lading-dev/lading/internal/webhook"
)

// webhookTab is the project's webhooks tab: its policies, each with its
// targets and events, and a form for a new one.
func (s *Server) webhookTab(c *call, pv *projectView, formErr string, form webhook.Policy) error {
	if s.svc.Webhooks == nil {
		return notFound("no webhooks in this server")
	}
	page := c.pageOf()
	pols, total, err := s.svc.Webhooks.Policies(c.ctx, c.who, project.Ref{ID: pv.Project.ID}, query.Query{}, page)
	if err != nil {
		return err
	}
	// Each policy's last delivery (executions are listed newest first).
	last := map[int64]*task.Execution{}
	for _, p := range pols {
		ex, _, err := s.svc.Webhooks.Executions(c.ctx, c.who, project.Ref{ID: pv.Project.ID}, p.ID, query.Query{}, query.Page{Number: 1, Size: 1})
		if err != nil {
			return err
		}
		if len(ex) > 0 {
			last[p.ID] = &ex[0]
		}
	}
	if form.EventTypes == nil {
		form.EventTypes = webhook.EventTypes
	}
	pv.Data = map[string]any{"Policies": pols, "Last": last, "Pager": newPager(c.r.URL, page, total), "EventTypes": webhook.EventTypes,
		"Formats": webhook.PayloadFormats, "FormError": formErr, "Form": form}
	st := http.StatusOK
	if formErr != "" {
		st = http.StatusBadRequest
	}
	return c.render(st, "project", pv.Project.Name, *pv)
}

func (s *Server) createWebhook(c *call) error {
	if s.svc.Webhooks == nil {
		return notFound("no webhooks in this server")
	}
	ref := project.Ref{Name: c.r.PathValue("project")}
	f := c.r.PostForm
	pol := webhook.Policy{
		Name:        strings.TrimSpace(f.Get("name")),
		Description: strings.TrimSpace(f.Get("description")),
		Enabled:     true,
		Targets: []webhook.Target{{Type: webhook.NotifyTypeHTTP, Address: strings.TrimSpace(f.Get("address")),
			AuthHeader: f.Get("auth_header"), SkipCertVerify: f.Get("skip_cert_verify") == "on", PayloadFormat: f.Get("payload_format")}},
		EventTypes: []string{},
	}
	for _, e := range f["event_type"] {
		if slices.Contains(webhook.EventTypes, e) {
			pol.EventTypes = append(pol.EventTypes, e)
		}
	}
	_, err := s.svc.Webhooks.Create(c.ctx, c.who, ref, pol)
	if formError(err) || errdefs.IsInvalidArgument(err) {
		pv, perr := s.project(c)
		if perr != nil {
			return perr
		}
		pv.Tab = "webhooks"
		pol.Targets[0].AuthHeader = "" // never sent back
		return s.webhookTab(c, &pv, err.Error(), pol)
	}
	if err != nil {
		return err
	}
	c.flash("Webhook " + pol.Name + " created.")
	return c.redirect("/projects/" + url.PathEscape(ref.Name) + "/webhooks")
}

func (s *Server) deleteWebhook(c *call) error {
	if s.svc.Webhooks == nil {
		return notFound("no webhooks in this server")
	}
	ref := project.Ref{Name: c.r.PathValue("project")}
	id, err := strconv.ParseInt(c.r.PathValue("wid"), 10, 64)
	if err != nil {
		return notFound("no webhook " + c.r.PathValue("wid"))
	}
	if err := s.svc.Webhooks.Delete(c.ctx, c.who, ref, id); err != nil {
		return err
	}
	c.flash("Webhook deleted.")
	return c.redirect("/projects/" + url.PathEscape(ref.Name) + "/webhooks")
}
