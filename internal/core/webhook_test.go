package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/webhook"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-cmp/cmp"

	lwebhook "github.com/lading-dev/lading/internal/webhook"
)

// receiver is a webhook receiver: it records what it is sent, and answers
// as its path says: /ok 200, /flaky 503 to the first delivery of each
// idempotency key then 200, /huge 500 with 8 MiB of body, /hang never.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []delivered
	attempts map[string]int
	hang     chan struct{}
}

type delivered struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{attempts: map[string]int{}, hang: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		key := req.Header.Get("Idempotency-Key")
		r.mu.Lock()
		r.attempts[key]++
		n := r.attempts[key]
		r.got = append(r.got, delivered{req.URL.Path, req.Header.Clone(), body})
		r.mu.Unlock()
		switch req.URL.Path {
		case "/flaky":
			if n == 1 {
				http.Error(w, "try again later", http.StatusServiceUnavailable)
				return
			}
		case "/huge":
			w.WriteHeader(http.StatusInternalServerError)
			chunk := []byte(strings.Repeat("x", 1<<20))
			for range 8 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		case "/hang":
			select {
			case <-r.hang:
			case <-req.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() { close(r.hang); r.Close() })
	return r
}

func (r *receiver) deliveries(path string) []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivered
	for _, d := range r.got {
		if d.path == path {
			out = append(out, d)
		}
	}
	return out
}

func (r *receiver) waitFor(t *testing.T, path string, n int) []delivered {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got := r.deliveries(path); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d deliveries after 30s, want %d", path, len(r.deliveries(path)), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shape lists the key paths of a JSON document with the JSON type at
// each: "event_data.resources[].digest string".
func shape(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, b)
	}
	set := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
		case []any:
			for _, e := range x {
				walk(prefix+"[]", e)
			}
		case string:
			set[prefix+" string"] = true
		case float64:
			set[prefix+" number"] = true
		case bool:
			set[prefix+" bool"] = true
		}
	}
	walk("", v)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The payload shapes Harbor documents for an artifact event: its default
// format (src/pkg/notifier/formats/default.go) and CloudEvents 1.0
// (cloudevents.go). date_created is left out when the repository is not
// known to the artifact view, as in this test without a registry.
var (
	defaultArtifactShape = []string{
		"event_data.repository.name string",
		"event_data.repository.namespace string",
		"event_data.repository.repo_full_name string",
		"event_data.repository.repo_type string",
		"event_data.resources[].digest string",
		"event_data.resources[].resource_url string",
		"event_data.resources[].tag string",
		"occur_at number",
		"operator string",
		"type string",
	}
	cloudEventsArtifactShape = []string{
		"data.repository.name string",
		"data.repository.namespace string",
		"data.repository.repo_full_name string",
		"data.repository.repo_type string",
		"data.resources[].digest string",
		"data.resources[].resource_url string",
		"data.resources[].tag string",
		"datacontenttype string",
		"id string",
		"operator string",
		"requestid string",
		"source string",
		"specversion string",
		"time string",
		"type string",
	}
)

func createPolicy(t *testing.T, h *harness, p *models.WebhookPolicy) int64 {
	t.Helper()
	created, err := h.admin.Webhook.CreateWebhookPolicyOfProject(context.Background(), webhook.NewCreateWebhookPolicyOfProjectParams().WithProjectNameOrID("team").WithPolicy(p))
	if err != nil {
		t.Fatalf("create policy %s: %v", p.Name, err)
	}
	var id int64
	fmt.Sscanf(created.Location[strings.LastIndex(created.Location, "/")+1:], "%d", &id)
	return id
}

