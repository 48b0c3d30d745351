package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
)

// Operations of tasks.
const (
	OpCopy     = "copy"
	OpDeletion = "deletion"
)

// planArgs are a REPLICATION_PLAN job's arguments.
type planArgs struct {
	Execution int64 `json:"execution_id"`
	Policy    int64 `json:"policy_id"`
}

// scheduleArgs are a REPLICATION_SCHEDULE job's arguments.
type scheduleArgs struct {
	Policy int64 `json:"policy_id"`
}

// artifactRef is an artifact a task copies or deletes: its digest and the
// tags to give it (none: by digest only).
type artifactRef struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags,omitempty"`
}

// taskArgs are a REPLICATION job's arguments: everything the task needs,
// taken from the policy when the task was made (a policy changed or
// deleted meanwhile does not change a run). Registries are named by id;
// their credentials are read when the task runs, never stored with it.
type taskArgs struct {
	Execution    int64         `json:"execution_id"`
	Policy       int64         `json:"policy_id"`
	Operation    string        `json:"operation"`
	ResourceType string        `json:"resource_type"`
	SrcRegistry  int64         `json:"src_registry_id"`
	DstRegistry  int64         `json:"dest_registry_id"`
	SrcRepo      string        `json:"src_repository"`
	DstRepo      string        `json:"dest_repository"`
	Artifacts    []artifactRef `json:"artifacts"`
	Override     bool          `json:"override"`
	Speed        int32         `json:"speed"`
	Trigger      string        `json:"trigger"`
	Operator     string        `json:"operator,omitempty"`
}

// references lists a task's tags and untagged digests (Harbor's
// references attribute).
func (a taskArgs) references() string {
	var out []string
	for _, r := range a.Artifacts {
		if len(r.Tags) > 0 {
			out = append(out, r.Tags...)
		} else {
			out = append(out, r.Digest)
		}
	}
	return strings.Join(out, ",")
}

func (a taskArgs) items() int {
	n := 0
	for _, r := range a.Artifacts {
		n += max(len(r.Tags), 1)
	}
	return n
}

// extra is a task's attributes as Harbor shows them.
func (a taskArgs) extra() map[string]any {
	return map[string]any{
		"operation":            a.Operation,
		"resource_type":        a.ResourceType,
		"source_resource":      fmt.Sprintf("%s [%d item(s) in total]", a.SrcRepo, a.items()),
		"destination_resource": fmt.Sprintf("%s [%d item(s) in total]", a.DstRepo, a.items()),
		"references":           a.references(),
	}
}

// Start starts a run of a policy by hand (Harbor's POST
// /replication/executions) and returns the execution's id.
func (s *Service) Start(ctx context.Context, who access.Subject, policyID int64) (int64, error) {
	if err := s.access.Require(ctx, who, access.Create, access.Replication, 0); err != nil {
		return 0, err
	}
	p, err := s.policy(ctx, policyID)
	if err != nil {
		return 0, err
	}
	return s.start(ctx, p, task.TriggerManual, who.Name)
}

// scheduled is a REPLICATION_SCHEDULE job: a scheduled run.
func (s *Service) scheduled(ctx context.Context, j *jobs.Job, a scheduleArgs) error {
	p, err := s.policy(ctx, a.Policy)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !p.Enabled {
		return nil
	}
	// One run per tick: the job's key names the tick.
	id, err := s.startKeyed(ctx, p, task.TriggerSchedule, "", "replication-schedule:"+j.Key)
	switch {
	case errors.Is(err, errAlreadyStarted):
		return nil
	case err == nil:
		j.Log.Info("started a scheduled replication", "policy", p.Name, "execution", id)
	}
	return err
}

// start records an execution of p (Running while its plan lists the
// resources) and queues the plan.
func (s *Service) start(ctx context.Context, p Policy, trigger, operator string) (int64, error) {
	return s.startKeyed(ctx, p, trigger, operator, "")
}

