// Package progress reports the progress of blob transfers: bars redrawn in
// place on a terminal, one line per event otherwise, or JSON lines for
// machines. Reporters are safe for concurrent use; a nil Reporter is valid
// and reports nothing.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Reporter creates tasks and renders them.
type Reporter interface {
	// Task starts reporting one unit of work, such as a blob: id is short
	// (a digest prefix), action says what happens ("pull", "push",
	// "write"), total is the byte count or -1 when unknown.
	Task(id, action string, total int64) Task
	// Close flushes the output. Tasks started afterwards report nothing.
	Close()
}

// Task is one unit of work.
type Task interface {
	Add(n int64)
	// Done ends the task; err nil means success, and a task that was
	// skipped (already present) calls Skip instead.
	Done(err error)
	Skip(reason string)
}

// Mode selects a reporter.
type Mode string

// Modes.
const (
	Auto  Mode = "auto"  // TTY on a terminal, else Plain
	TTY   Mode = "tty"   // bars redrawn in place
	Plain Mode = "plain" // a line when a task starts and ends
	JSON  Mode = "json"  // a JSON object per event, one per line
	None  Mode = "none"
)

// New returns a reporter writing to w in the given mode.
func New(w io.Writer, mode Mode) Reporter {
	if mode == Auto {
		mode = Plain
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			mode = TTY
		}
	}
	switch mode {
	case TTY:
		return newTTY(w)
	case Plain:
		return &lines{w: w}
	case JSON:
		return &lines{w: w, json: true}
	}
	return Nop{}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// Nop reports nothing.
type Nop struct{}

// Task implements Reporter.
func (Nop) Task(string, string, int64) Task { return nopTask{} }

// Close implements Reporter.
func (Nop) Close() {}

type nopTask struct{}

func (nopTask) Add(int64)   {}
func (nopTask) Done(error)  {}
func (nopTask) Skip(string) {}

// Reader counts what r yields into t.
func Reader(r io.Reader, t Task) io.Reader { return &countingReader{r: r, t: t} }

type countingReader struct {
	r io.Reader
	t Task
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.t.Add(int64(n))
	}
	return n, err
}

// lines writes one line per start and end (and JSON progress ticks at most
// every second per task in JSON mode).
type lines struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

type event struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Status string `json:"status"` // start, progress, done, skip, error
	Total  int64  `json:"total,omitempty"`
	Done   int64  `json:"current,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (l *lines) emit(e event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		b, _ := json.Marshal(e)
		l.w.Write(append(b, '\n'))
		return
	}
	switch e.Status {
	case "start":
		fmt.Fprintf(l.w, "%s %s: started (%s)\n", e.Action, e.ID, size(e.Total))
	case "done":
		fmt.Fprintf(l.w, "%s %s: done (%s)\n", e.Action, e.ID, size(e.Done))
	case "skip":
		fmt.Fprintf(l.w, "%s %s: %s\n", e.Action, e.ID, e.Error)
	case "error":
		fmt.Fprintf(l.w, "%s %s: failed: %s\n", e.Action, e.ID, e.Error)
	}
}

func (l *lines) Task(id, action string, total int64) Task {
	t := &lineTask{l: l, e: event{ID: id, Action: action, Total: total}}
	return t
}

func (l *lines) Close() {}

type lineTask struct {
	l       *lines
	mu      sync.Mutex
	e       event
	started bool
	last    time.Time
}

func (t *lineTask) start() {
	if !t.started {
		t.started = true
		e := t.e
		e.Status = "start"
		t.l.emit(e)
	}
}

func (t *lineTask) Add(n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start()
	t.e.Done += n
	if t.l.json && time.Since(t.last) > time.Second {
		t.last = time.Now()
		e := t.e
		e.Status = "progress"
		t.l.emit(e)
	}
}

func (t *lineTask) Done(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start()
	e := t.e
	e.Status = "done"
	if err != nil {
		e.Status, e.Error = "error", err.Error()
	}
	t.l.emit(e)
}

func (t *lineTask) Skip(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.e
	e.Status, e.Error = "skip", reason
	t.l.emit(e)
}

func size(n int64) string {
	if n < 0 {
		return "size unknown"
	}
	return HumanSize(n)
}

// HumanSize formats a byte count the way docker does (1.2MB, 340kB).
func HumanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	s := fmt.Sprintf("%.3g", f)
	return strings.TrimSuffix(s, ".0") + units[i]
}
