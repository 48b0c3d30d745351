package server_test

import (
	"context"
	"strconv"

	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/jobservice"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/schedule"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/webhook"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/jobs"
	lproject "github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
	lwebhook "github.com/lading-dev/lading/internal/webhook"
)

// freshPolicy creates a webhook policy in p.
func freshPolicy(t *testingT, e *env, p proj) any {
	id, err := e.srv.Core.Webhooks.Create(context.Background(), e.admin, lproject.Ref{Name: p.name}, lwebhook.Policy{Name: e.fresh("hook"), Enabled: true,
		EventTypes: []string{lwebhook.PushArtifact}, Targets: []lwebhook.Target{{Address: "https://hooks.example.com/in"}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// otherPolicy creates a webhook policy in the project "other".
func otherPolicy(t *testingT, e *env, _ proj) any { return freshPolicy(t, e, proj{name: "other"}) }

// delivery is a webhook policy's execution and its task.
type delivery struct{ policy, exec, task int64 }

// freshDelivery creates a webhook policy in p with an execution and one
// task, whose job is of a kind nobody works (so it stays pending).
func freshDelivery(t *testingT, e *env, p proj) any {
	return deliveryOf(t, e, freshPolicy(t, e, p).(int64))
}

// otherDelivery is freshDelivery in the project "other".
func otherDelivery(t *testingT, e *env, _ proj) any { return freshDelivery(t, e, proj{name: "other"}) }

// strayDelivery: a policy of p, and an execution and task of another
// policy of p, to be asked for under the first.
func strayDelivery(t *testingT, e *env, p proj) any {
	d := freshDelivery(t, e, p).(delivery)
	d.policy = freshPolicy(t, e, p).(int64)
	return d
}

func deliveryOf(t *testingT, e *env, policy int64) delivery {
	ctx := context.Background()
	d := delivery{policy: policy}
	err := e.srv.Core.DB.Tx(ctx, "authz test delivery", func(tx *sqldb.Tx) error {
		var err error
		if d.exec, err = e.srv.Core.Tasks.Create(ctx, tx, lwebhook.VendorType, policy, task.TriggerEvent, nil); err != nil {
			return err
		}
		d.task, err = e.srv.Core.Tasks.AddTask(ctx, tx, d.exec, jobs.Request{Kind: "AUTHZ_TEST"}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func listTasks(ctx context.Context, c *v2.HarborAPI, p proj, d delivery) error {
	return ignore(c.Webhook.ListTasksOfWebhookExecution(ctx, webhook.NewListTasksOfWebhookExecutionParams().WithProjectNameOrID(p.name).
		WithWebhookPolicyID(d.policy).WithExecutionID(d.exec)))
}

func taskLog(ctx context.Context, c *v2.HarborAPI, p proj, d delivery) error {
	return ignore(c.Webhook.GetLogsOfWebhookTask(ctx, webhook.NewGetLogsOfWebhookTaskParams().WithProjectNameOrID(p.name).
		WithWebhookPolicyID(d.policy).WithExecutionID(d.exec).WithTaskID(d.task)))
}

// freshJob queues a job of a kind nobody works, for its log.
func freshJob(t *testingT, e *env, _ proj) any {
	id, _, err := e.srv.Core.Jobs.Enqueue(context.Background(), jobs.Request{Kind: "AUTHZ_TEST"})
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(id, 10)
}

func hookPolicy(e *env) *models.WebhookPolicy {
	return &models.WebhookPolicy{Name: e.fresh("hook"), Enabled: true, EventTypes: []string{"PUSH_ARTIFACT"},
		Targets: []*models.WebhookTargetObject{{Type: "http", Address: "https://hooks.example.com/in"}}}
}

// jobsRows are the job service's and the webhooks' endpoints.
func jobsRows() []row {
	return []row{
		// Webhooks.
		{name: "GET /projects/{p}/webhook/policies", scope: inProject, res: access.NotificationPolicy, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Webhook.ListWebhookPoliciesOfProject(ctx, webhook.NewListWebhookPoliciesOfProjectParams().WithProjectNameOrID(p.name)))
		}},
		{name: "POST /projects/{p}/webhook/policies", scope: inProject, res: access.NotificationPolicy, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, _ any) error {
			return ignore(c.Webhook.CreateWebhookPolicyOfProject(ctx, webhook.NewCreateWebhookPolicyOfProjectParams().WithProjectNameOrID(p.name).WithPolicy(hookPolicy(e))))
		}},
		{name: "GET /projects/{p}/webhook/policies/{id}", scope: inProject, res: access.NotificationPolicy, act: access.Read, setup: freshPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Webhook.GetWebhookPolicyOfProject(ctx, webhook.NewGetWebhookPolicyOfProjectParams().WithProjectNameOrID(p.name).WithWebhookPolicyID(id.(int64))))
		}},
		{name: "GET /projects/{p}/webhook/policies/{another project's id}", scope: inProject, res: access.NotificationPolicy, act: access.Read, other: true, setup: otherPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Webhook.GetWebhookPolicyOfProject(ctx, webhook.NewGetWebhookPolicyOfProjectParams().WithProjectNameOrID(p.name).WithWebhookPolicyID(id.(int64))))
		}},
		{name: "PUT /projects/{p}/webhook/policies/{id}", scope: inProject, res: access.NotificationPolicy, act: access.Update, setup: freshPolicy, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, id any) error {
			return ignore(c.Webhook.UpdateWebhookPolicyOfProject(ctx, webhook.NewUpdateWebhookPolicyOfProjectParams().WithProjectNameOrID(p.name).WithWebhookPolicyID(id.(int64)).WithPolicy(hookPolicy(e))))
		}},
		{name: "PUT /projects/{p}/webhook/policies/{another project's id}", scope: inProject, res: access.NotificationPolicy, act: access.Update, other: true, setup: otherPolicy, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, id any) error {
			return ignore(c.Webhook.UpdateWebhookPolicyOfProject(ctx, webhook.NewUpdateWebhookPolicyOfProjectParams().WithProjectNameOrID(p.name).WithWebhookPolicyID(id.(int64)).WithPolicy(hookPolicy(e))))
		}},
		{name: "DELETE /projects/{p}/webhook/policies/{id}", scope: inProject, res: access.NotificationPolicy, act: access.Delete, setup: freshPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Webhook.DeleteWebhookPolicyOfProject(ctx, webhook.NewDeleteWebhookPolicyOfProjectParams().WithProjectNameOrID(p.name).WithWebhookPolicyID(id.(int64))))
		}},
		{name: "DELETE /projects/{p}/webhook/policies/{another project's id}", scope: inProject, res: access.NotificationPolicy, act: access.Delete, other: true, setup: otherPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Webhook.DeleteWebhookPolicyOfProject(ctx, webhook.NewDeleteWebhookPolicyOfProjectParams().WithProjectNameOrID(p.name).WithWebhookPolicyID(id.(int64))))
		}},
		{name: "GET /projects/{p}/webhook/policies/{id}/executions", scope: inProject, res: access.NotificationPolicy, act: access.Read, setup: freshPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Webhook.ListExecutionsOfWebhookPolicy(ctx, webhook.NewListExecutionsOfWebhookPolicyParams().WithProjectNameOrID(p.name).WithWebhookPolicyID(id.(int64))))
		}},
		{name: "GET /projects/{p}/webhook/policies/{another project's id}/executions", scope: inProject, res: access.NotificationPolicy, act: access.Read, other: true, setup: otherPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Webhook.ListExecutionsOfWebhookPolicy(ctx, webhook.NewListExecutionsOfWebhookPolicyParams().WithProjectNameOrID(p.name).WithWebhookPolicyID(id.(int64))))
		}},
		{name: "GET .../policies/{id}/executions/{eid}/tasks", scope: inProject, res: access.NotificationPolicy, act: access.Read, setup: freshDelivery, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, d any) error {
			return listTasks(ctx, c, p, d.(delivery))
		}},
		{name: "GET .../policies/{another project's id}/executions/{eid}/tasks", scope: inProject, res: access.NotificationPolicy, act: access.Read, other: true, setup: otherDelivery, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, d any) error {
			return listTasks(ctx, c, p, d.(delivery))
		}},
		{name: "GET .../policies/{id}/executions/{another policy's eid}/tasks", scope: inProject, res: access.NotificationPolicy, act: access.Read, other: true, setup: strayDelivery, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, d any) error {
			return listTasks(ctx, c, p, d.(delivery))
		}},
		{name: "GET .../executions/{eid}/tasks/{tid}/log", scope: inProject, res: access.NotificationPolicy, act: access.Read, setup: freshDelivery, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, d any) error {
			return taskLog(ctx, c, p, d.(delivery))
		}},
		{name: "GET .../policies/{another project's id}/executions/{eid}/tasks/{tid}/log", scope: inProject, res: access.NotificationPolicy, act: access.Read, other: true, setup: otherDelivery, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, d any) error {
			return taskLog(ctx, c, p, d.(delivery))
		}},
		{name: "GET .../executions/{eid}/tasks/{another execution's tid}/log", scope: inProject, res: access.NotificationPolicy, act: access.Read, other: true, setup: func(t *testingT, e *env, p proj) any {
			d := freshDelivery(t, e, p).(delivery)
			d.task = deliveryOf(t, e, d.policy).task
			return d
		}, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, d any) error {
			return taskLog(ctx, c, p, d.(delivery))
		}},
		{name: "GET /projects/{p}/webhook/events", scope: inProject, res: access.NotificationPolicy, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Webhook.GetSupportedEventTypes(ctx, webhook.NewGetSupportedEventTypesParams().WithProjectNameOrID(p.name)))
		}},
		// The job service (system resource jobservice-monitor).
		{name: "GET /jobservice/pools", scope: system, res: access.JobServiceMonitor, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Jobservice.GetWorkerPools(ctx, jobservice.NewGetWorkerPoolsParams()))
		}},
		{name: "GET /jobservice/pools/{id}/workers", scope: system, res: access.JobServiceMonitor, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Jobservice.GetWorkers(ctx, jobservice.NewGetWorkersParams().WithPoolID("all")))
		}},
		{name: "PUT /jobservice/jobs/{id}", scope: system, res: access.JobServiceMonitor, act: access.Stop, setup: freshJob, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Jobservice.StopRunningJob(ctx, jobservice.NewStopRunningJobParams().WithJobID(id.(string))))
		}},
		{name: "GET /jobservice/jobs/{id}/log", scope: system, res: access.JobServiceMonitor, act: access.List, setup: freshJob, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Jobservice.ActionGetJobLog(ctx, jobservice.NewActionGetJobLogParams().WithJobID(id.(string))))
		}},
		{name: "GET /jobservice/queues", scope: system, res: access.JobServiceMonitor, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Jobservice.ListJobQueues(ctx, jobservice.NewListJobQueuesParams()))
		}},
		{name: "PUT /jobservice/queues/{type}", scope: system, res: access.JobServiceMonitor, act: access.Stop, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Jobservice.ActionPendingJobs(ctx, jobservice.NewActionPendingJobsParams().WithJobType("WEBHOOK").WithActionRequest(&models.ActionRequest{Action: "resume"})))
		}},
		{name: "GET /schedules", scope: system, res: access.JobServiceMonitor, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Schedule.ListSchedules(ctx, schedule.NewListSchedulesParams()))
		}},
		{name: "GET /schedules/all/paused", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Schedule.GetSchedulePaused(ctx, schedule.NewGetSchedulePausedParams().WithJobType("all")))
		}},
	}
}
