package retention

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/selector"
)

// Policy is a project's retention policy, in Harbor's shape.
type Policy struct {
	ID        int64   `json:"id"`
	Algorithm string  `json:"algorithm"`
	Rules     []Rule  `json:"rules"`
	Trigger   Trigger `json:"trigger"`
	Scope     Scope   `json:"scope"`
	// Created and Updated are lading's, not in Harbor's model.
	Created time.Time `json:"-"`
	Updated time.Time `json:"-"`
}

// Scope is what a policy applies to: a project.
type Scope struct {
	Level string `json:"level"`
	Ref   int64  `json:"ref"`
}

// Trigger says when a policy runs besides manual runs: its schedule's
// cron (Harbor's six fields) in Settings["cron"], none when empty.
type Trigger struct {
	Kind       string         `json:"kind"`
	Settings   map[string]any `json:"settings"`
	References map[string]any `json:"references,omitempty"`
}

// Cron is the trigger's cron expression ("" for none).
func (t Trigger) Cron() string {
	c, _ := t.Settings["cron"].(string)
	return strings.TrimSpace(c)
}

// Rule is one retention rule: among the artifacts of the repositories its
// scope selectors take whose tags its tag selectors take, its template
// retains some.
type Rule struct {
	ID             int                            `json:"id"`
	Priority       int                            `json:"priority"`
	Disabled       bool                           `json:"disabled"`
	Action         string                         `json:"action"`
	Template       string                         `json:"template"`
	Params         map[string]any                 `json:"params"`
	TagSelectors   []selector.Selector            `json:"tag_selectors"`
	ScopeSelectors map[string][]selector.Selector `json:"scope_selectors"`
}

// Harbor's rule templates.
const (
	LatestPushedK      = "latestPushedK"
	LatestPulledN      = "latestPulledN"
	LatestActiveK      = "latestActiveK"
	NDaysSinceLastPush = "nDaysSinceLastPush"
	NDaysSinceLastPull = "nDaysSinceLastPull"
	LastXDays          = "lastXDays"
	Always             = "always"
)

// Template describes a rule template as /retentions/metadatas lists it.
type Template struct {
	RuleTemplate string  `json:"rule_template"`
	DisplayText  string  `json:"display_text"`
	Action       string  `json:"action"`
	Params       []Param `json:"params"`
}

// Param is a template's parameter.
type Param struct {
	Type     string `json:"type"`
	Unit     string `json:"unit"`
	Required bool   `json:"required"`
}

// Templates are the rule templates, in Harbor's order (its metadata lists
// the first five; latestActiveK and lastXDays are in its rule index too).
var Templates = []Template{
	{LatestPushedK, "the most recently pushed # artifacts", "retain", []Param{{"int", "COUNT", true}}},
	{LatestPulledN, "the most recently pulled # artifacts", "retain", []Param{{"int", "COUNT", true}}},
	{NDaysSinceLastPush, "pushed within the last # days", "retain", []Param{{"int", "DAYS", true}}},
	{NDaysSinceLastPull, "pulled within the last # days", "retain", []Param{{"int", "DAYS", true}}},
	{Always, "always", "retain", []Param{}},
	{LatestActiveK, "the most recently pushed or pulled # artifacts", "retain", []Param{{"int", "COUNT", true}}},
	{LastXDays, "pushed within the last # days (legacy)", "retain", []Param{{"int", "DAYS", true}}},
}

// Limits of a policy.
const (
	MaxRules     = 15
	maxSelectors = 4
	maxCount     = math.MaxInt16 - 1 // Harbor's bound on counts
	maxDays      = 36500             // a hundred years; Harbor's bound overflows time
)

func template(id string) (Template, bool) {
	for _, t := range Templates {
		if t.RuleTemplate == id {
			return t, true
		}
	}
	return Template{}, false
}

// N is the rule's parameter (the count or the days), checked.
func (r Rule) N() (int, error) {
	t, ok := template(r.Template)
	if !ok {
		return 0, errdefs.InvalidArgument(fmt.Errorf("rule template %.64q is not one of Harbor's (see /retentions/metadatas)", r.Template))
	}
	if len(t.Params) == 0 {
		return 0, nil
	}
	v, present := r.Params[r.Template]
	if !present {
		return 0, errdefs.InvalidArgument(fmt.Errorf("missing required parameter %s for rule %s", r.Template, r.Template))
	}
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, errdefs.InvalidArgument(fmt.Errorf("%s type error", r.Template))
		}
		n = f
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, errdefs.InvalidArgument(fmt.Errorf("%s type error: %.32q is not a number", r.Template, x))
		}
		n = f
	default:
		return 0, errdefs.InvalidArgument(fmt.Errorf("%s type error", r.Template))
	}
	if n != math.Trunc(n) || math.IsNaN(n) {
		return 0, errdefs.InvalidArgument(fmt.Errorf("%s must be an integer", r.Template))
	}
	if n < 0 {
		return 0, errdefs.InvalidArgument(fmt.Errorf("%s is less than zero", r.Template))
	}
	limit := float64(maxCount)
	if t.Params[0].Unit == "DAYS" {
		limit = maxDays
	}
	if n > limit {
		return 0, errdefs.InvalidArgument(fmt.Errorf("%s is too large: at most %d", r.Template, int(limit)))
	}
	return int(n), nil
}