func (s *Service) startKeyed(ctx context.Context, p Policy, trigger, operator, key string) (int64, error) {
	if !p.Enabled {
		return 0, errdefs.FailedPrecondition(fmt.Errorf("the policy %d is disabled", p.ID))
	}
	skip := false
	if p.SingleActive {
		running, err := s.running(ctx, p.ID)
		if err != nil {
			return 0, err
		}
		skip = running > 0
	}
	extra := map[string]any{}
	if operator != "" {
		extra["operator"] = operator
	}
	var id int64
	err := s.db.Tx(ctx, "start replication", func(tx *sqldb.Tx) error {
		var err error
		if id, err = s.tasks.Create(ctx, tx, VendorType, p.ID, trigger, extra); err != nil {
			return err
		}
		if skip {
			_, err = s.tasks.SetStatus(ctx, tx, id, "", task.StatusError, "Execution skipped: active replication still in progress.")
			return err
		}
		if _, err := s.tasks.SetStatus(ctx, tx, id, "", task.StatusRunning, ""); err != nil {
			return err
		}
		k := key
		if k == "" {
			k = "replication-plan:" + strconv.FormatInt(id, 10)
		}
		_, created, err := s.jobs.EnqueueTx(ctx, tx, jobs.Request{Kind: PlanKind, Args: planArgs{Execution: id, Policy: p.ID}, Key: k})
		if err == nil && !created {
			return errAlreadyStarted // a retried schedule tick: its run exists
		}
		return err
	})
	return id, err
}

var errAlreadyStarted = errors.New("this run was started already")

// running counts a policy's executions in progress.
func (s *Service) running(ctx context.Context, policy int64) (int, error) {
	list, _, err := s.tasks.Executions(ctx, VendorType, policy, query.Query{}, query.Page{Number: 1, Size: 100})
	n := 0
	for _, e := range list {
		if e.Status == task.StatusRunning || e.Status == task.StatusPending {
			n++
		}
	}
	return n, err
}

// resource is what one task replicates: artifacts of one source
// repository.
type resource struct {
	SrcRepo, DstRepo string
	Artifacts        []artifactRef
}

// plan is a REPLICATION_PLAN job: it lists the resources of a run and
// adds their tasks, handing the execution to them.
func (s *Service) plan(ctx context.Context, j *jobs.Job, a planArgs) error {
	exec, err := s.tasks.Execution(ctx, a.Execution)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if exec.Status != task.StatusRunning {
		j.Log.Info("the execution is no longer being planned", "execution", a.Execution, "status", exec.Status)
		return nil
	}
	fail := func(err error) error {
		if jobs.IsPermanent(err) || j.Attempt >= j.MaxAttempts {
			s.db.Tx(context.WithoutCancel(ctx), "replication plan failed", func(tx *sqldb.Tx) error {
				_, e := s.tasks.SetStatus(ctx, tx, a.Execution, task.StatusRunning, task.StatusError, err.Error())
				return e
			})
		}
		j.Log.Error("listing the resources to replicate failed", "error", err.Error())
		return err
	}
	p, err := s.policy(ctx, a.Policy)
	if err != nil {
		return fail(jobs.Permanent(err))
	}
	res, err := s.resources(ctx, j, p)
	if err != nil {
		if errdefs.IsInvalidArgument(err) || errdefs.IsNotFound(err) {
			err = jobs.Permanent(err)
		}
		return fail(err)
	}
	trigger := exec.Trigger
	operator, _ := exec.ExtraAttrs["operator"].(string)
	return s.db.Tx(ctx, "replication plan", func(tx *sqldb.Tx) error {
		if len(res) == 0 {
			_, err := s.tasks.SetStatus(ctx, tx, a.Execution, task.StatusRunning, task.StatusSuccess, "no resources need to be replicated")
			return err
		}
		ok, err := s.tasks.SetStatus(ctx, tx, a.Execution, task.StatusRunning, "", "")
		if err != nil || !ok {
			return err // stopped meanwhile: no tasks
		}
		for _, r := range res {
			if err := s.addTask(ctx, tx, a.Execution, p, OpCopy, r, trigger, operator); err != nil {
				return err
			}
		}
		j.Log.Info(fmt.Sprintf("%d task(s) created", len(res)), "execution", a.Execution)
		return nil
	})
}

