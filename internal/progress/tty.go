package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// tty redraws one bar per task in place, ten times a second.
type tty struct {
	mu    sync.Mutex
	w     io.Writer
	tasks []*ttyTask
	drawn int // lines drawn last time
	stop  chan struct{}
	done  chan struct{}
}

func newTTY(w io.Writer) *tty {
	t := &tty{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go t.loop()
	return t
}

func (t *tty) loop() {
	defer close(t.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			t.draw()
			return
		case <-tick.C:
			t.draw()
		}
	}
}

func (t *tty) Task(id, action string, total int64) Task {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := &ttyTask{id: id, action: action, total: total, state: "waiting"}
	t.tasks = append(t.tasks, k)
	return k
}

func (t *tty) Close() {
	select {
	case <-t.stop:
	default:
		close(t.stop)
		<-t.done
	}
}

func (t *tty) draw() {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", t.drawn) // cursor up
	}
	for _, k := range t.tasks {
		b.WriteString("\x1b[2K") // clear line
		b.WriteString(k.line())
		b.WriteByte('\n')
	}
	t.drawn = len(t.tasks)
	io.WriteString(t.w, b.String())
}

type ttyTask struct {
	mu     sync.Mutex
	id     string
	action string
	total  int64
	n      int64
	state  string
}

func (k *ttyTask) Add(n int64) {
	k.mu.Lock()
	k.n += n
	k.state = "running"
	k.mu.Unlock()
}

func (k *ttyTask) Done(err error) {
	k.mu.Lock()
	k.state = "done"
	if err != nil {
		k.state = "failed: " + err.Error()
	}
	k.mu.Unlock()
}

func (k *ttyTask) Skip(reason string) {
	k.mu.Lock()
	k.state = "skip: " + reason
	k.mu.Unlock()
}

func (k *ttyTask) line() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	head := fmt.Sprintf("%-12s %-6s ", k.id, k.action)
	switch {
	case k.state == "running" && k.total > 0:
		const width = 30
		fill := int(float64(width) * float64(k.n) / float64(k.total))
		if fill > width {
			fill = width
		}
		return head + "[" + strings.Repeat("=", fill) + strings.Repeat(" ", width-fill) + "] " +
			HumanSize(k.n) + "/" + HumanSize(k.total)
	case k.state == "running":
		return head + HumanSize(k.n)
	case k.state == "done":
		return head + "done " + HumanSize(k.n)
	}
	return head + k.state
}
