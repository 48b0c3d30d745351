package webhook

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	e := Event{Type: PushArtifact, ProjectID: 3, Operator: "alice", OccurAt: time.Unix(1700000000, 0), RequestID: "req-1",
		Data: EventData{Resources: []Resource{{Digest: "sha256:ab", Tag: "v1", ResourceURL: ResourceURL("reg.example.com", "p/app", "v1")}},
			Repository: RepositoryOf("p/app", false, time.Unix(1600000000, 0))}}
	b, ctype, err := format(e, 7, FormatDefault, "key-1")
	if err != nil || ctype != "application/json" {
		t.Fatal(err, ctype)
	}
	var p map[string]any
	json.Unmarshal(b, &p)
	if p["type"] != PushArtifact || p["occur_at"] != float64(1700000000) || p["operator"] != "alice" {
		t.Errorf("default payload: %s", b)
	}
	repo := p["event_data"].(map[string]any)["repository"].(map[string]any)
	if repo["name"] != "app" || repo["namespace"] != "p" || repo["repo_type"] != "private" || repo["date_created"] != float64(1600000000) {
		t.Errorf("repository: %v", repo)
	}
	b, ctype, err = format(e, 7, FormatCloudEvents, "key-1")
	if err != nil || ctype != "application/cloudevents+json" {
		t.Fatal(err, ctype)
	}
	json.Unmarshal(b, &p)
	want := map[string]any{"specversion": "1.0", "id": "key-1", "source": "/projects/3/webhook/policies/7", "type": "harbor.artifact.pushed",
		"datacontenttype": "application/json", "time": "2023-11-14T22:13:20Z", "requestid": "req-1", "operator": "alice"}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("CloudEvents %s = %v, want %v", k, p[k], v)
		}
	}
	for _, typ := range EventTypes {
		if _, ok := cloudEventTypes[typ]; !ok {
			t.Errorf("%s has no CloudEvents type", typ)
		}
	}
	if _, _, err := format(e, 7, "XML", "k"); err == nil {
		t.Error("unknown format accepted")
	}
	if got := ResourceURL("h", "p/a", "sha256:ab"); got != "h/p/a@sha256:ab" {
		t.Errorf("digest resource URL: %s", got)
	}
}

func TestQuotaWarningDetails(t *testing.T) {
	for _, c := range []struct {
		used, hard int64
		warn       bool
	}{{0, -1, false}, {100, 0, false}, {84, 100, false}, {85, 100, true}, {100, 100, true}, {900 << 20, 1 << 30, true}} {
		if got := QuotaWarningDetails(c.used, c.hard); (got != "") != c.warn {
			t.Errorf("QuotaWarningDetails(%d, %d) = %q", c.used, c.hard, got)
		}
	}
	if got := QuotaWarningDetails(900<<20, 1<<30); !strings.Contains(got, "quota usage reach 85%") || !strings.Contains(got, "900.0 MiB of 1.0 GiB") {
		t.Errorf("message: %s", got)
	}
}

func TestRedaction(t *testing.T) {
	d := delivery{Address: "https://hooks.example.com/in?token=abc", AuthHeader: "Bearer xyz"}
	if got := redactURL(d.Address); got != "https://hooks.example.com/in?…" {
		t.Errorf("redactURL: %s", got)
	}
	err := errors.New(`Post "https://hooks.example.com/in?token=abc": header Bearer xyz refused`)
	if got := scrub(err, d); strings.Contains(got, "abc") || strings.Contains(got, "xyz") {
		t.Errorf("scrub: %s", got)
	}
	if got := printable([]byte("ok\x00\x1b[31m\n")); strings.ContainsAny(got, "\x00\x1b\n") {
		t.Errorf("printable: %q", got)
	}
	if got := printable([]byte{0xff, 0xfe}); !strings.Contains(got, "binary") {
		t.Errorf("printable binary: %q", got)
	}
	for code, perm := range map[int]bool{400: true, 401: true, 404: true, 408: false, 409: false, 429: false, 500: false, 503: false} {
		if permanentStatus(code) != perm {
			t.Errorf("permanentStatus(%d) = %v", code, !perm)
		}
	}
}