// addTask adds a REPLICATION task to an execution in tx.
func (s *Service) addTask(ctx context.Context, tx *sqldb.Tx, execution int64, p Policy, op string, r resource, trigger, operator string) error {
	rt := endpoint.ResourceImage
	if v, _ := filters(p.Filters).value(endpoint.FilterResource); v != "" {
		rt = v
	}
	ta := taskArgs{Execution: execution, Policy: p.ID, Operation: op, ResourceType: rt, SrcRegistry: p.SrcRegistry, DstRegistry: p.DestRegistry,
		SrcRepo: r.SrcRepo, DstRepo: r.DstRepo, Artifacts: r.Artifacts, Override: p.Override, Speed: p.Speed, Trigger: trigger, Operator: operator}
	_, err := s.tasks.AddTask(ctx, tx, execution, jobs.Request{Kind: Kind, Args: ta}, ta.extra())
	return err
}

// specific returns the repositories a name pattern names exactly (no
// wildcard): then the source need not be listed (Docker Hub has no
// catalog).
func specific(pattern string) ([]string, bool) {
	if pattern == "" || strings.ContainsAny(pattern, "*?[]\\") {
		return nil, false
	}
	if !strings.ContainsAny(pattern, "{}") {
		return []string{pattern}, true
	}
	open := strings.IndexByte(pattern, '{')
	closing := strings.IndexByte(pattern, '}')
	if open < 0 || closing < open || strings.Count(pattern, "{") != 1 || strings.Count(pattern, "}") != 1 {
		return nil, false
	}
	var out []string
	for _, alt := range strings.Split(pattern[open+1:closing], ",") {
		out = append(out, pattern[:open]+strings.TrimSpace(alt)+pattern[closing+1:])
	}
	return out, true
}

// resources lists what a run of p replicates.
func (s *Service) resources(ctx context.Context, j *jobs.Job, p Policy) ([]resource, error) {
	src, err := s.side(ctx, p.SrcRegistry)
	if err != nil {
		return nil, err
	}
	fs := filters(p.Filters)
	namePattern, _ := fs.value(endpoint.FilterName)
	repos, exact := specific(namePattern)
	if !exact {
		if repos, err = src.repositories(ctx); err != nil {
			return nil, fmt.Errorf("listing the source's repositories: %w", err)
		}
	}
	atLeastTwo, err := s.inProjects(ctx, p.DestRegistry)
	if err != nil {
		return nil, err
	}
	var out []resource
	for _, repo := range repos {
		if !fs.repository(repo) {
			continue
		}
		arts, err := src.artifacts(ctx, repo)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing the artifacts of %s: %w", repo, err)
		}
		arts = fs.artifacts(arts)
		if len(arts) == 0 {
			continue
		}
		dst, err := destination(repo, p.DestNamespace, p.DestNamespaceReplaceCount, atLeastTwo)
		if err != nil {
			return nil, err
		}
		r := resource{SrcRepo: repo, DstRepo: dst}
		for _, a := range arts {
			r.Artifacts = append(r.Artifacts, artifactRef{Digest: a.Digest, Tags: a.Tags})
		}
		out = append(out, r)
	}
	j.Log.Info(fmt.Sprintf("%d repositories to replicate", len(out)), "policy", p.Name)
	return out, nil
}

// inProjects tells whether a registry keeps repositories in projects (at
// least two path components): lading and Harbor do.
func (s *Service) inProjects(ctx context.Context, id int64) (bool, error) {
	if id == 0 {
		return true, nil
	}
	r, err := s.registry(ctx, id)
	if err != nil {
		return false, err
	}
	return r.Type == endpoint.TypeHarbor, nil
}

// Stop stops an execution: its plan if it is still listing, its pending
// and running tasks.
func (s *Service) Stop(ctx context.Context, who access.Subject, id int64) error {
	if err := s.access.Require(ctx, who, access.Create, access.Replication, 0); err != nil {
		return err
	}
	if _, err := s.execution(ctx, id); err != nil {
		return err
	}
	err := s.db.Tx(ctx, "stop replication", func(tx *sqldb.Tx) error {
		_, err := s.tasks.SetStatus(ctx, tx, id, task.StatusRunning, task.StatusStopped, "stopped while listing the resources to replicate")
		return err
	})
	if err != nil {
		return err
	}
	return s.tasks.Stop(ctx, id)
}

