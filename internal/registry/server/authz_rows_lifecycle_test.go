package server_test

import (
	"context"
	"testing"

	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/gc"
	immu "github.com/goharbor/go-client/pkg/sdk/v2.0/client/immutable"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/label"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/purge"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/retention"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/access"
	limmutable "github.com/lading-dev/lading/internal/immutable"
	llabel "github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/query"
	lretention "github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/selector"
	"github.com/lading-dev/lading/internal/sysjob"
)

// immuRule is a rule with a pattern of its own (equal rules are refused).
func immuRule(e *env) *models.ImmutableRule {
	return &models.ImmutableRule{Action: "immutable", Template: "immutable_template",
		TagSelectors:   []*models.ImmutableSelector{{Kind: "doublestar", Decoration: "matches", Pattern: e.fresh("rel-") + "-*"}},
		ScopeSelectors: map[string][]models.ImmutableSelector{"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "**"}}}}
}

// noImmutable deletes p's immutable rules (a project has at most 15).
func noImmutable(t *testing.T, e *env, p proj) any {
	ctx := context.Background()
	rules, _, err := e.srv.Core.Immutable.List(ctx, e.admin, projectRef(p), query.Query{}, query.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if err := e.srv.Core.Immutable.Delete(ctx, e.admin, projectRef(p), r.ID); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

// freshImmutable creates an immutable rule in p.
func freshImmutable(t *testing.T, e *env, p proj) any {
	noImmutable(t, e, p)
	all := selector.Selector{Kind: selector.Kind, Decoration: selector.Matches, Pattern: e.fresh("fix-") + "-*"}
	id, err := e.srv.Core.Immutable.Create(context.Background(), e.admin, projectRef(p), limmutable.Rule{Tags: all,
		Repositories: selector.Selector{Kind: selector.Kind, Decoration: selector.RepoMatches, Pattern: "**"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// freshLabel creates a label of project p.
func freshLabel(t *testing.T, e *env, p proj) any {
	id, err := e.srv.Core.Labels.Create(context.Background(), e.admin, llabel.Label{Name: e.fresh("lab"), Scope: llabel.Project, ProjectID: p.id})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// attachedLabel creates a label of p and attaches it to app:v1.
func attachedLabel(t *testing.T, e *env, p proj) any {
	id := freshLabel(t, e, p).(int64)
	if err := e.srv.Core.Labels.Attach(context.Background(), e.admin, projectRef(p), "app", "v1", id); err != nil {
		t.Fatal(err)
	}
	return id
}

// noRetention deletes p's retention policy (a project has at most one).
func noRetention(t *testing.T, e *env, p proj) any {
	var id int64
	err := e.srv.Core.DB.QueryRow(context.Background(), `SELECT id FROM retention_policies WHERE project_id = ?`, p.id).Scan(&id)
	if err == nil {
		if err := e.srv.Core.Retention.Delete(context.Background(), e.admin, id); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

// freshRetention gives p a new retention policy.
func freshRetention(t *testing.T, e *env, p proj) any {
	noRetention(t, e, p)
	id, err := e.srv.Core.Retention.Create(context.Background(), e.admin, lretention.Policy{Algorithm: "or",
		Rules:   []lretention.Rule{{Action: "retain", Template: lretention.Always, TagSelectors: []selector.Selector{{Kind: selector.Kind, Decoration: selector.Matches, Pattern: "**"}}}},
		Trigger: lretention.Trigger{Kind: "Schedule", Settings: map[string]any{"cron": ""}},
		Scope:   lretention.Scope{Level: "project", Ref: p.id}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// retentionRun gives p a policy with one (dry) execution: [policy, execution].
func retentionRun(t *testing.T, e *env, p proj) any {
	id := freshRetention(t, e, p).(int64)
	exec, err := e.srv.Core.Retention.Trigger(context.Background(), e.admin, id, true)
	if err != nil {
		t.Fatal(err)
	}
	return [2]int64{id, exec}
}

// retentionTask is [policy, execution, task] of a dry run in p.
func retentionTask(t *testing.T, e *env, p proj) any {
	x := retentionRun(t, e, p).([2]int64)
	tasks, _, err := e.srv.Core.Retention.Tasks(context.Background(), e.admin, x[0], x[1], query.Page{})
	if err != nil || len(tasks) == 0 {
		t.Fatalf("tasks of execution %d: %v %v", x[1], tasks, err)
	}
	return [3]int64{x[0], x[1], tasks[0].ID}
}

// sysRun is the id of a run of a system job (the newest, or a new manual
// one when there is none).
func sysRun(t *testing.T, svc *sysjob.Service, e *env, params map[string]any) int64 {
	ctx := context.Background()
	if last, ok, err := svc.Latest(ctx); err != nil {
		t.Fatal(err)
	} else if ok {
		return last.ID
	}
	id, err := svc.SetSchedule(ctx, e.admin, "Manual", "", params, true)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func gcRun(t *testing.T, e *env, _ proj) any {
	return sysRun(t, e.srv.Core.GC.Service, e, map[string]any{"dry_run": true})
}

func purgeRun(t *testing.T, e *env, _ proj) any {
	return sysRun(t, e.srv.Core.Purge.Service, e, map[string]any{"audit_retention_hour": 1, "include_event_types": "create_artifact", "dry_run": true})
}

func retentionPolicy(p proj) *models.RetentionPolicy {
	return &models.RetentionPolicy{Algorithm: "or",
		Rules: []*models.RetentionRule{{Action: "retain", Template: "always",
			TagSelectors: []*models.RetentionSelector{{Kind: "doublestar", Decoration: "matches", Pattern: "**"}}}},
		Trigger: &models.RetentionRuleTrigger{Kind: "Schedule", Settings: map[string]any{"cron": ""}},
		Scope:   &models.RetentionPolicyScope{Level: "project", Ref: p.id}}
}

// lifecycleRows are the endpoints of immutable tags, labels, retention,
// garbage collection and the audit log purge.
func lifecycleRows() []row {
	type c = *v2.HarborAPI
	return []row{
		// Immutable tag rules.
		{name: "GET /projects/{p}/immutabletagrules", scope: inProject, res: access.ImmutableTag, act: access.List, call: func(ctx context.Context, c c, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Immutable.ListImmuRules(ctx, immu.NewListImmuRulesParams().WithProjectNameOrID(p.name)))
		}},
		{name: "POST /projects/{p}/immutabletagrules", scope: inProject, res: access.ImmutableTag, act: access.Create, setup: noImmutable, call: func(ctx context.Context, c c, e *env, p proj, _ subject, _ any) error {
			return ignore(c.Immutable.CreateImmuRule(ctx, immu.NewCreateImmuRuleParams().WithProjectNameOrID(p.name).WithImmutableRule(immuRule(e))))
		}},
		{name: "PUT /projects/{p}/immutabletagrules/{id}", scope: inProject, res: access.ImmutableTag, act: access.Update, setup: freshImmutable, call: func(ctx context.Context, c c, e *env, p proj, _ subject, id any) error {
			return ignore(c.Immutable.UpdateImmuRule(ctx, immu.NewUpdateImmuRuleParams().WithProjectNameOrID(p.name).WithImmutableRuleID(id.(int64)).WithImmutableRule(immuRule(e))))
		}},
		{name: "DELETE /projects/{p}/immutabletagrules/{id}", scope: inProject, res: access.ImmutableTag, act: access.Delete, setup: freshImmutable, call: func(ctx context.Context, c c, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Immutable.DeleteImmuRule(ctx, immu.NewDeleteImmuRuleParams().WithProjectNameOrID(p.name).WithImmutableRuleID(id.(int64))))
		}},
		// Labels.
		{name: "POST /labels (global)", scope: system, res: access.Label, act: access.Create, call: func(ctx context.Context, c c, e *env, _ proj, _ subject, _ any) error {
			return ignore(c.Label.CreateLabel(ctx, label.NewCreateLabelParams().WithLabel(&models.Label{Name: e.fresh("g"), Scope: "g"})))
		}},
		{name: "POST /labels (project)", scope: inProject, res: access.Label, act: access.Create, call: func(ctx context.Context, c c, e *env, p proj, _ subject, _ any) error {
			return ignore(c.Label.CreateLabel(ctx, label.NewCreateLabelParams().WithLabel(&models.Label{Name: e.fresh("p"), Scope: "p", ProjectID: p.id})))
		}},
		{name: "GET /labels?scope=p", scope: inProject, res: access.Label, act: access.List, call: func(ctx context.Context, c c, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Label.ListLabels(ctx, label.NewListLabelsParams().WithScope(ptr("p")).WithProjectID(&p.id)))
		}},
		{name: "GET /labels/{project label}", scope: inProject, res: access.Label, act: access.Read, setup: freshLabel, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Label.GetLabelByID(ctx, label.NewGetLabelByIDParams().WithLabelID(id.(int64))))
		}},
		{name: "PUT /labels/{project label}", scope: inProject, res: access.Label, act: access.Update, setup: freshLabel, call: func(ctx context.Context, c c, e *env, _ proj, _ subject, id any) error {
			return ignore(c.Label.UpdateLabel(ctx, label.NewUpdateLabelParams().WithLabelID(id.(int64)).WithLabel(&models.Label{Name: e.fresh("renamed")})))
		}},
		{name: "DELETE /labels/{project label}", scope: inProject, res: access.Label, act: access.Delete, setup: freshLabel, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Label.DeleteLabel(ctx, label.NewDeleteLabelParams().WithLabelID(id.(int64))))
		}},
		{name: "POST /projects/{p}/repositories/app/artifacts/v1/labels", scope: inProject, res: access.ArtifactLabel, act: access.Create, setup: freshLabel, call: func(ctx context.Context, c c, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Artifact.AddLabel(ctx, artifact.NewAddLabelParams().WithProjectName(p.name).WithRepositoryName("app").WithReference("v1").WithLabel(&models.Label{ID: id.(int64)})))
		}},
		{name: "DELETE /projects/{p}/repositories/app/artifacts/v1/labels/{id}", scope: inProject, res: access.ArtifactLabel, act: access.Delete, setup: attachedLabel, call: func(ctx context.Context, c c, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Artifact.RemoveLabel(ctx, artifact.NewRemoveLabelParams().WithProjectName(p.name).WithRepositoryName("app").WithReference("v1").WithLabelID(id.(int64))))
		}},
		// Tag retention.
		{name: "POST /retentions", scope: inProject, res: access.TagRetention, act: access.Create, setup: noRetention, call: func(ctx context.Context, c c, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Retention.CreateRetention(ctx, retention.NewCreateRetentionParams().WithPolicy(retentionPolicy(p))))
		}},
		{name: "GET /retentions/{id}", scope: inProject, res: access.TagRetention, act: access.Read, setup: freshRetention, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Retention.GetRetention(ctx, retention.NewGetRetentionParams().WithID(id.(int64))))
		}},
		{name: "PUT /retentions/{id}", scope: inProject, res: access.TagRetention, act: access.Update, setup: freshRetention, call: func(ctx context.Context, c c, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Retention.UpdateRetention(ctx, retention.NewUpdateRetentionParams().WithID(id.(int64)).WithPolicy(retentionPolicy(p))))
		}},
		{name: "DELETE /retentions/{id}", scope: inProject, res: access.TagRetention, act: access.Delete, setup: freshRetention, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Retention.DeleteRetention(ctx, retention.NewDeleteRetentionParams().WithID(id.(int64))))
		}},
		{name: "POST /retentions/{id}/executions", scope: inProject, res: access.TagRetention, act: access.Update, setup: freshRetention, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			_, _, err := c.Retention.TriggerRetentionExecution(ctx, retention.NewTriggerRetentionExecutionParams().WithID(id.(int64)).WithBody(retention.TriggerRetentionExecutionBody{DryRun: true}))
			return err
		}},
		{name: "GET /retentions/{id}/executions", scope: inProject, res: access.TagRetention, act: access.List, setup: freshRetention, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Retention.ListRetentionExecutions(ctx, retention.NewListRetentionExecutionsParams().WithID(id.(int64))))
		}},
		{name: "GET /retentions/{id}/executions/{eid}/tasks", scope: inProject, res: access.TagRetention, act: access.List, setup: retentionRun, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, ids any) error {
			x := ids.([2]int64)
			return ignore(c.Retention.ListRetentionTasks(ctx, retention.NewListRetentionTasksParams().WithID(x[0]).WithEid(x[1])))
		}},
		{name: "GET /retentions/{id}/executions/{eid}/tasks/{tid}", scope: inProject, res: access.TagRetention, act: access.Read, setup: retentionTask, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, ids any) error {
			x := ids.([3]int64)
			return ignore(c.Retention.GetRetentionTaskLog(ctx, retention.NewGetRetentionTaskLogParams().WithID(x[0]).WithEid(x[1]).WithTid(x[2])))
		}},
		{name: "PATCH /retentions/{id}/executions/{eid}", scope: inProject, res: access.TagRetention, act: access.Update, setup: retentionRun, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, ids any) error {
			x := ids.([2]int64)
			return ignore(c.Retention.OperateRetentionExecution(ctx, retention.NewOperateRetentionExecutionParams().WithID(x[0]).WithEid(x[1]).WithBody(retention.OperateRetentionExecutionBody{Action: "stop"})))
		}},
		// Garbage collection and the audit log purge: system administrators.
		{name: "GET /system/gc/{id}", scope: system, res: access.GarbageCollection, act: access.Read, setup: gcRun, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.GC.GetGC(ctx, gc.NewGetGCParams().WithGCID(id.(int64))))
		}},
		{name: "GET /system/gc/{id}/log", scope: system, res: access.GarbageCollection, act: access.Read, setup: gcRun, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.GC.GetGCLog(ctx, gc.NewGetGCLogParams().WithGCID(id.(int64))))
		}},
		{name: "GET /system/purgeaudit/{id}/log", scope: system, res: access.PurgeAuditLog, act: access.Read, setup: purgeRun, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Purge.GetPurgeJobLog(ctx, purge.NewGetPurgeJobLogParams().WithPurgeID(id.(int64))))
		}},
		{name: "GET /system/gc", scope: system, res: access.GarbageCollection, act: access.List, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.GC.GetGCHistory(ctx, gc.NewGetGCHistoryParams()))
		}},
		{name: "GET /system/gc/schedule", scope: system, res: access.GarbageCollection, act: access.Read, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.GC.GetGCSchedule(ctx, gc.NewGetGCScheduleParams()))
		}},
		{name: "PUT /system/gc/schedule", scope: system, res: access.GarbageCollection, act: access.Update, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.GC.UpdateGCSchedule(ctx, gc.NewUpdateGCScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "Custom", Cron: "0 0 4 * * *"},
				Parameters: map[string]any{"delete_untagged": true}})))
		}},
		{name: "GET /system/purgeaudit", scope: system, res: access.PurgeAuditLog, act: access.List, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Purge.GetPurgeHistory(ctx, purge.NewGetPurgeHistoryParams()))
		}},
		{name: "PUT /system/purgeaudit/schedule", scope: system, res: access.PurgeAuditLog, act: access.Update, call: func(ctx context.Context, c c, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Purge.UpdatePurgeSchedule(ctx, purge.NewUpdatePurgeScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "Custom", Cron: "0 0 5 * * *"},
				Parameters: map[string]any{"audit_retention_hour": 24, "include_event_types": "create_artifact"}})))
		}},
	}
}
