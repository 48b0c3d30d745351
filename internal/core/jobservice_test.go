package core_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/jobservice"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/schedule"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

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
