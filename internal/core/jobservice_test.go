package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/jobservice"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/schedule"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/jobs"
)

func TestJobServiceAPI(t *testing.T) {
	release := make(chan struct{})
	started := make(chan int64, 1)
	h := newHarness(t, harnessOptions{register: func(q *jobs.Queue) {
		q.Register(jobs.Definition{Kind: "HOLD", Run: func(ctx context.Context, j *jobs.Job) error {
			j.Log.Info("holding", "job", j.ID)
			started <- j.ID
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
		q.Register(jobs.Definition{Kind: "GARBAGE_COLLECTION", Run: func(context.Context, *jobs.Job) error { return nil }})
	}})
	defer close(release)
	ctx := context.Background()
	q := h.core.Jobs
	id, _, err := q.Enqueue(ctx, jobs.Request{Kind: "HOLD"})
	if err != nil {
		t.Fatal(err)
	}
	<-started

	pools, err := h.admin.Jobservice.GetWorkerPools(ctx, jobservice.NewGetWorkerPoolsParams())
	if err != nil || len(pools.Payload) != 1 || pools.Payload[0].Concurrency != 4 || pools.Payload[0].Pid == 0 || pools.Payload[0].WorkerPoolID == "" {
		t.Fatalf("pools: %+v %v", pools, err)
	}
	pool := pools.Payload[0].WorkerPoolID
	workers, err := h.admin.Jobservice.GetWorkers(ctx, jobservice.NewGetWorkersParams().WithPoolID(pool))
	if err != nil || len(workers.Payload) != 4 {
		t.Fatalf("workers: %+v %v", workers, err)
	}
	busy := slices.IndexFunc(workers.Payload, func(w *models.Worker) bool { return w.JobID == strconv.FormatInt(id, 10) })
	if busy < 0 || workers.Payload[busy].JobName != "HOLD" || workers.Payload[busy].StartAt == nil {
		t.Errorf("workers: %+v", workers.Payload)
	}
	if _, err := h.admin.Jobservice.GetWorkers(ctx, jobservice.NewGetWorkersParams().WithPoolID("nope")); err == nil {
		t.Error("workers of a missing pool")
	}

	// Pause a queue: its jobs wait; stop them: they are stopped; resume.
	pause := func(kind, action string) error {
		_, err := h.admin.Jobservice.ActionPendingJobs(ctx, jobservice.NewActionPendingJobsParams().WithJobType(kind).WithActionRequest(&models.ActionRequest{Action: action}))
		return err
	}
	if err := pause("GARBAGE_COLLECTION", "pause"); err != nil {
		t.Fatal(err)
	}
	gc1, _, _ := q.Enqueue(ctx, jobs.Request{Kind: "GARBAGE_COLLECTION"})
	queues, err := h.admin.Jobservice.ListJobQueues(ctx, jobservice.NewListJobQueuesParams())
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]*models.JobQueue{}
	for _, jq := range queues.Payload {
		byType[jq.JobType] = jq
	}
	if gq := byType["GARBAGE_COLLECTION"]; gq == nil || !gq.Paused || gq.Count != 1 || byType["WEBHOOK"] == nil || byType["SCHEDULER"] == nil {
		t.Errorf("queues: %+v", queues.Payload)
	}
	if err := pause("GARBAGE_COLLECTION", "stop"); err != nil {
		t.Fatal(err)
	}
	if i, _ := q.Get(ctx, gc1); i.State != jobs.Stopped {
		t.Errorf("a stopped queue's job: %+v", i)
	}
	if err := pause("GARBAGE_COLLECTION", "resume"); err != nil {
		t.Fatal(err)
	}
	if err := pause("NO_SUCH_KIND", "pause"); err == nil {
		t.Error("pausing an unknown queue")
	}
	if status, body := h.raw(t, "admin", "PUT", "/jobservice/queues/all", []byte(`{"action":"explode"}`)); status != 400 {
		t.Errorf("bad action: %d %s", status, body)
	}

	// Stop the running job; read its log.
	if _, err := h.admin.Jobservice.StopRunningJob(ctx, jobservice.NewStopRunningJobParams().WithJobID(strconv.FormatInt(id, 10))); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if i, _ := q.Get(ctx, id); i.State == jobs.Stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped job did not stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, err := h.admin.Jobservice.ActionGetJobLog(ctx, jobservice.NewActionGetJobLogParams().WithJobID(strconv.FormatInt(id, 10)))
	if err != nil || !strings.Contains(log.Payload, "holding job=") || !strings.Contains(log.Payload, "[INFO] [attempt 1] stopped") {
		t.Errorf("log: %+v %v", log, err)
	}
	if _, err := h.admin.Jobservice.ActionGetJobLog(ctx, jobservice.NewActionGetJobLogParams().WithJobID("999999")); err == nil {
		t.Error("log of a missing job")
	}

	// Schedules.
	if _, err := q.SetSchedule(ctx, jobs.Schedule{VendorType: "GARBAGE_COLLECTION", Kind: "GARBAGE_COLLECTION", Cron: jobs.CronDaily}); err != nil {
		t.Fatal(err)
	}
	scheds, err := h.admin.Schedule.ListSchedules(ctx, schedule.NewListSchedulesParams())
	if err != nil || len(scheds.Payload) != 1 || scheds.Payload[0].VendorType != "GARBAGE_COLLECTION" || scheds.Payload[0].Cron != jobs.CronDaily {
		t.Errorf("schedules: %+v %v", scheds, err)
	}
	if err := pause("SCHEDULER", "pause"); err != nil {
		t.Fatal(err)
	}
	paused, err := h.as(t, "dev").Schedule.GetSchedulePaused(ctx, schedule.NewGetSchedulePausedParams().WithJobType("all"))
	if err != nil || !paused.Payload.Paused {
		t.Errorf("paused: %+v %v", paused, err)
	}
	if status, _ := h.raw(t, "dev", "GET", "/schedules/GC/paused", nil); status != 400 {
		t.Errorf("paused for a job type other than all: %d", status)
	}
}

// TestAuthorization is the authorization table of the job service's and
// the webhooks' endpoints: each row is one endpoint, asked by every kind
// of caller; the expected answer comes from Harbor's role matrix (package
// access) for project resources, and from Harbor's rules for system ones.
func TestAuthorization(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	callers := []string{"", "outsider", "guest", "dev", "maint", "padmin", "admin"}
	role := map[string]access.Role{"guest": access.Guest, "dev": access.Developer, "maint": access.Maintainer, "padmin": access.ProjectAdmin}
	newPolicy := func() string {
		return strconv.FormatInt(createPolicy(t, h, &models.WebhookPolicy{Name: fmt.Sprintf("p%d", time.Now().UnixNano()), Enabled: true,
			EventTypes: []string{"PUSH_ARTIFACT"}, Targets: []*models.WebhookTargetObject{{Address: "https://hooks.example.com/"}}}), 10)
	}
	policyBody, _ := json.Marshal(models.WebhookPolicy{Name: "auth", Enabled: true, EventTypes: []string{"PUSH_ARTIFACT"},
		Targets: []*models.WebhookTargetObject{{Address: "https://hooks.example.com/"}}})
	type row struct {
		method, path string
		body         []byte
		// project resource and action, or system: only administrators
		// (jobservice-monitor), or any authenticated caller.
		resource access.Resource
		action   access.Action
		system   string
		ok       int
	}
	const hook = "/projects/team/webhook"
	rows := []row{
		{method: "GET", path: hook + "/policies", resource: access.NotificationPolicy, action: access.List, ok: 200},
		{method: "POST", path: hook + "/policies", body: policyBody, resource: access.NotificationPolicy, action: access.Create, ok: 201},
		{method: "GET", path: hook + "/policies/{policy}", resource: access.NotificationPolicy, action: access.Read, ok: 200},
		{method: "PUT", path: hook + "/policies/{policy}", body: policyBody, resource: access.NotificationPolicy, action: access.Update, ok: 200},
		{method: "DELETE", path: hook + "/policies/{policy}", resource: access.NotificationPolicy, action: access.Delete, ok: 200},
		{method: "GET", path: hook + "/policies/{policy}/executions", resource: access.NotificationPolicy, action: access.Read, ok: 200},
		{method: "GET", path: hook + "/events", resource: access.NotificationPolicy, action: access.Read, ok: 200},
		{method: "GET", path: "/jobservice/pools", system: "admin", ok: 200},
		{method: "GET", path: "/jobservice/pools/all/workers", system: "admin", ok: 200},
		{method: "GET", path: "/jobservice/queues", system: "admin", ok: 200},
		{method: "PUT", path: "/jobservice/queues/WEBHOOK", body: []byte(`{"action":"resume"}`), system: "admin", ok: 200},
		{method: "PUT", path: "/jobservice/jobs/all", system: "admin", ok: 200},
		{method: "GET", path: "/jobservice/jobs/999999/log", system: "admin", ok: 404},
		{method: "GET", path: "/schedules", system: "admin", ok: 200},
		{method: "GET", path: "/schedules/all/paused", system: "authenticated", ok: 200},
	}
	for _, r := range rows {
		for _, who := range callers {
			var want int
			switch {
			case who == "":
				want = 401
			case r.system == "authenticated" || who == "admin":
				want = r.ok
			case r.system == "admin":
				want = 403
			case access.Matrix[role[who]].Has(r.resource, r.action):
				want = r.ok
			default:
				want = 403
			}
			path := strings.ReplaceAll(r.path, "{policy}", newPolicy())
			body := r.body
			if r.method == "POST" || r.method == "PUT" {
				body = []byte(strings.Replace(string(body), `"auth"`, fmt.Sprintf(`"auth-%s-%s"`, r.method, who), 1))
			}
			status, out := h.raw(t, who, r.method, path, body)
			if status != want {
				t.Errorf("%s %s as %q: %d, want %d (%.200s)", r.method, r.path, who, status, want, out)
			}
		}
	}
}
