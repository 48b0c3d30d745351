package jobs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// maxLine bounds one stored log line.
const maxLine = 4096

type logLine struct {
	at    time.Time
	level string
	text  string
}

// logBuffer holds an attempt's log lines until they are stored (at each
// heartbeat and when the attempt ends).
type logBuffer struct {
	job     int64
	attempt int
	max     int

	mu      sync.Mutex
	seq     int64
	lines   []logLine
	total   int
	dropped int
}

func newLogBuffer(job int64, attempt int, seq int64, max int) *logBuffer {
	return &logBuffer{job: job, attempt: attempt, seq: seq, max: max}
}

func (b *logBuffer) add(at time.Time, level, text string) {
	if len(text) > maxLine {
		text = text[:maxLine] + "... (line cut)"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total >= b.max {
		b.dropped++
		return
	}
	b.total++
	b.lines = append(b.lines, logLine{at, level, text})
}

// flush stores the pending lines in tx.
func (b *logBuffer) flush(ctx context.Context, tx *sqldb.Tx) error {
	b.mu.Lock()
	lines := b.lines
	b.lines = nil
	if b.dropped > 0 && b.total >= b.max {
		lines = append(lines, logLine{time.Now(), "WARN", fmt.Sprintf("%d more lines were not kept (at most %d per attempt)", b.dropped, b.max)})
		b.dropped = 0
	}
	seq := b.seq
	b.seq += int64(len(lines))
	b.mu.Unlock()
	// One statement per chunk of lines: a job's log costs one round trip
	// when it ends.
	for len(lines) > 0 {
		n := min(len(lines), 32)
		args := make([]any, 0, 6*n)
		for _, l := range lines[:n] {
			seq++
			args = append(args, b.job, seq, sqldb.Nanos(l.at), b.attempt, l.level, l.text)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO job_log (job_id, seq, at, attempt, level, line) VALUES (?, ?, ?, ?, ?, ?)`+
			strings.Repeat(", (?, ?, ?, ?, ?, ?)", n-1), args...); err != nil {
			return err
		}
		lines = lines[n:]
	}
	return nil
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(&logHandler{b: b}) }

// logHandler turns records into log lines: the message, then key=value
// attributes.
type logHandler struct {
	b     *logBuffer
	attrs []slog.Attr
	group string
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		sb.WriteByte(' ')
		if h.group != "" {
			sb.WriteString(h.group + ".")
		}
		sb.WriteString(a.Key)
		sb.WriteByte('=')
		v := a.Value.Resolve().String()
		if strings.ContainsAny(v, " \t\n\"=") || v == "" {
			fmt.Fprintf(&sb, "%q", v)
		} else {
			sb.WriteString(v)
		}
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	level := "INFO"
	switch {
	case r.Level >= slog.LevelError:
		level = "ERROR"
	case r.Level >= slog.LevelWarn:
		level = "WARN"
	case r.Level < slog.LevelInfo:
		level = "DEBUG"
	}
	at := r.Time
	if at.IsZero() {
		at = time.Now()
	}
	h.b.add(at, level, sb.String())
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// Log returns a job's log as text, one line per record, in Harbor's job
// log layout:
//
//	2024-05-01T10:00:00Z [INFO] [attempt 1] attempt 1 of 5 started on pool 3f2a...
func (q *Queue) Log(ctx context.Context, id int64) ([]byte, error) {
	var one int
	err := q.db.QueryRow(ctx, `SELECT 1 FROM jobs WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound(fmt.Errorf("job %d not found", id))
	}
	if err != nil {
		return nil, q.db.Wrap("job log", err)
	}
	rows, err := q.db.Query(ctx, `SELECT at, attempt, level, line FROM job_log WHERE job_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, q.db.Wrap("job log", err)
	}
	defer rows.Close()
	var buf bytes.Buffer
	for rows.Next() {
		var at int64
		var attempt int
		var level, line string
		if err := rows.Scan(&at, &attempt, &level, &line); err != nil {
			return nil, q.db.Wrap("job log", err)
		}
		fmt.Fprintf(&buf, "%s [%s] [attempt %d] %s\n", sqldb.Time(at).UTC().Format(time.RFC3339), level, attempt, line)
	}
	return buf.Bytes(), q.db.Wrap("job log", rows.Err())
}
