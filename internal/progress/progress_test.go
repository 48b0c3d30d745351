package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, Plain)
	k := r.Task("sha256:abcd", "pull", 2000)
	io.Copy(io.Discard, Reader(strings.NewReader(strings.Repeat("x", 2000)), k))
	k.Done(nil)
	r.Task("sha256:ef01", "pull", 10).Skip("already present")
	r.Task("sha256:9999", "push", 10).Done(errors.New("boom"))
	r.Close()
	want := "pull sha256:abcd: started (2kB)\npull sha256:abcd: done (2kB)\npull sha256:ef01: already present\npush sha256:9999: started (10B)\npush sha256:9999: failed: boom\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, JSON)
	k := r.Task("sha256:abcd", "pull", 5)
	k.Add(5)
	k.Done(nil)
	r.Close()
	var statuses []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		statuses = append(statuses, e.Status)
	}
	if strings.Join(statuses, ",") != "start,progress,done" {
		t.Errorf("statuses %v", statuses)
	}
}

func TestTTY(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, TTY)
	k := r.Task("sha256:abcd", "pull", 100)
	k.Add(50)
	r.Close()
	if !strings.Contains(buf.String(), "[===============               ] 50B/100B") {
		t.Errorf("no half-full bar in %q", buf.String())
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1kB", 2_707_725: "2.71MB", 38_287_360: "38.3MB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