// check validates a rule and fills Harbor's defaults.
func (r *Rule) check() error {
	if r.Action == "" {
		r.Action = "retain"
	}
	if r.Action != "retain" {
		return errdefs.InvalidArgument(fmt.Errorf("rule action %.32q: only retain is supported", r.Action))
	}
	if _, err := r.N(); err != nil {
		return err
	}
	if len(r.TagSelectors) > maxSelectors {
		return errdefs.InvalidArgument(fmt.Errorf("at most %d tag selectors per rule", maxSelectors))
	}
	for _, s := range r.TagSelectors {
		if err := selector.Check(s, selector.TagDecorations); err != nil {
			return fmt.Errorf("tag selector: %w", err)
		}
	}
	for k, ss := range r.ScopeSelectors {
		if k != "repository" {
			return errdefs.InvalidArgument(fmt.Errorf("scope selector %.32q: only repository selectors apply to a project's policy", k))
		}
		if len(ss) > maxSelectors {
			return errdefs.InvalidArgument(fmt.Errorf("at most %d repository selectors per rule", maxSelectors))
		}
		for _, s := range ss {
			if err := selector.Check(s, selector.RepoDecorations); err != nil {
				return fmt.Errorf("repository selector: %w", err)
			}
		}
	}
	if r.Priority < 0 || r.Priority > 1<<20 {
		return errdefs.InvalidArgument(fmt.Errorf("priority %d out of range", r.Priority))
	}
	return nil
}

// check validates a policy (not its project) and fills Harbor's
// defaults. Rules that are the same are a conflict, as in Harbor.
func (p *Policy) check() error {
	if p.Algorithm == "" {
		p.Algorithm = "or"
	}
	if p.Algorithm != "or" {
		return errdefs.InvalidArgument(fmt.Errorf("algorithm %.32q: only or is supported", p.Algorithm))
	}
	if p.Scope.Level != "project" {
		return errdefs.InvalidArgument(fmt.Errorf("scope %.32s is not support", p.Scope.Level))
	}
	if p.Scope.Ref <= 0 {
		return errdefs.InvalidArgument(fmt.Errorf("invalid Project id %d", p.Scope.Ref))
	}
	if len(p.Rules) > MaxRules {
		return errdefs.InvalidArgument(fmt.Errorf("only %d rules are allowed at most", MaxRules))
	}
	seen := map[string]int{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if err := r.check(); err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
		id := r.ID
		r.ID = 0
		b, _ := json.Marshal(r)
		r.ID = id
		if j, dup := seen[string(b)]; dup {
			return errdefs.Conflict(fmt.Errorf("rule %d is conflict with rule %d", i, j))
		}
		seen[string(b)] = i
		r.ID = i + 1
	}
	if p.Trigger.Kind == "" {
		p.Trigger.Kind = "Schedule"
	}
	if p.Trigger.Kind != "Schedule" {
		return errdefs.InvalidArgument(fmt.Errorf("trigger kind %.32q: only Schedule is supported", p.Trigger.Kind))
	}
	if p.Trigger.Settings == nil {
		p.Trigger.Settings = map[string]any{"cron": ""}
	}
	if c, ok := p.Trigger.Settings["cron"]; ok && c != nil {
		if _, isString := c.(string); !isString {
			return errdefs.InvalidArgument(errors.New("trigger.settings.cron must be a string"))
		}
	}
	if c := p.Trigger.Cron(); c != "" {
		if _, err := jobs.ParseCron(c); err != nil {
			return fmt.Errorf("invalid cron string for the retention schedule: %w", err)
		}
	}
	return nil
}

// repoSelectors returns a rule's repository selectors.
func (r Rule) repoSelectors() []selector.Selector { return r.ScopeSelectors["repository"] }

// Takes reports whether the rule applies to repo (its name within the
// project): enabled, and every repository selector takes it.
func (r Rule) Takes(repo string) bool {
	if r.Disabled {
		return false
	}
	for _, s := range r.repoSelectors() {
		if !s.SelectsRepository(repo) {
			return false
		}
	}
	return true
}

// String describes a rule for the log: `rule 1 (latestPushedK 3, tags
// matching "**")`.
func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule %d (%s", r.ID, r.Template)
	if n, err := r.N(); err == nil && r.Template != Always {
		fmt.Fprintf(&b, " %d", n)
	}
	for _, s := range r.TagSelectors {
		b.WriteString(", " + s.String())
	}
	for _, s := range r.repoSelectors() {
		b.WriteString(", " + s.String())
	}
	b.WriteString(")")
	return b.String()
}
