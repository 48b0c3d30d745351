package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/auditlog"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/gc"
	immu "github.com/goharbor/go-client/pkg/sdk/v2.0/client/immutable"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/label"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/purge"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/retention"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/statistic"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry/server"
	lretention "github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/selector"
)

// lifecycleServer is a server whose jobs poll often and whose garbage
// collection has no grace window.
func lifecycleServer(t *testing.T) *harbortest.Server {
	return harbortest.Start(t, harbortest.WithConfig(func(c *server.Config) {
		c.Jobs.Poll = 50 * time.Millisecond
		zero := time.Duration(0)
		c.GC.Grace = &zero
	}))
}

func newProject(t *testing.T, a *v2.HarborAPI, name string) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := a.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: name})); err != nil {
		t.Fatalf("creating project %s: %v", name, err)
	}
	p, err := a.Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID(name))
	if err != nil {
		t.Fatal(err)
	}
	return int64(p.Payload.ProjectID)
}

// push pushes a fresh random image to repo:tag and returns its digest.
func push(t *testing.T, srv *harbortest.Server, repo, tag string) string {
	t.Helper()
	img := harbortest.Image(t)
	if err := srv.Push(context.Background(), img, repo, tag, admin, adminPW); err != nil {
		t.Fatalf("push %s:%s: %v", repo, tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// tagsOf lists repo's artifacts as digest -> tags through Harbor's client.
func tagsOf(t *testing.T, a *v2.HarborAPI, proj, repo string) map[string][]string {
	t.Helper()
	res, err := a.Artifact.ListArtifacts(context.Background(), artifact.NewListArtifactsParams().WithProjectName(proj).WithRepositoryName(repo).WithPageSize(ptr(int64(100))))
	if err != nil {
		t.Fatalf("listing %s/%s: %v", proj, repo, err)
	}
	out := map[string][]string{}
	for _, art := range res.Payload {
		out[art.Digest] = nil
		for _, tg := range art.Tags {
			out[art.Digest] = append(out[art.Digest], tg.Name)
		}
	}
	return out
}

func TestImmutableTags(t *testing.T) {
	srv := lifecycleServer(t)
	a := srv.Admin()
	ctx := context.Background()
	newProject(t, a, "imm")
	v1 := push(t, srv, "imm/app", "v1")
	push(t, srv, "imm/app", "dev")

	rule := &models.ImmutableRule{Action: "immutable", Template: "immutable_template",
		TagSelectors:   []*models.ImmutableSelector{{Kind: "doublestar", Decoration: "matches", Pattern: "v*"}},
		ScopeSelectors: map[string][]models.ImmutableSelector{"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "**"}}}}
	if _, err := a.Immutable.CreateImmuRule(ctx, immu.NewCreateImmuRuleParams().WithProjectNameOrID("imm").WithImmutableRule(rule)); err != nil {
		t.Fatalf("creating the rule: %v", err)
	}
	list, err := a.Immutable.ListImmuRules(ctx, immu.NewListImmuRulesParams().WithProjectNameOrID("imm"))
	if err != nil || len(list.Payload) != 1 {
		t.Fatalf("listing rules: %v %v", list, err)
	}
	ruleID := list.Payload[0].ID
	if got := list.Payload[0].TagSelectors[0].Pattern; got != "v*" {
		t.Errorf("rule's tag pattern = %q, want v*", got)
	}

	// Moving v1 to another manifest is refused by the registry with an
	// error naming the rule.
	err = srv.Push(ctx, harbortest.Image(t), "imm/app", "v1", admin, adminPW)
	var terr *transport.Error
	if !asTransport(err, &terr) || terr.StatusCode != 412 || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("pushing over an immutable tag: %v, want 412 naming the rule", err)
	}
	// The same manifest again changes nothing; new tags and tags the rule
	// does not match are fine.
	img, err := srv.Pull(ctx, "imm/app:v1", admin, adminPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Push(ctx, img, "imm/app", "v1", admin, adminPW); err != nil {
		t.Errorf("pushing the same manifest to v1: %v", err)
	}
	push(t, srv, "imm/app", "v2")
	push(t, srv, "imm/app", "dev")

	// Deletes through the API and the registry are refused.
	_, err = a.Artifact.DeleteTag(ctx, artifact.NewDeleteTagParams().WithProjectName("imm").WithRepositoryName("app").WithReference(v1).WithTagName("v1"))
	if statusOf(err) != 412 {
		t.Errorf("deleting tag v1 through the API: %v (status %d), want 412", err, statusOf(err))
	}
	_, err = a.Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName("imm").WithRepositoryName("app").WithReference(v1))
	if statusOf(err) != 412 {
		t.Errorf("deleting the artifact of v1 through the API: %v (status %d), want 412", err, statusOf(err))
	}
	ref, _ := name.ParseReference(srv.Host+"/imm/app@"+v1, name.Insecure)
	if err := remote.Delete(ref, adminRemote); err == nil {
		t.Errorf("deleting v1's manifest through the registry succeeded")
	}
	if got := tagsOf(t, a, "imm", "app")[v1]; !cmp.Equal(got, []string{"v1"}) {
		t.Errorf("v1's artifact has tags %v after refused changes", got)
	}

	// Listing with immutable status marks the tag.
	res, err := a.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("imm").WithRepositoryName("app").WithWithImmutableStatus(ptr(true)))
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]bool{}
	for _, art := range res.Payload {
		for _, tg := range art.Tags {
			marks[tg.Name] = tg.Immutable
		}
	}
	if diff := cmp.Diff(map[string]bool{"v1": true, "v2": true, "dev": false}, marks); diff != "" {
		t.Errorf("immutable status (-want +got):\n%s", diff)
	}

	// A disabled rule protects nothing.
	rule.ID = ruleID
	rule.Disabled = true
	if _, err := a.Immutable.UpdateImmuRule(ctx, immu.NewUpdateImmuRuleParams().WithProjectNameOrID("imm").WithImmutableRuleID(ruleID).WithImmutableRule(rule)); err != nil {
		t.Fatalf("disabling the rule: %v", err)
	}
	if err := srv.Push(ctx, harbortest.Image(t), "imm/app", "v1", admin, adminPW); err != nil {
		t.Errorf("pushing over v1 once the rule is disabled: %v", err)
	}

	// Bad rules are refused with 400.
	for _, bad := range []string{"{a,{b,{c", "v[1"} {
		r := *rule
		r.ID = 0
		r.TagSelectors = []*models.ImmutableSelector{{Kind: "doublestar", Decoration: "matches", Pattern: bad}}
		_, err := a.Immutable.CreateImmuRule(ctx, immu.NewCreateImmuRuleParams().WithProjectNameOrID("imm").WithImmutableRule(&r))
		if statusOf(err) != 400 {
			t.Errorf("rule with pattern %q: %v, want 400", bad, err)
		}
	}
}

func asTransport(err error, target **transport.Error) bool {
	for err != nil {
		if te, ok := err.(*transport.Error); ok {
			*target = te
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

var adminRemote = remote.WithAuth(&authn.Basic{Username: admin, Password: harbortest.AdminPassword})

// waitExecution polls until a retention execution ends.
func waitRetention(t *testing.T, a *v2.HarborAPI, policy, exec int64) *models.RetentionExecution {
	t.Helper()
	ctx := context.Background()
	for range 600 {
		res, err := a.Retention.ListRetentionExecutions(ctx, retention.NewListRetentionExecutionsParams().WithID(policy))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Payload {
			if e.ID == exec && e.Status != "Running" && e.Status != "Pending" && e.Status != "InProgress" {
				return e
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("retention execution %d did not end", exec)
	return nil
}

func idFromLocation(t *testing.T, loc string) int64 {
	t.Helper()
	var id int64
	if _, err := fmt.Sscan(loc[strings.LastIndexByte(loc, '/')+1:], &id); err != nil {
		t.Fatalf("location %q: %v", loc, err)
	}
	return id
}

func TestRetention(t *testing.T) {
	srv := lifecycleServer(t)
	a := srv.Admin()
	ctx := context.Background()
	pid := newProject(t, a, "ret")
	var order []string // oldest first
	for _, tag := range []string{"t1", "t2", "t3", "t4"} {
		order = append(order, push(t, srv, "ret/app", tag))
		time.Sleep(1100 * time.Millisecond) // push times a second apart
	}
	keep := push(t, srv, "ret/other", "x") // another repository, not selected
	// t1 is immutable: retention never deletes it.
	rule := &models.ImmutableRule{Action: "immutable", Template: "immutable_template",
		TagSelectors:   []*models.ImmutableSelector{{Kind: "doublestar", Decoration: "matches", Pattern: "t1"}},
		ScopeSelectors: map[string][]models.ImmutableSelector{"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "**"}}}}
	if _, err := a.Immutable.CreateImmuRule(ctx, immu.NewCreateImmuRuleParams().WithProjectNameOrID("ret").WithImmutableRule(rule)); err != nil {
		t.Fatal(err)
	}

	policy := &models.RetentionPolicy{Algorithm: "or",
		Rules: []*models.RetentionRule{{Action: "retain", Template: "latestPushedK", Params: map[string]any{"latestPushedK": 1},
			TagSelectors:   []*models.RetentionSelector{{Kind: "doublestar", Decoration: "matches", Pattern: "**"}},
			ScopeSelectors: map[string][]models.RetentionSelector{"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "app"}}}}},
		Trigger: &models.RetentionRuleTrigger{Kind: "Schedule", Settings: map[string]any{"cron": ""}},
		Scope:   &models.RetentionPolicyScope{Level: "project", Ref: pid}}
	created, err := a.Retention.CreateRetention(ctx, retention.NewCreateRetentionParams().WithPolicy(policy))
	if err != nil {
		t.Fatalf("creating the policy: %v", err)
	}
	id := idFromLocation(t, created.Location)
	got, err := a.Retention.GetRetention(ctx, retention.NewGetRetentionParams().WithID(id))
	if err != nil || got.Payload.Rules[0].Template != "latestPushedK" {
		t.Fatalf("reading the policy back: %+v %v", got, err)
	}

	before := tagsOf(t, a, "ret", "app")
	run := func(dry bool) (*models.RetentionExecution, string) {
		t.Helper()
		if _, _, err := a.Retention.TriggerRetentionExecution(ctx, retention.NewTriggerRetentionExecutionParams().WithID(id).WithBody(retention.TriggerRetentionExecutionBody{DryRun: dry})); err != nil {
			t.Fatalf("triggering (dry run %v): %v", dry, err)
		}
		list, err := a.Retention.ListRetentionExecutions(ctx, retention.NewListRetentionExecutionsParams().WithID(id))
		if err != nil || len(list.Payload) == 0 {
			t.Fatalf("executions: %v %v", list, err)
		}
		e := waitRetention(t, a, id, list.Payload[0].ID)
		tasks, err := a.Retention.ListRetentionTasks(ctx, retention.NewListRetentionTasksParams().WithID(id).WithEid(e.ID))
		if err != nil || len(tasks.Payload) != 1 {
			t.Fatalf("tasks: %v %v", tasks, err)
		}
		tk := tasks.Payload[0]
		if tk.Repository != "app" && tk.Repository != "ret/app" {
			t.Errorf("task's repository = %q", tk.Repository)
		}
		if tk.Total != 4 || tk.Retained != 2 {
			t.Errorf("task counts total=%d retained=%d, want 4 and 2 (latest and immutable)", tk.Total, tk.Retained)
		}
		log, err := a.Retention.GetRetentionTaskLog(ctx, retention.NewGetRetentionTaskLogParams().WithID(id).WithEid(e.ID).WithTid(tk.ID))
		if err != nil {
			t.Fatal(err)
		}
		return e, log.Payload
	}

	e, log := run(true)
	if e.Status != "Success" || !e.DryRun {
		t.Errorf("dry run execution: %+v", e)
	}
	if diff := cmp.Diff(before, tagsOf(t, a, "ret", "app")); diff != "" {
		t.Errorf("a dry run deleted (-before +after):\n%s", diff)
	}
	for _, d := range order {
		if !strings.Contains(log, d) {
			t.Errorf("dry run log does not mention %s:\n%s", d, log)
		}
	}

	e, log = run(false)
	if e.Status != "Success" || e.DryRun {
		t.Errorf("execution: %+v", e)
	}
	want := map[string][]string{order[0]: {"t1"}, order[3]: {"t4"}}
	if diff := cmp.Diff(want, tagsOf(t, a, "ret", "app")); diff != "" {
		t.Errorf("left after retention (-want +got):\n%s\nlog:\n%s", diff, log)
	}
	if _, ok := tagsOf(t, a, "ret", "other")[keep]; !ok {
		t.Errorf("retention deleted an artifact of a repository it does not select")
	}

	// A cron that never parses is refused.
	policy.Trigger.Settings = map[string]any{"cron": "every tuesday"}
	_, err = a.Retention.UpdateRetention(ctx, retention.NewUpdateRetentionParams().WithID(id).WithPolicy(policy))
	if statusOf(err) != 400 {
		t.Errorf("invalid cron: %v, want 400", err)
	}
}

func TestLabels(t *testing.T) {
	srv := lifecycleServer(t)
	a := srv.Admin()
	ctx := context.Background()
	pid := newProject(t, a, "lab")
	d1 := push(t, srv, "lab/app", "one")
	push(t, srv, "lab/app", "two")

	mk := func(l *models.Label) int64 {
		t.Helper()
		res, err := a.Label.CreateLabel(ctx, label.NewCreateLabelParams().WithLabel(l))
		if err != nil {
			t.Fatalf("creating label %s: %v", l.Name, err)
		}
		return idFromLocation(t, res.Location)
	}
	global := mk(&models.Label{Name: "release", Scope: "g", Color: "#00ff00"})
	local := mk(&models.Label{Name: "team-a", Scope: "p", ProjectID: pid})
	if _, err := a.Label.CreateLabel(ctx, label.NewCreateLabelParams().WithLabel(&models.Label{Name: "release", Scope: "g"})); statusOf(err) != 409 {
		t.Errorf("duplicate global label: %v, want 409", err)
	}
	res, err := a.Label.ListLabels(ctx, label.NewListLabelsParams().WithScope(ptr("p")).WithProjectID(&pid))
	if err != nil || len(res.Payload) != 1 || res.Payload[0].Name != "team-a" {
		t.Fatalf("project labels: %+v %v", res, err)
	}

	for _, id := range []int64{global, local} {
		if _, err := a.Artifact.AddLabel(ctx, artifact.NewAddLabelParams().WithProjectName("lab").WithRepositoryName("app").WithReference("one").WithLabel(&models.Label{ID: id})); err != nil {
			t.Fatalf("attaching label %d: %v", id, err)
		}
	}
	// Filter by label: only the artifact that has both.
	list, err := a.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("lab").WithRepositoryName("app").
		WithQ(ptr(fmt.Sprintf("labels=(%d %d)", global, local))).WithWithLabel(ptr(true)))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Payload) != 1 || list.Payload[0].Digest != d1 || len(list.Payload[0].Labels) != 2 {
		t.Fatalf("artifacts with both labels: %+v", list.Payload)
	}
	if _, err := a.Artifact.RemoveLabel(ctx, artifact.NewRemoveLabelParams().WithProjectName("lab").WithRepositoryName("app").WithReference("one").WithLabelID(local)); err != nil {
		t.Fatal(err)
	}
	list, err = a.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("lab").WithRepositoryName("app").WithQ(ptr(fmt.Sprintf("labels=(%d)", local))))
	if err != nil || len(list.Payload) != 0 {
		t.Errorf("artifacts with the detached label: %+v %v", list, err)
	}
	if _, err := a.Label.DeleteLabel(ctx, label.NewDeleteLabelParams().WithLabelID(global)); err != nil {
		t.Fatal(err)
	}
	list, err = a.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("lab").WithRepositoryName("app").WithWithLabel(ptr(true)))
	if err != nil {
		t.Fatal(err)
	}
	for _, art := range list.Payload {
		if len(art.Labels) != 0 {
			t.Errorf("%s keeps labels %v after the label was deleted", art.Digest, art.Labels)
		}
	}
}

// waitGC polls the history until the newest run ends.
func waitGC(t *testing.T, a *v2.HarborAPI) *models.GCHistory {
	t.Helper()
	ctx := context.Background()
	for range 600 {
		res, err := a.GC.GetGCHistory(ctx, gc.NewGetGCHistoryParams())
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Payload) > 0 {
			h := res.Payload[0]
			if h.JobStatus != "Running" && h.JobStatus != "Pending" {
				return h
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("garbage collection did not end")
	return nil
}

func TestGarbageCollectionAPI(t *testing.T) {
	srv := lifecycleServer(t)
	a := srv.Admin()
	ctx := context.Background()
	newProject(t, a, "gc")
	push(t, srv, "gc/app", "keep")
	gone := push(t, srv, "gc/app", "gone")
	img, err := srv.Pull(ctx, "gc/app@"+gone, admin, adminPW)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	layer, _ := layers[0].Digest()
	// Untag it: an untagged artifact that delete_untagged collects.
	if _, err := a.Artifact.DeleteTag(ctx, artifact.NewDeleteTagParams().WithProjectName("gc").WithRepositoryName("app").WithReference(gone).WithTagName("gone")); err != nil {
		t.Fatal(err)
	}
	quota := func() int64 {
		p, err := a.Project.GetProjectSummary(ctx, project.NewGetProjectSummaryParams().WithProjectNameOrID("gc"))
		if err != nil {
			t.Fatal(err)
		}
		return p.Payload.Quota.Used["storage"]
	}
	usedBefore := quota()

	runGC := func(params map[string]any) (*models.GCHistory, string) {
		t.Helper()
		_, err := a.GC.CreateGCSchedule(ctx, gc.NewCreateGCScheduleParams().WithSchedule(&models.Schedule{
			Schedule: &models.ScheduleObj{Type: "Manual"}, Parameters: params}))
		if err != nil {
			t.Fatalf("starting gc: %v", err)
		}
		h := waitGC(t, a)
		log, err := a.GC.GetGCLog(ctx, gc.NewGetGCLogParams().WithGCID(h.ID))
		if err != nil {
			t.Fatal(err)
		}
		return h, log.Payload
	}

	h, log := runGC(map[string]any{"dry_run": true, "delete_untagged": true, "workers": 2})
	if h.JobStatus != "Success" || h.JobKind != "MANUAL" || !strings.Contains(h.JobParameters, "dry_run") {
		t.Errorf("dry run history: %+v", h)
	}
	if !strings.Contains(log, gone) {
		t.Errorf("dry run log does not name the untagged artifact:\n%s", log)
	}
	if _, err := srv.Pull(ctx, "gc/app@"+gone, admin, adminPW); err != nil {
		t.Errorf("a dry run deleted the artifact: %v", err)
	}

	h, log = runGC(map[string]any{"dry_run": false, "delete_untagged": true, "workers": 3})
	if h.JobStatus != "Success" || !strings.Contains(log, "deleted untagged artifact gc/app@"+gone) || !strings.Contains(log, "deleted blob "+layer.String()) {
		t.Errorf("history: %+v, log:\n%s", h, log)
	}
	if _, err := srv.Pull(ctx, "gc/app@"+gone, admin, adminPW); err == nil {
		t.Errorf("the untagged artifact survived garbage collection")
	}
	if _, err := srv.Pull(ctx, "gc/app:keep", admin, adminPW); err != nil {
		t.Errorf("the tagged artifact is gone: %v", err)
	}
	blob, _ := name.NewDigest(srv.Host+"/gc/app@"+layer.String(), name.Insecure)
	if l, err := remote.Layer(blob, adminRemote); err == nil {
		if rc, err := l.Compressed(); err == nil {
			rc.Close()
			t.Errorf("the untagged artifact's layer %s is still served", layer)
		}
	}
	if used := quota(); used >= usedBefore {
		t.Errorf("quota used %d after gc, was %d: not recounted", used, usedBefore)
	}

	// A schedule: read back, then invalid crons refused.
	if _, err := a.GC.UpdateGCSchedule(ctx, gc.NewUpdateGCScheduleParams().WithSchedule(&models.Schedule{
		Schedule: &models.ScheduleObj{Type: "Custom", Cron: "0 0 3 * * *"}, Parameters: map[string]any{"delete_untagged": true}})); err != nil {
		t.Fatalf("scheduling gc: %v", err)
	}
	sch, err := a.GC.GetGCSchedule(ctx, gc.NewGetGCScheduleParams())
	if err != nil || sch.Payload.Schedule == nil || sch.Payload.Schedule.Cron != "0 0 3 * * *" {
		t.Errorf("schedule: %+v %v", sch, err)
	}
	for _, bad := range []string{"not a cron", "61 * * * * *", "* * * * *"} {
		_, err := a.GC.UpdateGCSchedule(ctx, gc.NewUpdateGCScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "Custom", Cron: bad}}))
		if statusOf(err) != 400 {
			t.Errorf("cron %q: %v, want 400", bad, err)
		}
	}
	// The schedule fires once its time comes (the database's clock moved a
	// day on): a run whose kind is SCHEDULE, with the schedule's parameters.
	srv.DB.SetClock(func() time.Time { return time.Now().Add(25 * time.Hour) })
	defer srv.DB.SetClock(time.Now)
	fired := false
	for range 300 {
		res, err := a.GC.GetGCHistory(ctx, gc.NewGetGCHistoryParams())
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Payload) > 0 && res.Payload[0].JobKind == "SCHEDULE" && res.Payload[0].JobStatus != "Running" && res.Payload[0].JobStatus != "Pending" {
			fired = true
			if h := res.Payload[0]; h.JobStatus != "Success" || !strings.Contains(h.JobParameters, "delete_untagged") {
				t.Errorf("scheduled run: %+v", h)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !fired {
		t.Errorf("the daily schedule did not start a run a day later")
	}
	if _, err := a.GC.UpdateGCSchedule(ctx, gc.NewUpdateGCScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "None"}})); err != nil {
		t.Fatalf("removing the schedule: %v", err)
	}
	// Only system administrators.
	if _, err := srv.Core.Identity.CreateUser(ctx, srv.AdminSubject(t), identity.UserCreate{Username: "gcdev", Email: "gcdev@example.com", Realname: "gcdev", Password: password}); err != nil {
		t.Fatal(err)
	}
	_, err = srv.API("gcdev", password).GC.GetGCHistory(ctx, gc.NewGetGCHistoryParams())
	if statusOf(err) != 403 {
		t.Errorf("a user reading gc history: %v, want 403", err)
	}
}

func TestPurgeAuditAndStatistics(t *testing.T) {
	srv := lifecycleServer(t)
	a := srv.Admin()
	ctx := context.Background()
	newProject(t, a, "pa")
	push(t, srv, "pa/one", "x")
	push(t, srv, "pa/two", "x")

	countCreates := func() int64 {
		t.Helper()
		res, err := a.Auditlog.ListAuditLogs(ctx, auditlog.NewListAuditLogsParams().WithQ(ptr("operation=create,resource_type=artifact")))
		if err != nil {
			t.Fatal(err)
		}
		return res.XTotalCount
	}
	if countCreates() != 2 {
		t.Fatalf("audit log has %d artifact creations, want 2", countCreates())
	}
	runPurge := func(params map[string]any) (*models.ExecHistory, string) {
		t.Helper()
		_, err := a.Purge.CreatePurgeSchedule(ctx, purge.NewCreatePurgeScheduleParams().WithSchedule(&models.Schedule{
			Schedule: &models.ScheduleObj{Type: "Manual"}, Parameters: params}))
		if err != nil {
			t.Fatalf("starting the purge: %v", err)
		}
		for range 600 {
			res, err := a.Purge.GetPurgeHistory(ctx, purge.NewGetPurgeHistoryParams())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Payload) > 0 && res.Payload[0].JobStatus != "Running" && res.Payload[0].JobStatus != "Pending" {
				h := res.Payload[0]
				log, err := a.Purge.GetPurgeJobLog(ctx, purge.NewGetPurgeJobLogParams().WithPurgeID(h.ID))
				if err != nil {
					t.Fatal(err)
				}
				return h, log.Payload
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the purge did not end")
		return nil, ""
	}
	// Harbor before 2.13 named operations; a dry run deletes nothing.
	h, log := runPurge(map[string]any{"audit_retention_hour": 0, "include_operations": "create,delete,pull", "dry_run": true})
	if h.JobStatus != "Success" || !strings.Contains(log, "would be purged") {
		t.Errorf("dry run: %+v\n%s", h, log)
	}
	if n := countCreates(); n != 2 {
		t.Errorf("a dry run purged: %d artifact creations left", n)
	}
	h, log = runPurge(map[string]any{"audit_retention_hour": 0, "include_event_types": "create_artifact", "dry_run": false})
	if h.JobStatus != "Success" || !strings.Contains(log, "purged") {
		t.Errorf("purge: %+v\n%s", h, log)
	}
	if n := countCreates(); n != 0 {
		t.Errorf("%d artifact creations left after the purge", n)
	}
	if _, err := a.Purge.CreatePurgeSchedule(ctx, purge.NewCreatePurgeScheduleParams().WithSchedule(&models.Schedule{
		Schedule: &models.ScheduleObj{Type: "Manual"}, Parameters: map[string]any{"include_event_types": "create_artifact"}})); statusOf(err) != 400 {
		t.Errorf("a purge without audit_retention_hour: %v, want 400", err)
	}

	st, err := a.Statistic.GetStatistic(ctx, statistic.NewGetStatisticParams())
	if err != nil {
		t.Fatal(err)
	}
	// library (public) and pa (private).
	if st.Payload.TotalProjectCount != 2 || st.Payload.PrivateRepoCount != 2 || st.Payload.TotalRepoCount != 2 || st.Payload.TotalStorageConsumption <= 0 {
		t.Errorf("statistics: %+v", st.Payload)
	}
}

// TestRetentionResume runs a retention task's job again, as a retried
// attempt after a crash would: it resumes the stored plan, so an artifact
// that became the oldest since is not deleted, an artifact pushed again
// after planning is skipped, and one already gone is recorded as deleted.
func TestRetentionResume(t *testing.T) {
	srv := lifecycleServer(t)
	a := srv.Admin()
	ctx := context.Background()
	pid := newProject(t, a, "res")
	var digests []string
	imgs := map[string]v1.Image{}
	for _, tag := range []string{"t1", "t2", "t3"} {
		img := harbortest.Image(t)
		if err := srv.Push(ctx, img, "res/app", tag, admin, adminPW); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests = append(digests, d.String())
		imgs[tag] = img
		time.Sleep(1100 * time.Millisecond)
	}
	admin := srv.AdminSubject(t)
	id, err := srv.Core.Retention.Create(ctx, admin, lretention.Policy{Algorithm: "or",
		Rules: []lretention.Rule{{Action: "retain", Template: lretention.LatestPushedK, Params: map[string]any{lretention.LatestPushedK: 1.0},
			TagSelectors: []selector.Selector{{Kind: selector.Kind, Decoration: selector.Matches, Pattern: "**"}}}},
		Trigger: lretention.Trigger{Kind: "Schedule", Settings: map[string]any{"cron": ""}},
		Scope:   lretention.Scope{Level: "project", Ref: pid}})
	if err != nil {
		t.Fatal(err)
	}
	exec, err := srv.Core.Retention.Trigger(ctx, admin, id, false)
	if err != nil {
		t.Fatal(err)
	}
	waitRetention(t, a, id, exec)
	if diff := cmp.Diff(map[string][]string{digests[2]: {"t3"}}, tagsOf(t, a, "res", "app")); diff != "" {
		t.Fatalf("after the run (-want +got):\n%s", diff)
	}

	// Meanwhile: t4 is pushed (a fresh evaluation would now delete t3),
	// t2 is pushed again; and the stored plan says t1 and t2 are still
	// to be deleted, as if the process died before recording them.
	if err := srv.Push(ctx, harbortest.Image(t), "res/app", "t4", admin.Name, adminPW); err != nil {
		t.Fatal(err)
	}
	if err := srv.Push(ctx, imgs["t2"], "res/app", "t2", admin.Name, adminPW); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.DB.Exec(ctx, `UPDATE retention_decisions SET state = 'pending' WHERE execution_id = ? AND digest IN (?, ?)`, exec, digests[0], digests[1]); err != nil {
		t.Fatal(err)
	}
	tasks, _, err := srv.Core.Retention.Tasks(ctx, admin, id, exec, query.Page{})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("tasks: %v %v", tasks, err)
	}
	info, err := srv.Core.Jobs.Get(ctx, tasks[0].JobID)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := srv.Core.Jobs.Enqueue(ctx, jobs.Request{Kind: info.Kind, Args: info.Args})
	if err != nil {
		t.Fatal(err)
	}
	for range 600 {
		i, err := srv.Core.Jobs.Get(ctx, again)
		if err != nil {
			t.Fatal(err)
		}
		if i.State == jobs.Success {
			break
		}
		if i.State == jobs.Error || i.State == jobs.Stopped {
			t.Fatalf("the second attempt ended %s: %s", i.State, i.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := tagsOf(t, a, "res", "app")
	for _, tag := range []string{"t2", "t3", "t4"} {
		found := false
		for _, tags := range got {
			found = found || slices.Contains(tags, tag)
		}
		if !found {
			t.Errorf("the resumed attempt deleted %s; left: %v", tag, got)
		}
	}
	log, err := srv.Core.Jobs.Log(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"resuming the stored plan: 2 of 2 deletions left", "pushed again after the run was planned"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the second attempt's log lacks %q:\n%s", want, log)
		}
	}
}
