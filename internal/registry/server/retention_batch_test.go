package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	lretention "github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/selector"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
)

// seedRetentionRepos writes, in one transaction, the artifact view's rows of n
// artifacts (tagged v0...) in each of repos: metadata only, enough for
// retention's planning.
func seedRetentionRepos(t testing.TB, srv *harbortest.Server, repos []string, n int) map[string][]string {
	t.Helper()
	ctx := context.Background()
	digests := map[string][]string{}
	err := srv.DB.Tx(ctx, "seed", func(tx *sqldb.Tx) error {
		for r, repo := range repos {
			for i := range n {
				m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:%064x"},"layers":[]}`, r*n+i)
				d := fmt.Sprintf("sha256:%064x", r*n+i+1<<50)
				digests[repo] = append(digests[repo], d)
				if err := srv.Core.Artifacts.ManifestPut(ctx, tx, artifact.Pushed{Repo: repo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
					Size: int64(len(m)), Content: []byte(m), Tags: []string{fmt.Sprintf("v%d", i)}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return digests
}

// TestRetentionBatches runs a dry run over more repositories than one job
// works (120: batches of 50, 50 and 20). Every repository is still a task
// with its counts and its plan in its log. Then the first batch's job runs
// again after losing the plans of ten of its repositories (as an attempt
// that died before its plans were stored would leave them): it plans
// those afresh and resumes the others' stored plans.
func TestRetentionBatches(t *testing.T) {
	srv := lifecycleServer(t)
	ctx := context.Background()
	var repos []string
	for i := range 120 {
		repos = append(repos, fmt.Sprintf("library/b%03d", i))
	}
	digests := seedRetentionRepos(t, srv, repos, 3)
	admin := srv.AdminSubject(t)
	id, err := srv.Core.Retention.Create(ctx, admin, lretention.Policy{Algorithm: "or",
		Rules: []lretention.Rule{{Action: "retain", Template: lretention.LatestPushedK, Params: map[string]any{lretention.LatestPushedK: 1.0},
			TagSelectors: []selector.Selector{{Kind: selector.Kind, Decoration: selector.Matches, Pattern: "**"}}}},
		Trigger: lretention.Trigger{Kind: "Schedule", Settings: map[string]any{"cron": ""}},
		Scope:   lretention.Scope{Level: "project", Ref: 1}})
	if err != nil {
		t.Fatal(err)
	}
	exec, err := srv.Core.Retention.Trigger(ctx, admin, id, true)
	if err != nil {
		t.Fatal(err)
	}
	if e := waitRetention(t, srv.Admin(), id, exec); e.Status != "Success" || !e.DryRun {
		t.Fatalf("execution: %+v", e)
	}
	tasks, total, err := srv.Core.Retention.Tasks(ctx, admin, id, exec, query.Page{Number: 1, Size: 200})
	if err != nil {
		t.Fatal(err)
	}
	if total != 120 || len(tasks) != 120 {
		t.Fatalf("%d tasks (total %d), want 120", len(tasks), total)
	}
	jobsOf := map[int64][]string{}
	got := map[string][2]int64{}
	for _, tk := range tasks {
		jobsOf[tk.JobID] = append(jobsOf[tk.JobID], tk.Repository)
		got[tk.Repository] = [2]int64{tk.Total, tk.Retained}
		if tk.Status != task.StatusSuccess {
			t.Errorf("task %d (%s): %s", tk.ID, tk.Repository, tk.Status)
		}
	}
	want := map[string][2]int64{}
	for _, r := range repos {
		want[strings.TrimPrefix(r, "library/")] = [2]int64{3, 1}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tasks' total and retained (-want +got):\n%s", diff)
	}
	sizes := map[int]int{}
	for _, rs := range jobsOf {
		sizes[len(rs)]++
	}
	if diff := cmp.Diff(map[int]int{50: 2, 20: 1}, sizes); diff != "" {
		t.Errorf("repositories per job (-want +got):\n%s", diff)
	}
	log, err := srv.Core.Retention.TaskLog(ctx, admin, id, exec, tasks[7].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range digests["library/"+tasks[7].Repository] {
		if !strings.Contains(string(log), d) {
			t.Errorf("the log of %s does not name %s:\n%s", tasks[7].Repository, d, log)
		}
	}

	// The first batch again, ten of its plans lost.
	first := tasks[0].JobID
	lost := jobsOf[first][:10]
	for _, name := range lost {
		for _, table := range []string{"retention_decisions", "retention_tasks"} {
			if _, err := srv.DB.Exec(ctx, `DELETE FROM `+table+` WHERE execution_id = ? AND repository = ?`, exec, "library/"+name); err != nil {
				t.Fatal(err)
			}
		}
	}
	info, err := srv.Core.Jobs.Get(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := srv.Core.Jobs.Enqueue(ctx, jobs.Request{Kind: info.Kind, Args: info.Args})
	if err != nil {
		t.Fatal(err)
	}
	waitRetentionJob(t, srv, again)
	jlog, err := srv.Core.Jobs.Log(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(jlog), "resuming the stored plan"); n != 40 {
		t.Errorf("the second attempt resumed %d plans, want 40:\n%s", n, jlog)
	}
	for _, name := range lost {
		if !strings.Contains(string(jlog), "library/"+name+": 3 candidates") {
			t.Errorf("the second attempt did not plan %s again:\n%s", name, jlog)
		}
	}
	tasks, _, err = srv.Core.Retention.Tasks(ctx, admin, id, exec, query.Page{Number: 1, Size: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if tk.Total != 3 || tk.Retained != 1 {
			t.Errorf("after the second attempt, %s: total %d retained %d", tk.Repository, tk.Total, tk.Retained)
		}
	}
}

// waitRetentionJob waits for a job to succeed.
func waitRetentionJob(t *testing.T, srv *harbortest.Server, id int64) {
	t.Helper()
	for range 600 {
		i, err := srv.Core.Jobs.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch i.State {
		case jobs.Success:
			return
		case jobs.Error, jobs.Stopped:
			t.Fatalf("job %d ended %s: %s", id, i.State, i.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("job %d did not end", id)
}
