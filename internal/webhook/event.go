package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Harbor's event types.
const (
	PushArtifact       = "PUSH_ARTIFACT"
	PullArtifact       = "PULL_ARTIFACT"
	DeleteArtifact     = "DELETE_ARTIFACT"
	ScanningCompleted  = "SCANNING_COMPLETED"
	ScanningFailed     = "SCANNING_FAILED"
	ScanningStopped    = "SCANNING_STOPPED"
	QuotaExceed        = "QUOTA_EXCEED"
	QuotaWarning       = "QUOTA_WARNING"
	Replication        = "REPLICATION"
	TagRetention       = "TAG_RETENTION"
	NotifyTypeHTTP     = "http"
	FormatDefault      = "Default"
	FormatCloudEvents  = "CloudEvents"
	cloudEventsContent = "application/cloudevents+json"
)

// EventTypes are the supported event types, in Harbor's order.
var EventTypes = []string{DeleteArtifact, PullArtifact, PushArtifact, QuotaExceed, QuotaWarning, Replication, ScanningFailed, ScanningStopped, ScanningCompleted, TagRetention}

// NotifyTypes are the supported target types (Slack's is not: its
// payload is Slack's own and the receiver's address a secret in itself).
var NotifyTypes = []string{NotifyTypeHTTP}

// PayloadFormats are the supported payload formats of http targets.
var PayloadFormats = []string{FormatDefault, FormatCloudEvents}

// cloudEventTypes maps Harbor's event types to CloudEvents types, as
// Harbor does (src/pkg/notifier/formats/cloudevents.go).
var cloudEventTypes = map[string]string{
	DeleteArtifact:    "harbor.artifact.deleted",
	PullArtifact:      "harbor.artifact.pulled",
	PushArtifact:      "harbor.artifact.pushed",
	QuotaExceed:       "harbor.quota.exceeded",
	QuotaWarning:      "harbor.quota.warned",
	Replication:       "harbor.replication.status.changed",
	ScanningFailed:    "harbor.scan.failed",
	ScanningCompleted: "harbor.scan.completed",
	ScanningStopped:   "harbor.scan.stopped",
	TagRetention:      "harbor.tag_retention.finished",
}

// Event is something that happened in a project that webhooks may be told
// of. The scanning, retention and replication services raise theirs with
// Service.Publish, filling the part of Data that Harbor fills for the
// type (Scan, Retention, Replication).
type Event struct {
	Type      string
	ProjectID int64
	// Operator is who caused it ("" when lading itself did).
	Operator string
	// OccurAt defaults to now.
	OccurAt time.Time
	// RequestID ties the event to the request that caused it (the
	// CloudEvents "requestid" extension).
	RequestID string
	Data      EventData
}

// Payload is Harbor's default payload.
type Payload struct {
	Type      string     `json:"type"`
	OccurAt   int64      `json:"occur_at"`
	Operator  string     `json:"operator"`
	EventData *EventData `json:"event_data,omitempty"`
}

// EventData is Harbor's event_data.
type EventData struct {
	Resources   []Resource        `json:"resources,omitempty"`
	Repository  *Repository       `json:"repository,omitempty"`
	Replication json.RawMessage   `json:"replication,omitempty"`
	Retention   json.RawMessage   `json:"retention,omitempty"`
	Scan        json.RawMessage   `json:"scan,omitempty"`
	Custom      map[string]string `json:"custom_attributes,omitempty"`
}

// Resource is an artifact an event is about.
type Resource struct {
	Digest       string         `json:"digest,omitempty"`
	Tag          string         `json:"tag,omitempty"`
	ResourceURL  string         `json:"resource_url,omitempty"`
	ScanOverview map[string]any `json:"scan_overview,omitempty"`
	SBOMOverview map[string]any `json:"sbom_overview,omitempty"`
}

// Repository is the repository an event is about.
type Repository struct {
	DateCreated  int64  `json:"date_created,omitempty"`
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	RepoFullName string `json:"repo_full_name"`
	RepoType     string `json:"repo_type"`
}

// RepositoryOf describes repo ("PROJECT/NAME...") as Harbor's payloads do.
func RepositoryOf(repo string, public bool, created time.Time) *Repository {
	ns, name, _ := strings.Cut(repo, "/")
	typ := "private"
	if public {
		typ = "public"
	}
	r := &Repository{Name: name, Namespace: ns, RepoFullName: repo, RepoType: typ}
	if !created.IsZero() {
		r.DateCreated = created.Unix()
	}
	return r
}

// ResourceURL is Harbor's resource_url: host/repo:tag, or host/repo@digest
// when the reference is a digest.
func ResourceURL(host, repo, reference string) string {
	if strings.Contains(reference, ":") {
		return host + "/" + repo + "@" + reference
	}
	return host + "/" + repo + ":" + reference
}

// format renders an event's payload for a target: the body, its content
// type. id is the delivery's id (the CloudEvents id).
func format(e Event, policyID int64, payloadFormat, id string) ([]byte, string, error) {
	p := Payload{Type: e.Type, OccurAt: e.OccurAt.Unix(), Operator: e.Operator, EventData: &e.Data}
	switch payloadFormat {
	case FormatDefault, "":
		b, err := json.Marshal(p)
		return b, "application/json", err
	case FormatCloudEvents:
		typ, ok := cloudEventTypes[e.Type]
		if !ok {
			return nil, "", fmt.Errorf("event type %s has no CloudEvents type", e.Type)
		}
		ce := struct {
			SpecVersion     string     `json:"specversion"`
			ID              string     `json:"id"`
			Source          string     `json:"source"`
			Type            string     `json:"type"`
			DataContentType string     `json:"datacontenttype"`
			Time            string     `json:"time"`
			RequestID       string     `json:"requestid"`
			Operator        string     `json:"operator,omitempty"`
			Data            *EventData `json:"data"`
		}{"1.0", id, fmt.Sprintf("/projects/%d/webhook/policies/%d", e.ProjectID, policyID), typ, "application/json",
			e.OccurAt.UTC().Format(time.RFC3339), e.RequestID, e.Operator, &e.Data}
		b, err := json.Marshal(ce)
		return b, cloudEventsContent, err
	}
	return nil, "", fmt.Errorf("unknown payload format %q", payloadFormat)
}

// header is the delivery's headers, the secret ones included.
func header(contentType, auth, key, userAgent string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	h.Set("Idempotency-Key", key)
	h.Set("User-Agent", userAgent)
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return h
}
