package scanning

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// timing adds up the time a scan spends in each of its phases, for the
// line "timing: ..." its job log ends with: how long the job waited to be
// picked up, blob opens, each layer's analysis (from the open of its blob
// to the close of its stream), the layer cache's lookups and stores in the
// metadata database, matching and the report's store. Phases that run
// concurrently (layers, cache calls) add up their own time, so their sum
// may pass the wall time.
type timing struct {
	mu     sync.Mutex
	phases []string
	total  map[string]time.Duration
	count  map[string]int
	layers []time.Duration
}

func newTiming() *timing {
	return &timing{total: map[string]time.Duration{}, count: map[string]int{}}
}

type timingKey struct{}

// withTiming returns ctx carrying t.
func withTiming(ctx context.Context, t *timing) context.Context {
	return context.WithValue(ctx, timingKey{}, t)
}

// timingOf returns the timing ctx carries, or nil (whose methods do
// nothing).
func timingOf(ctx context.Context) *timing {
	t, _ := ctx.Value(timingKey{}).(*timing)
	return t
}

// add counts d in phase.
func (t *timing) add(phase string, d time.Duration) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.total[phase]; !ok {
		t.phases = append(t.phases, phase)
	}
	t.total[phase] += d
	t.count[phase]++
}

// since counts the time since t0 in phase.
func (t *timing) since(phase string, t0 time.Time) { t.add(phase, time.Since(t0)) }

// layer records layer i's analysis time.
func (t *timing) layer(i int, d time.Duration) {
	if t == nil {
		return
	}
	t.mu.Lock()
	for len(t.layers) <= i {
		t.layers = append(t.layers, 0)
	}
	t.layers[i] = d
	t.mu.Unlock()
	t.add("layers", d)
}

// String reads "pickup 12ms, blob open 1ms (5), layers 800ms (5: 10ms
// 400ms ...), ...".
func (t *timing) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for i, p := range t.phases {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", p, ms(t.total[p]))
		switch {
		case p == "layers":
			var each []string
			for _, d := range t.layers {
				each = append(each, ms(d))
			}
			fmt.Fprintf(&b, " (%d: %s)", len(t.layers), strings.Join(each, " "))
		case t.count[p] > 1:
			fmt.Fprintf(&b, " (%d)", t.count[p])
		}
	}
	return b.String()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}
