package retention

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/immutable"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/webhook"
)

// The states of a planned deletion.
const (
	statePending = "pending"
	stateDeleted = "deleted"
	stateSkipped = "skipped"
	stateDryRun  = "dry-run"
)

// planned is a stored decision.
type planned struct {
	Seq int
	Decision
	State string
	Note  string
}

// run is a RETENTION job over a batch of repositories: plan them (or
// resume their stored plans), then, repository by repository, delete and
// report.
func (s *Service) run(ctx context.Context, j *jobs.Job, a runArgs) error {
	ctx = system(ctx)
	repos := a.repos()
	j.Log.Info("run retention process", "repositories", len(repos), "algorithm", "or", "dry_run", a.DryRun, "execution", a.Execution, "attempt", j.Attempt)
	for _, r := range a.Rules {
		j.Log.Info("rule: " + r.String())
	}
	plans, err := s.planBatch(ctx, j, a, repos)
	if err != nil {
		j.Log.Error("retention job: planning failed", "error", err)
		return err
	}
	for _, w := range repos {
		p := plans[w.repo]
		if p.resumed {
			left := 0
			for _, d := range p.plan {
				if d.State == statePending {
					left++
				}
			}
			j.Log.Info(fmt.Sprintf("%s: resuming the stored plan: %d of %d deletions left", w.repo, left, count(p.plan, Delete)))
		}
		if a.DryRun {
			// A dry run's plan is its outcome: stored, counted and
			// published in the transaction that planned it.
			continue
		}
		if err := s.execute(ctx, j, a, w.repo, p.plan); err != nil {
			return err
		}
		if err := s.finish(ctx, j, a, w.repo); err != nil {
			return err
		}
	}
	return nil
}

func count(plan []planned, action string) int {
	n := 0
	for _, p := range plan {
		if p.Action == action {
			n++
		}
	}
	return n
}

// repoPlan is a repository's plan and whether it was stored before this
// attempt.
type repoPlan struct {
	plan    []planned
	resumed bool
}

