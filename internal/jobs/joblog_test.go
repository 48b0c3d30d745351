package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestJobLog checks that Options.JobLog receives a job's lines, its own
// and the runner's, with the job's id, kind and attempt, while the
// stored log keeps them too.
func TestJobLog(t *testing.T) {
	db := sqldbtest.SQLite(t, jobs.Migrations)
	ctx := context.Background()
	var out syncBuffer
	o := fast()
	o.JobLog = slog.New(slog.NewJSONHandler(&out, nil))
	q := jobs.New(db, o)
	q.Register(jobs.Definition{Kind: "TEST", Run: func(ctx context.Context, j *jobs.Job) error {
		j.Log.Info("working", "item", 7)
		return nil
	}})
	id, _, err := q.Enqueue(ctx, jobs.Request{Kind: "TEST"})
	if err != nil {
		t.Fatal(err)
	}
	start(t, q)
	wait(t, q, id)
	type line struct {
		Level, Msg    string
		Job           int64
		Kind          string
		Attempt, Item int
	}
	var got []line
	for _, s := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("not JSON: %q", s)
		}
		if strings.HasPrefix(l.Msg, "attempt 1 of") {
			l.Msg = "attempt 1 of"
		}
		got = append(got, l)
	}
	want := []line{
		{Level: "INFO", Msg: "attempt 1 of", Job: id, Kind: "TEST", Attempt: 1},
		{Level: "INFO", Msg: "working", Job: id, Kind: "TEST", Attempt: 1, Item: 7},
		{Level: "INFO", Msg: "succeeded", Job: id, Kind: "TEST", Attempt: 1},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("job log lines (-want +got):\n%s", d)
	}
	stored, err := q.Log(ctx, id)
	if err != nil || !strings.Contains(string(stored), "working item=7") || !strings.Contains(string(stored), "succeeded") {
		t.Errorf("stored log %q, %v", stored, err)
	}
}