func TestWebhookDelivery(t *testing.T) {
	h := newHarness(t, harnessOptions{allow: []string{"127.0.0.0/8"}, timeout: 500 * time.Millisecond})
	recv := newReceiver(t)
	ctx := context.Background()
	const secret = "Bearer s3cret-token"
	plain := createPolicy(t, h, &models.WebhookPolicy{Name: "plain", Enabled: true, EventTypes: []string{"PUSH_ARTIFACT", "DELETE_ARTIFACT", "QUOTA_EXCEED"},
		Targets: []*models.WebhookTargetObject{{Type: "http", Address: recv.URL + "/ok", AuthHeader: secret}}})
	cloud := createPolicy(t, h, &models.WebhookPolicy{Name: "cloud", Enabled: true, EventTypes: []string{"PUSH_ARTIFACT"},
		Targets: []*models.WebhookTargetObject{{Type: "http", Address: recv.URL + "/cloud", PayloadFormat: "CloudEvents", SkipCertVerify: true}}})
	flaky := createPolicy(t, h, &models.WebhookPolicy{Name: "flaky", Enabled: true, EventTypes: []string{"PUSH_ARTIFACT"},
		Targets: []*models.WebhookTargetObject{{Address: recv.URL + "/flaky?token=q-secret"}}})
	createPolicy(t, h, &models.WebhookPolicy{Name: "disabled", Enabled: false, EventTypes: []string{"PUSH_ARTIFACT"},
		Targets: []*models.WebhookTargetObject{{Address: recv.URL + "/disabled"}}})
	huge := createPolicy(t, h, &models.WebhookPolicy{Name: "huge", Enabled: true, EventTypes: []string{"DELETE_ARTIFACT"},
		Targets: []*models.WebhookTargetObject{{Address: recv.URL + "/huge"}}})
	hang := createPolicy(t, h, &models.WebhookPolicy{Name: "hang", Enabled: true, EventTypes: []string{"DELETE_ARTIFACT"},
		Targets: []*models.WebhookTargetObject{{Address: recv.URL + "/hang"}}})

	const dgst = "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"
	if err := h.core.Webhooks.Artifact(ctx, lwebhook.PushArtifact, "registry.example.com", "team/app", dgst, []string{"v1"}, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := h.core.Webhooks.Artifact(ctx, lwebhook.DeleteArtifact, "registry.example.com", "team/app", dgst, nil, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := h.core.Webhooks.Quota(ctx, lwebhook.QuotaExceed, "team/app", dgst, "v2", "adding 1.0 MiB of storage would exceed the limit", "alice"); err != nil {
		t.Fatal(err)
	}
	// Events of another project, and of none, reach no policy here.
	if err := h.core.Webhooks.Artifact(ctx, lwebhook.PushArtifact, "registry.example.com", "library/app", dgst, []string{"v1"}, "alice"); err != nil {
		t.Fatal(err)
	}

	// Default format, with the auth header and an idempotency key.
	ok := recv.waitFor(t, "/ok", 3)
	var push, del, quota lwebhook.Payload
	for _, d := range ok {
		if got := d.header.Get("Authorization"); got != secret {
			t.Errorf("Authorization %q, want the policy's auth header", got)
		}
		if d.header.Get("Idempotency-Key") == "" || d.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers: %v", d.header)
		}
		var p lwebhook.Payload
		json.Unmarshal(d.body, &p)
		switch p.Type {
		case "PUSH_ARTIFACT":
			push = p
			if diff := cmp.Diff(defaultArtifactShape, shape(t, d.body)); diff != "" {
				t.Errorf("default payload shape (-Harbor's +lading's):\n%s\n%s", diff, d.body)
			}
		case "DELETE_ARTIFACT":
			del = p
		case "QUOTA_EXCEED":
			quota = p
		}
	}
	wantPush := lwebhook.Payload{Type: "PUSH_ARTIFACT", OccurAt: push.OccurAt, Operator: "alice", EventData: &lwebhook.EventData{
		Resources:  []lwebhook.Resource{{Digest: dgst, Tag: "v1", ResourceURL: "registry.example.com/team/app:v1"}},
		Repository: &lwebhook.Repository{Name: "app", Namespace: "team", RepoFullName: "team/app", RepoType: "private"},
	}}
	if diff := cmp.Diff(wantPush, push); diff != "" || push.OccurAt == 0 {
		t.Errorf("push payload (-want +got):\n%s", diff)
	}
	if del.EventData == nil || del.EventData.Resources[0].Tag != dgst || del.EventData.Resources[0].ResourceURL != "registry.example.com/team/app@"+dgst {
		t.Errorf("delete payload: %+v", del.EventData)
	}
	if quota.EventData == nil || quota.EventData.Custom["Details"] == "" || quota.EventData.Resources[0].Tag != "v2" {
		t.Errorf("quota payload: %+v", quota.EventData)
	}

	// CloudEvents 1.0.
	ce := recv.waitFor(t, "/cloud", 1)[0]
	if diff := cmp.Diff(cloudEventsArtifactShape, shape(t, ce.body)); diff != "" {
		t.Errorf("CloudEvents shape (-Harbor's +lading's):\n%s\n%s", diff, ce.body)
	}
	var env map[string]any
	json.Unmarshal(ce.body, &env)
	if env["specversion"] != "1.0" || env["type"] != "harbor.artifact.pushed" || env["source"] != fmt.Sprintf("/projects/2/webhook/policies/%d", cloud) ||
		env["id"] != ce.header.Get("Idempotency-Key") || ce.header.Get("Content-Type") != "application/cloudevents+json" {
		t.Errorf("CloudEvents envelope %v, headers %v", env, ce.header)
	}
	if _, err := time.Parse(time.RFC3339, env["time"].(string)); err != nil {
		t.Errorf("CloudEvents time: %v", err)
	}

	// A receiver that fails once gets the same delivery again, with the
	// same idempotency key; the execution ends Success with two runs.
	fl := recv.waitFor(t, "/flaky", 2)
	if k := fl[0].header.Get("Idempotency-Key"); k == "" || fl[1].header.Get("Idempotency-Key") != k || string(fl[0].body) != string(fl[1].body) {
		t.Errorf("a retry changed the delivery: %v / %v", fl[0].header, fl[1].header)
	}
	execs := waitExecutions(t, h, flaky, "Success")
	tasks, err := h.admin.Webhook.ListTasksOfWebhookExecution(ctx, webhook.NewListTasksOfWebhookExecutionParams().
		WithProjectNameOrID("team").WithWebhookPolicyID(flaky).WithExecutionID(execs[0].ID))
	if err != nil || len(tasks.Payload) != 1 || tasks.Payload[0].RunCount != 2 || tasks.Payload[0].Status != "Success" {
		t.Fatalf("tasks of the flaky delivery: %+v %v", tasks, err)
	}
	if execs[0].VendorType != "WEBHOOK" || execs[0].VendorID != flaky || execs[0].Trigger != "EVENT" || execs[0].Metrics.SuccessTaskCount != 1 ||
		execs[0].ExtraAttrs["event_type"] != "PUSH_ARTIFACT" {
		t.Errorf("execution: %+v metrics %+v", execs[0], execs[0].Metrics)
	}
	log := taskLog(t, h, flaky, execs[0].ID, tasks.Payload[0].ID)
	for _, want := range []string{"503 Service Unavailable: try again later", "retrying in", "delivered status=200"} {
		if !strings.Contains(log, want) {
			t.Errorf("delivery log lacks %q:\n%s", want, log)
		}
	}

	// A receiver answering 8 MiB, and one that hangs, fail after their
	// attempts; their logs hold at most 4 KiB of the answer, and the
	// timeout.
	for _, c := range []struct {
		policy int64
		want   string
	}{{huge, "500 Internal Server Error: xxxx"}, {hang, "Timeout"}} {
		execs := waitExecutions(t, h, c.policy, "Error")
		tasks, err := h.admin.Webhook.ListTasksOfWebhookExecution(ctx, webhook.NewListTasksOfWebhookExecutionParams().
			WithProjectNameOrID("team").WithWebhookPolicyID(c.policy).WithExecutionID(execs[0].ID))
		if err != nil || len(tasks.Payload) != 1 || tasks.Payload[0].RunCount != 3 {
			t.Fatalf("tasks: %+v %v", tasks, err)
		}
		log := taskLog(t, h, c.policy, execs[0].ID, tasks.Payload[0].ID)
		if !strings.Contains(log, c.want) || len(log) > 64<<10 {
			t.Errorf("log (%d bytes) lacks %q:\n%.2000s", len(log), c.want, log)
		}
	}

	// Nothing for the disabled policy, nothing for the other project.
	if n := len(recv.deliveries("/disabled")); n != 0 {
		t.Errorf("a disabled policy got %d deliveries", n)
	}
	if n := len(recv.deliveries("/ok")); n != 3 {
		t.Errorf("%d deliveries to /ok, want 3", n)
	}
	// Secrets never reach a log: not the auth header, not the address's
	// query.
	for _, logs := range []string{h.logs.String(), taskLog(t, h, flaky, execs[0].ID, tasks.Payload[0].ID)} {
		for _, secret := range []string{"s3cret", "q-secret"} {
			if strings.Contains(logs, secret) {
				t.Errorf("a log shows %q", secret)
			}
		}
	}
	_ = plain
}

func waitExecutions(t *testing.T, h *harness, policy int64, status string) []*models.Execution {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, err := h.admin.Webhook.ListExecutionsOfWebhookPolicy(context.Background(), webhook.NewListExecutionsOfWebhookPolicyParams().
			WithProjectNameOrID("team").WithWebhookPolicyID(policy))
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Payload) > 0 && list.Payload[0].Status == status {
			return list.Payload
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy %d: executions %+v, want one %s", policy, list.Payload, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func taskLog(t *testing.T, h *harness, policy, exec, task int64) string {
	t.Helper()
	got, err := h.admin.Webhook.GetLogsOfWebhookTask(context.Background(), webhook.NewGetLogsOfWebhookTaskParams().
		WithProjectNameOrID("team").WithWebhookPolicyID(policy).WithExecutionID(exec).WithTaskID(task))
	if err != nil {
		t.Fatal(err)
	}
	return got.Payload
}

// TestWebhookPolicies drives the policy endpoints, bad input included.
func TestWebhookPolicies(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	id := createPolicy(t, h, &models.WebhookPolicy{Name: "p1", Description: "d", Enabled: true, EventTypes: []string{"PULL_ARTIFACT"},
		Targets: []*models.WebhookTargetObject{{Type: "http", Address: "https://hooks.example.com/in", AuthHeader: "Basic eA=="}}})
	got, err := h.admin.Webhook.GetWebhookPolicyOfProject(ctx, webhook.NewGetWebhookPolicyOfProjectParams().WithProjectNameOrID("team").WithWebhookPolicyID(id))
	if err != nil {
		t.Fatal(err)
	}
	p := got.Payload
	if p.Name != "p1" || p.ProjectID != 2 || p.Creator != "admin" || !p.Enabled || len(p.Targets) != 1 || p.Targets[0].PayloadFormat != "Default" ||
		p.Targets[0].AuthHeader != "Basic eA==" || !slices.Equal(p.EventTypes, []string{"PULL_ARTIFACT"}) {
		t.Errorf("policy: %+v target %+v", p, p.Targets[0])
	}
	p.Enabled = false
	p.EventTypes = []string{"SCANNING_COMPLETED", "SCANNING_FAILED"}
	if _, err := h.admin.Webhook.UpdateWebhookPolicyOfProject(ctx, webhook.NewUpdateWebhookPolicyOfProjectParams().WithProjectNameOrID("team").WithWebhookPolicyID(id).WithPolicy(p)); err != nil {
		t.Fatal(err)
	}
	list, err := h.admin.Webhook.ListWebhookPoliciesOfProject(ctx, webhook.NewListWebhookPoliciesOfProjectParams().WithProjectNameOrID("team"))
	if err != nil || list.XTotalCount != 1 || list.Payload[0].Enabled || len(list.Payload[0].EventTypes) != 2 {
		t.Errorf("list: %+v %v", list, err)
	}
	ev, err := h.admin.Webhook.GetSupportedEventTypes(ctx, webhook.NewGetSupportedEventTypesParams().WithProjectNameOrID("team"))
	if err != nil || len(ev.Payload.EventType) != 10 || len(ev.Payload.PayloadFormats) != 1 || len(ev.Payload.PayloadFormats[0].Formats) != 2 {
		t.Errorf("events: %+v %v", ev, err)
	}

	// Bad input answers 400 (or 409) with a message naming the problem.
	target := func(addr string) string {
		return `{"name":"x","enabled":true,"event_types":["PUSH_ARTIFACT"],"targets":[{"type":"http","address":` + addr + `}]}`
	}
	for _, c := range []struct {
		body   string
		status int
		want   string
	}{
		{target(`"http://127.0.0.1:8080/hook"`), 400, "loopback"},
		{target(`"http://localhost/hook"`), 400, "loopback"},
		{target(`"http://169.254.169.254/latest/meta-data/"`), 400, "cloud metadata"},
		{target(`"http://[fd00:ec2::254]/"`), 400, "cloud metadata"},
		{target(`"http://10.0.0.8/"`), 400, "private"},
		{target(`"http://[fe80::1]/"`), 400, "link-local"},
		{target(`"file:///etc/passwd"`), 400, "scheme"},
		{target(`"http://user:pw@example.com/"`), 400, "credentials"},
		{target(`"http://example.com/\r\nX: y"`), 400, "control"},
		{target(`"http://` + strings.Repeat("a", 5000) + `/"`), 400, "long"},
		{`{"name":"x","event_types":["PUSH_ARTIFACT"],"targets":[]}`, 400, "empty notification target"},
		{`{"name":"x","event_types":[],"targets":[{"address":"https://example.com/"}]}`, 400, "empty event type"},
		{`{"name":"x","event_types":["NOPE"],"targets":[{"address":"https://example.com/"}]}`, 400, "unsupported event type"},
		{`{"name":"x","event_types":["PUSH_ARTIFACT"],"targets":[{"type":"slack","address":"https://example.com/"}]}`, 400, "unsupported target type"},
		{`{"name":"x","event_types":["PUSH_ARTIFACT"],"targets":[{"address":"https://example.com/","payload_format":"XML"}]}`, 400, "unsupported payload format"},
		{`{"name":"x","event_types":["PUSH_ARTIFACT"],"targets":[{"address":"https://example.com/","auth_header":"a\r\nb"}]}`, 400, "auth_header"},
		{`{"name":"p1","event_types":["PUSH_ARTIFACT"],"targets":[{"address":"https://example.com/"}]}`, 409, "already has"},
		{`{"name":"","event_types":["PUSH_ARTIFACT"],"targets":[{"address":"https://example.com/"}]}`, 400, "name"},
		{`not json`, 400, "request body"},
		{`{"name":"` + strings.Repeat("n", 2<<20) + `"}`, 413, "larger"},
	} {
		status, body := h.raw(t, "admin", "POST", "/projects/team/webhook/policies", []byte(c.body))
		if status != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("POST %.80s: %d %.300s, want %d about %q", c.body, status, body, c.status, c.want)
		}
	}
	for _, path := range []string{"/projects/team/webhook/policies/999", "/projects/team/webhook/policies/abc", "/projects/nope/webhook/policies/1",
		fmt.Sprintf("/projects/team/webhook/policies/%d/executions/999/tasks", id), fmt.Sprintf("/projects/team/webhook/policies/%d/executions/1/tasks/1/log", id)} {
		if status, body := h.raw(t, "admin", "GET", path, nil); status != 404 && status != 400 {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
	if _, err := h.admin.Webhook.DeleteWebhookPolicyOfProject(ctx, webhook.NewDeleteWebhookPolicyOfProjectParams().WithProjectNameOrID("team").WithWebhookPolicyID(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.admin.Webhook.GetWebhookPolicyOfProject(ctx, webhook.NewGetWebhookPolicyOfProjectParams().WithProjectNameOrID("team").WithWebhookPolicyID(id)); err == nil {
		t.Error("a deleted policy is still there")
	}
}
