package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/artifact"
)

// What a run decides for each artifact, as Harbor's log marks it.
const (
	Retain    = "RETAIN"
	Delete    = "DEL"
	Immutable = "IMMUTABLE"
)

// Decision is what a run decides for one artifact, and why.
type Decision struct {
	artifact.Candidate
	Action string
	Reason string
}

// Protector tells which immutable rule, if any, protects one of an
// artifact's tags (a description of the rule, and true).
type Protector func(tags []string) (string, bool)

// Evaluate decides, at now, what becomes of the candidates of one
// repository under rules (those that apply to it), with Harbor's "or"
// algorithm: an artifact stays when at least one rule retains it; the
// others go, unless an immutable rule protects one of their tags. The
// decisions come newest push first.
func Evaluate(rules []Rule, cands []artifact.Candidate, now time.Time, protected Protector) []Decision {
	type verdict struct {
		kept    string   // the first rule's reason for keeping it
		notKept []string // each rule's reason for not keeping it
	}
	verdicts := make([]verdict, len(cands))
	for _, r := range rules {
		if r.Disabled {
			continue
		}
		var sel []int
		for i, c := range cands {
			if selectsTags(r, c.Tags) {
				sel = append(sel, i)
			} else if verdicts[i].kept == "" {
				verdicts[i].notKept = append(verdicts[i].notKept, fmt.Sprintf("rule %d does not select its tags", r.ID))
			}
		}
		kept, rank := evaluate(r, cands, sel, now)
		for _, i := range sel {
			why, ok := kept[i]
			switch {
			case ok && verdicts[i].kept == "":
				verdicts[i].kept = fmt.Sprintf("retained by %s: %s", r, why)
			case !ok && verdicts[i].kept == "":
				verdicts[i].notKept = append(verdicts[i].notKept, notKept(r, cands[i], rank[i], len(sel)))
			}
		}
	}
	out := make([]Decision, len(cands))
	for i, c := range cands {
		d := Decision{Candidate: c}
		switch v := verdicts[i]; {
		case v.kept != "":
			d.Action, d.Reason = Retain, v.kept
		default:
			why := "no rule retains it"
			if len(v.notKept) > 0 {
				why += ": " + strings.Join(v.notKept, "; ")
			}
			if rule, ok := protected(c.Tags); ok {
				d.Action, d.Reason = Immutable, "kept although "+why+", because "+rule
			} else {
				d.Action, d.Reason = Delete, why
			}
		}
		out[i] = d
	}
	slices.SortStableFunc(out, func(a, b Decision) int { return newer(a.Candidate, b.Candidate) })
	return out
}

// selectsTags reports whether every tag selector of r takes an artifact
// with tags (no selector: every artifact).
func selectsTags(r Rule, tags []string) bool {
	for _, s := range r.TagSelectors {
		if !s.SelectsTags(tags) {
			return false
		}
	}
	return true
}

// newer orders by push time, newest first, then by id (stable ties).
func newer(a, b artifact.Candidate) int {
	if c := b.PushTime.Compare(a.PushTime); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

func active(c artifact.Candidate) time.Time {
	if c.PullTime.After(c.PushTime) {
		return c.PullTime
	}
	return c.PushTime
}

// ranked orders the selected candidates by key, newest first (ties by
// push time, then id), and returns them.
func ranked(cands []artifact.Candidate, sel []int, key func(artifact.Candidate) time.Time) []int {
	out := slices.Clone(sel)
	slices.SortStableFunc(out, func(i, j int) int {
		if c := key(cands[j]).Compare(key(cands[i])); c != 0 {
			return c
		}
		return newer(cands[i], cands[j])
	})
	return out
}

func (r Rule) key() func(artifact.Candidate) time.Time {
	switch r.Template {
	case LatestPulledN:
		return func(c artifact.Candidate) time.Time { return c.PullTime }
	case LatestActiveK:
		return active
	}
	return func(c artifact.Candidate) time.Time { return c.PushTime }
}

func (r Rule) cutoff(now time.Time) time.Time {
	n, _ := r.N()
	return now.Add(-time.Duration(n) * 24 * time.Hour)
}

func day(t time.Time) string {
	if t.Unix() <= 0 {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// evaluate returns the selected candidates r retains, with why, and, for
// the templates that rank, every selected candidate's rank (from 1).
func evaluate(r Rule, cands []artifact.Candidate, sel []int, now time.Time) (map[int]string, map[int]int) {
	out := map[int]string{}
	var ranks map[int]int
	n, _ := r.N()
	switch r.Template {
	case LatestPushedK, LatestPulledN, LatestActiveK:
		ranks = make(map[int]int, len(sel))
		for rank, i := range ranked(cands, sel, r.key()) {
			ranks[i] = rank + 1
			if rank < n {
				out[i] = fmt.Sprintf("the %s most recently %s of %d", ordinal(rank+1), what(r.Template), len(sel))
			}
		}
	case NDaysSinceLastPush, LastXDays:
		cut := r.cutoff(now)
		for _, i := range sel {
			if !cands[i].PushTime.Before(cut) {
				out[i] = "pushed " + day(cands[i].PushTime) + ", within the last " + plural(n, "day")
			}
		}
	case NDaysSinceLastPull:
		cut := r.cutoff(now)
		for _, i := range sel {
			if cands[i].PullTime.Unix() > 0 && !cands[i].PullTime.Before(cut) {
				out[i] = "pulled " + day(cands[i].PullTime) + ", within the last " + plural(n, "day")
			}
		}
	case Always:
		for _, i := range sel {
			out[i] = "always retained"
		}
	}
	return out, ranks
}

func what(template string) string {
	switch template {
	case LatestPulledN:
		return "pulled"
	case LatestActiveK:
		return "pushed or pulled"
	}
	return "pushed"
}

// notKept says why r, which selects c (of selected, at rank when r
// ranks), does not retain it.
func notKept(r Rule, c artifact.Candidate, rank, selected int) string {
	n, _ := r.N()
	switch r.Template {
	case LatestPushedK, LatestPulledN, LatestActiveK:
		return fmt.Sprintf("rule %d keeps the %s most recently %s, this is the %s of %d", r.ID, plural(n, "artifact"), what(r.Template), ordinal(rank), selected)
	case NDaysSinceLastPull:
		return fmt.Sprintf("rule %d keeps those pulled within %s, this was pulled %s", r.ID, plural(n, "day"), day(c.PullTime))
	default:
		return fmt.Sprintf("rule %d keeps those pushed within %s, this was pushed %s", r.ID, plural(n, "day"), day(c.PushTime))
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