// planBatch loads the stored plans of a batch's repositories and decides
// and stores the others', all in one transaction: a repository's plan is
// stored before anything of it is deleted, and a rerun resumes it.
func (s *Service) planBatch(ctx context.Context, j *jobs.Job, a runArgs, repos []repoWork) (map[string]repoPlan, error) {
	stored, err := s.plannedRepos(ctx, a.Execution)
	if err != nil {
		return nil, err
	}
	rules, err := s.immutable.Rules(ctx, a.Project)
	if err != nil {
		return nil, err
	}
	out := make(map[string]repoPlan, len(repos))
	var fresh []string
	for _, w := range repos {
		if stored[w.repo] {
			plan, err := s.loadPlan(ctx, a.Execution, w.repo, "")
			if err != nil {
				return nil, err
			}
			out[w.repo] = repoPlan{plan: plan, resumed: true}
			continue
		}
		plan, err := s.decide(ctx, j, a, w, rules)
		if err != nil {
			return nil, err
		}
		out[w.repo] = repoPlan{plan: plan}
		fresh = append(fresh, w.repo)
	}
	if len(fresh) == 0 {
		return out, nil
	}
	now := sqldb.Nanos(s.db.Now())
	var raced []string
	err = s.db.Tx(ctx, "store retention plans", func(tx *sqldb.Tx) error {
		raced = raced[:0]
		for _, repo := range fresh {
			ok, err := s.storePlan(ctx, tx, a, repo, out[repo].plan, now)
			if err != nil {
				return err
			}
			if !ok {
				raced = append(raced, repo)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, repo := range raced {
		// Another attempt stored this plan first (a lost lease): use it.
		plan, err := s.loadPlan(ctx, a.Execution, repo, "")
		if err != nil {
			return nil, err
		}
		out[repo] = repoPlan{plan: plan, resumed: true}
	}
	return out, nil
}

// plannedRepos returns the repositories of an execution whose plans are
// stored.
func (s *Service) plannedRepos(ctx context.Context, exec int64) (map[string]bool, error) {
	rows, err := s.db.Query(ctx, `SELECT repository FROM retention_tasks WHERE execution_id = ?`, exec)
	if err != nil {
		return nil, s.db.Wrap("retention plans", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var repo string
		if err := rows.Scan(&repo); err != nil {
			return nil, s.db.Wrap("retention plans", err)
		}
		out[repo] = true
	}
	return out, s.db.Wrap("retention plans", rows.Err())
}

// decide evaluates a repository's artifacts under its rules now, with
// the project's immutable rules.
func (s *Service) decide(ctx context.Context, j *jobs.Job, a runArgs, w repoWork, rules []immutable.Rule) ([]planned, error) {
	cands, err := s.artifacts.Candidates(ctx, w.repo)
	if err != nil {
		return nil, err
	}
	_, name, _ := strings.Cut(w.repo, "/")
	m := immutable.Matcher(rules)
	protect := func(tags []string) (string, bool) {
		for t, r := range m.Protected(name, tags) {
			return fmt.Sprintf("its tag %s is protected by %s", t, r), true
		}
		return "", false
	}
	decisions := Evaluate(w.rules, cands, s.db.Now(), protect)
	plan := make([]planned, len(decisions))
	for i, d := range decisions {
		plan[i] = planned{Seq: i, Decision: d}
		switch {
		case d.Action != Delete:
		case a.DryRun:
			plan[i].State = stateDryRun
		default:
			plan[i].State = statePending
		}
	}
	verb := "delete"
	if a.DryRun {
		verb = "would delete (dry run)"
	}
	j.Log.Info(fmt.Sprintf("%s: %d candidates; plan: retain %d, %s %d, keep %d immutable", w.repo, len(cands), count(plan, Retain), verb, count(plan, Delete), count(plan, Immutable)))
	return plan, nil
}

// decisionsPerInsert bounds the rows of one INSERT of decisions (13
// parameters each, within SQLite's and PostgreSQL's limits).
const decisionsPerInsert = 200

// storePlan stores, in tx, a repository's plan unless one is stored
// (false). A dry run's task is final at once: counted and published.
func (s *Service) storePlan(ctx context.Context, tx *sqldb.Tx, a runArgs, repo string, plan []planned, now int64) (bool, error) {
	retained := len(plan) - count(plan, Delete)
	res, err := tx.Exec(ctx, `INSERT INTO retention_tasks (execution_id, repository, planned, total, retained, published) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (execution_id, repository) DO NOTHING`, a.Execution, repo, now, len(plan), retained, a.DryRun)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	const row = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`
	for start := 0; start < len(plan); start += decisionsPerInsert {
		part := plan[start:min(start+decisionsPerInsert, len(plan))]
		var q strings.Builder
		q.WriteString(`INSERT INTO retention_decisions (execution_id, repository, seq, digest, tags, kind, push_time, pull_time, created_time, action, reason, state, note) VALUES `)
		args := make([]any, 0, 12*len(part))
		for i, p := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(row)
			tags, _ := json.Marshal(p.Tags)
			args = append(args, a.Execution, repo, p.Seq, p.Digest, string(tags), p.Type,
				sqldb.Nanos(p.PushTime), sqldb.Nanos(p.PullTime), sqldb.Nanos(p.Created), p.Action, p.Reason, p.State)
		}
		if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
			return false, err
		}
	}
	return true, nil
}

// loadPlan reads a task's stored plan (only the decisions in state, when
// state is set).
func (s *Service) loadPlan(ctx context.Context, exec int64, repo, state string) ([]planned, error) {
	q := `SELECT seq, digest, tags, kind, push_time, pull_time, created_time, action, reason, state, note FROM retention_decisions WHERE execution_id = ? AND repository = ?`
	args := []any{exec, repo}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, state)
	}
	rows, err := s.db.Query(ctx, q+` ORDER BY seq`, args...)
	if err != nil {
		return nil, s.db.Wrap("retention plan", err)
	}
	defer rows.Close()
	var out []planned
	for rows.Next() {
		var p planned
		var tags string
		var push, pull, created int64
		if err := rows.Scan(&p.Seq, &p.Digest, &tags, &p.Type, &push, &pull, &created, &p.Action, &p.Reason, &p.State, &p.Note); err != nil {
			return nil, s.db.Wrap("retention plan", err)
		}
		json.Unmarshal([]byte(tags), &p.Tags)
		p.PushTime, p.PullTime, p.Created = sqldb.Time(push), sqldb.Time(pull), sqldb.Time(created)
		out = append(out, p)
	}
	return out, s.db.Wrap("retention plan", rows.Err())
}

// execute deletes what the plan says, each artifact only if it is as it
// was planned, and records each outcome. It stops when ctx ends (the run
// was stopped); what it did stays recorded.
func (s *Service) execute(ctx context.Context, j *jobs.Job, a runArgs, repo string, plan []planned) error {
	deleted, skipped := 0, 0
	for _, p := range plan {
		if p.State != statePending {
			continue
		}
		if err := ctx.Err(); err != nil {
			j.Log.Info("retention job is stopped", "deleted", deleted, "skipped", skipped)
			return err
		}
		state, note, err := s.deleteOne(ctx, a, repo, p)
		if err != nil {
			j.Log.Error("deleting an artifact failed; the job will retry the rest of its plan", "digest", p.Digest, "error", err)
			return err
		}
		if err := s.mark(ctx, a, repo, p.Seq, state, note); err != nil {
			return err
		}
		switch state {
		case stateDeleted:
			deleted++
		case stateSkipped:
			skipped++
			j.Log.Warn("not deleted: "+note, "digest", p.Digest, "tags", strings.Join(p.Tags, ","))
		}
	}
	if deleted+skipped > 0 {
		j.Log.Info(fmt.Sprintf("%s: deleted %d artifacts, skipped %d that changed since the plan", repo, deleted, skipped))
	}
	return nil
}

// deleteOne deletes a planned artifact unless it changed since the plan.
func (s *Service) deleteOne(ctx context.Context, a runArgs, repo string, p planned) (state, note string, err error) {
	_, name, _ := strings.Cut(repo, "/")
	cur, ok, err := s.artifacts.Current(ctx, repo, p.Digest)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return stateDeleted, "already gone", nil
	}
	if !cur.Created.Equal(p.Created) {
		return stateSkipped, "pushed again after the run was planned", nil
	}
	for _, t := range cur.Tags {
		if !slices.Contains(p.Tags, t) {
			return stateSkipped, "tagged " + t + " after the run was planned", nil
		}
	}
	ref := project.Ref{ID: a.Project}
	// Accessories (signatures, SBOMs) go with their subject, first: a
	// subject deleted before them would leave them behind on a crash.
	accs, err := s.artifacts.AccessoryDigests(ctx, repo, p.Digest)
	if err != nil {
		return "", "", err
	}
	for _, acc := range accs {
		if err := s.artifacts.DeleteArtifact(ctx, lookup, ref, name, acc); err != nil && !errdefs.IsNotFound(err) {
			if errors.Is(err, errdefs.ErrFailedPrecondition) {
				return stateSkipped, "an accessory could not be deleted: " + err.Error(), nil
			}
			return "", "", err
		}
	}
	err = s.artifacts.DeleteArtifact(ctx, lookup, ref, name, p.Digest)
	switch {
	case err == nil:
		return stateDeleted, "", nil
	case errdefs.IsNotFound(err):
		return stateDeleted, "already gone", nil
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		return stateSkipped, err.Error(), nil
	}
	return "", "", err
}

func (s *Service) mark(ctx context.Context, a runArgs, repo string, seq int, state, note string) error {
	return s.db.Tx(ctx, "retention progress", func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE retention_decisions SET state = ?, note = ? WHERE execution_id = ? AND repository = ? AND seq = ?`,
			state, note, a.Execution, repo, seq)
		return err
	})
}

// finish records the task's counts and, once, raises TAG_RETENTION when
// a real run deleted something.
func (s *Service) finish(ctx context.Context, j *jobs.Job, a runArgs, repo string) error {
	plan, err := s.loadPlan(ctx, a.Execution, repo, "")
	if err != nil {
		return err
	}
	var deleted []planned
	for _, p := range plan {
		if p.Action == Delete && (p.State == stateDeleted || p.State == stateDryRun) {
			deleted = append(deleted, p)
		}
	}
	retained := len(plan) - len(deleted)
	var event *webhook.Event
	if !a.DryRun && len(deleted) > 0 && s.webhooks != nil {
		e, err := s.event(ctx, a, repo, len(plan), retained, deleted)
		if err != nil {
			return err
		}
		event = &e
	}
	err = s.db.Tx(ctx, "finish retention task", func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE retention_tasks SET retained = ?, published = TRUE WHERE execution_id = ? AND repository = ? AND published = FALSE`,
			retained, a.Execution, repo)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 || event == nil {
			return nil
		}
		return s.webhooks.PublishTx(ctx, tx, *event)
	})
	if err != nil {
		return err
	}
	j.Log.Info(fmt.Sprintf("retention of %s done: %d artifacts, %d retained, deleted %d", repo, len(plan), retained, len(deleted)))
	return nil
}

// event is Harbor's TAG_RETENTION payload for a task.
func (s *Service) event(ctx context.Context, a runArgs, repo string, total, retained int, deleted []planned) (webhook.Event, error) {
	type artifactInfo struct {
		Type       string   `json:"type"`
		Status     string   `json:"status"`
		NameAndTag string   `json:"name_tag"`
		References []string `json:"references"`
	}
	type ruleInfo struct {
		Template       string         `json:"template,omitempty"`
		Parameters     map[string]any `json:"params,omitempty"`
		TagSelectors   any            `json:"tag_selectors,omitempty"`
		ScopeSelectors map[string]any `json:"scope_selectors,omitempty"`
	}
	projectName, name, _ := strings.Cut(repo, "/")
	ret := struct {
		Total             int            `json:"total"`
		Retained          int            `json:"retained"`
		HarborHostname    string         `json:"harbor_hostname,omitempty"`
		ProjectName       string         `json:"project_name,omitempty"`
		RetentionPolicyID int64          `json:"retention_policy_id,omitempty"`
		RetentionRules    []ruleInfo     `json:"retention_rule,omitempty"`
		Status            string         `json:"result,omitempty"`
		DeletedArtifact   []artifactInfo `json:"deleted_artifact,omitempty"`
	}{Total: total, Retained: retained, HarborHostname: s.opt.Hostname, ProjectName: projectName, RetentionPolicyID: a.Policy, Status: "SUCCESS"}
	for _, r := range a.Rules {
		ri := ruleInfo{Template: r.Template, Parameters: r.Params, TagSelectors: r.TagSelectors}
		if len(r.ScopeSelectors) > 0 {
			ri.ScopeSelectors = map[string]any{}
			for k, v := range r.ScopeSelectors {
				ri.ScopeSelectors[k] = v
			}
		}
		ret.RetentionRules = append(ret.RetentionRules, ri)
	}
	for _, d := range deleted {
		nt := name + "@" + d.Digest
		if len(d.Tags) > 0 {
			nt = name + ":" + d.Tags[0]
		}
		ret.DeletedArtifact = append(ret.DeletedArtifact, artifactInfo{Type: strings.ToLower(d.Type), Status: "SUCCESS", NameAndTag: nt, References: []string{}})
	}
	b, err := json.Marshal(ret)
	if err != nil {
		return webhook.Event{}, err
	}
	return webhook.Event{Type: webhook.TagRetention, ProjectID: a.Project, Operator: a.Operator, OccurAt: s.db.Now(), Data: webhook.EventData{Retention: b}}, nil
}

// planTable renders a task's plan: a line per artifact with its
// decision, what became of it and why.
func (s *Service) planTable(ctx context.Context, exec int64, repo string) ([]byte, error) {
	plan, err := s.loadPlan(ctx, exec, repo, "")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if len(plan) == 0 {
		return buf.Bytes(), nil
	}
	fmt.Fprintf(&buf, "\nRetention plan of %s (%d artifacts):\n", repo, len(plan))
	w := tabwriter.NewWriter(&buf, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "Digest\tTag\tKind\tPushedTime\tPulledTime\tCreatedTime\tRetention\tOutcome\tReason")
	for _, p := range plan {
		outcome := p.State
		if p.Note != "" {
			outcome += ": " + p.Note
		}
		if outcome == "" {
			outcome = "kept"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Digest, strings.Join(p.Tags, ","), strings.ToLower(p.Type),
			stamp(p.PushTime), stamp(p.PullTime), stamp(p.Created), p.Action, clean(outcome), clean(p.Reason))
	}
	w.Flush()
	return buf.Bytes(), nil
}

func stamp(t time.Time) string {
	if t.Unix() <= 0 {
		return ""
	}
	return t.UTC().Format("2006/01/02 15:04:05")
}

// clean keeps a table cell on one line.
func clean(s string) string { return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s) }
