package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/syslog/syslogtest"
)

// syslogJSON waits for the first message tagged msgid from lading whose
// JSON record has each of the fields given (key, value; "*": any value).
func syslogJSON(t *testing.T, c *syslogtest.Collector, msgid string, fields ...string) map[string]any {
	t.Helper()
	var rec map[string]any
	c.Wait(t, 30*time.Second, fmt.Sprintf("%s with %q", msgid, fields), func(m string) bool {
		// <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG
		f := strings.SplitN(m, " ", 8)
		if len(f) < 8 || f[3] != "lading" || f[5] != msgid || f[6] != "-" {
			return false
		}
		rec = nil
		if err := json.Unmarshal([]byte(f[7]), &rec); err != nil {
			t.Errorf("syslog message %q is not JSON: %v", m, err)
			return false
		}
		return hasFields(rec, fields)
	})
	return rec
}

func hasFields(rec map[string]any, fields []string) bool {
	for i := 0; i+1 < len(fields); i += 2 {
		v, ok := rec[fields[i]]
		if !ok || fields[i+1] != "*" && strings.TrimSpace(jsonText(v)) != fields[i+1] {
			return false
		}
	}
	return true
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestServeLogs starts `lading serve` with a syslog collector as the
// audit log's forwarding endpoint and checks Harbor's log collector
// contract: the application, job and access logs are JSON lines on
// stderr and RFC 5424 messages at the collector (tagged app, job and
// access), and a line logged while serving a request carries its id.
func TestServeLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts lading serve; skipped with -short")
	}
	col := syslogtest.Start(t)
	root := t.TempDir()
	cfg := filepath.Join(root, "serve.yaml")
	if err := os.WriteFile(cfg, []byte(`auth: {admin_password: Harbor12345}
jobs: {poll: 100ms}
settings: {audit_log_forward_endpoint: "`+col.Addr()+`"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, root, "--config", cfg)

	// An application line from a request: a failed login names the
	// request it failed in.
	req, _ := http.NewRequest("GET", p.base+"/api/v2.0/users/current", nil)
	req.SetBasicAuth("admin", "wrong-Passw0rd")
	req.Header.Set("X-Request-Id", "serve-logs-login")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %s", resp.Status)
	}
	// A job: a manual garbage collection.
	req, _ = http.NewRequest("POST", p.base+"/api/v2.0/system/gc/schedule", strings.NewReader(`{"schedule":{"type":"Manual"},"parameters":{"dry_run":true}}`))
	req.SetBasicAuth("admin", "Harbor12345")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "serve-logs-gc")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("manual gc: %s", resp.Status)
	}

	syslogJSON(t, col, "app", "msg", "login failed", "user", "admin", "request_id", "serve-logs-login", "level", "WARN")
	syslogJSON(t, col, "app", "msg", "*", "level", "INFO") // the startup lines, at least
	job := syslogJSON(t, col, "job", "msg", "succeeded", "kind", "GARBAGE_COLLECTION", "job", "*", "attempt", "1")
	syslogJSON(t, col, "job", "msg", "*", "kind", "GARBAGE_COLLECTION", "job", jsonText(job["job"]))
	syslogJSON(t, col, "access", "msg", "api request", "request_id", "serve-logs-gc", "path", "/api/v2.0/system/gc/schedule", "status", "201")

	// stderr: every line one JSON record, the same lines.
	p.waitLog(t, regexp.MustCompile(regexp.QuoteMeta(`"msg":"succeeded"`)), 0)
	want := map[string]bool{"login failed": false, "succeeded": false, "api request": false, "serving": false}
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		msg, _ := rec["msg"].(string)
		switch {
		case msg == "login failed" && rec["request_id"] == "serve-logs-login",
			msg == "succeeded" && rec["kind"] == "GARBAGE_COLLECTION",
			msg == "api request" && rec["request_id"] == "serve-logs-gc":
			want[msg] = true
		case strings.HasPrefix(msg, "registry serving on http://"):
			want["serving"] = true
		}
	}
	for msg, seen := range want {
		if !seen {
			t.Errorf("no %q line on stderr:\n%s", msg, p.stderr.String())
		}
	}
}