// execution returns a replication execution.
func (s *Service) execution(ctx context.Context, id int64) (task.Execution, error) {
	e, err := s.tasks.Execution(ctx, id)
	if err == nil && e.VendorType != VendorType {
		err = errdefs.NotFound(fmt.Errorf("replication execution %d not found", id))
	}
	return e, err
}

// Execution returns an execution.
func (s *Service) Execution(ctx context.Context, who access.Subject, id int64) (task.Execution, error) {
	if err := s.access.Require(ctx, who, access.Read, access.Replication, 0); err != nil {
		return task.Execution{}, err
	}
	return s.execution(ctx, id)
}

// ExecutionFilter narrows an execution listing (Harbor's query
// parameters).
type ExecutionFilter struct {
	Policy  int64  // -1: every policy
	Status  string // Harbor's: InProgress, Succeed, Failed, Stopped (or the job states)
	Trigger string // manual, scheduled, event_based
}

// Executions lists executions, newest first.
func (s *Service) Executions(ctx context.Context, who access.Subject, f ExecutionFilter, q query.Query, page query.Page) ([]task.Execution, int64, error) {
	if err := s.access.Require(ctx, who, access.List, access.Replication, 0); err != nil {
		return nil, 0, err
	}
	if f.Trigger != "" {
		t := map[string]string{endpoint.TriggerManual: task.TriggerManual, endpoint.TriggerScheduled: task.TriggerSchedule, endpoint.TriggerEvent: task.TriggerEvent}[f.Trigger]
		if t == "" {
			t = strings.ToUpper(f.Trigger)
		}
		q.Conds = append(q.Conds, query.Cond{Key: "trigger", Op: query.Exact, Values: []any{t}})
	}
	if f.Status == "" {
		return s.tasks.Executions(ctx, VendorType, f.Policy, q, page)
	}
	// Statuses are derived from the tasks when read: filter after.
	want := map[string]string{"InProgress": task.StatusRunning, "Succeed": task.StatusSuccess, "Failed": task.StatusError, "Stopped": task.StatusStopped}[f.Status]
	if want == "" {
		want = f.Status
	}
	all, _, err := s.tasks.Executions(ctx, VendorType, f.Policy, q, query.Page{Number: 1, Size: 10000})
	if err != nil {
		return nil, 0, err
	}
	all = slices.DeleteFunc(all, func(e task.Execution) bool { return e.Status != want })
	total := int64(len(all))
	if page.Size > 0 {
		from := min((page.Number-1)*page.Size, total)
		all = all[from:min(from+page.Size, total)]
	}
	return all, total, nil
}

// Tasks lists an execution's tasks.
func (s *Service) Tasks(ctx context.Context, who access.Subject, execution int64, q query.Query, page query.Page) ([]task.Task, int64, error) {
	if err := s.access.Require(ctx, who, access.List, access.Replication, 0); err != nil {
		return nil, 0, err
	}
	if _, err := s.execution(ctx, execution); err != nil {
		return nil, 0, err
	}
	return s.tasks.Tasks(ctx, execution, q, page)
}

// TaskLog returns a task's log.
func (s *Service) TaskLog(ctx context.Context, who access.Subject, execution, taskID int64) ([]byte, error) {
	if err := s.access.Require(ctx, who, access.Read, access.Replication, 0); err != nil {
		return nil, err
	}
	if _, err := s.execution(ctx, execution); err != nil {
		return nil, err
	}
	t, err := s.tasks.Task(ctx, taskID)
	if err != nil {
		return nil, err
	}
	if t.ExecutionID != execution {
		return nil, errdefs.NotFound(fmt.Errorf("execution %d contains no task with ID %d", execution, taskID))
	}
	return s.tasks.TaskLog(ctx, taskID)
}
