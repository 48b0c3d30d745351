package retention

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/selector"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	daysAgo := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	// a..d pushed 1, 5, 10 and 20 days ago; b and d pulled recently; u is
	// untagged and old.
	cands := []artifact.Candidate{
		{ID: 1, Digest: "a", Tags: []string{"v1.0"}, PushTime: daysAgo(1)},
		{ID: 2, Digest: "b", Tags: []string{"v0.9", "latest"}, PushTime: daysAgo(5), PullTime: daysAgo(2)},
		{ID: 3, Digest: "c", Tags: []string{"dev-1"}, PushTime: daysAgo(10)},
		{ID: 4, Digest: "d", Tags: []string{"v0.1"}, PushTime: daysAgo(20), PullTime: daysAgo(1)},
		{ID: 5, Digest: "u", PushTime: daysAgo(30)},
	}
	all := selector.Selector{Kind: selector.Kind, Decoration: selector.Matches, Pattern: "**"}
	tagged := selector.Selector{Kind: selector.Kind, Decoration: selector.Matches, Pattern: "**", Extras: `{"untagged":false}`}
	vOnly := selector.Selector{Kind: selector.Kind, Decoration: selector.Matches, Pattern: "v*", Extras: `{"untagged":false}`}
	rule := func(id int, template string, n any, sel selector.Selector) Rule {
		r := Rule{ID: id, Action: "retain", Template: template, TagSelectors: []selector.Selector{sel}}
		if n != nil {
			r.Params = map[string]any{template: n}
		}
		return r
	}
	none := func([]string) (string, bool) { return "", false }
	for _, tc := range []struct {
		name      string
		rules     []Rule
		protected Protector
		want      map[string]string // digest -> action
	}{
		{"latestPushedK", []Rule{rule(1, LatestPushedK, 2.0, all)}, none,
			map[string]string{"a": Retain, "b": Retain, "c": Delete, "d": Delete, "u": Delete}},
		{"latestPulledN", []Rule{rule(1, LatestPulledN, 1.0, all)}, none,
			map[string]string{"a": Delete, "b": Delete, "c": Delete, "d": Retain, "u": Delete}},
		{"nDaysSinceLastPush", []Rule{rule(1, NDaysSinceLastPush, 7.0, all)}, none,
			map[string]string{"a": Retain, "b": Retain, "c": Delete, "d": Delete, "u": Delete}},
		{"nDaysSinceLastPull", []Rule{rule(1, NDaysSinceLastPull, "3", all)}, none,
			map[string]string{"a": Delete, "b": Retain, "c": Delete, "d": Retain, "u": Delete}},
		{"always, tagged only: untagged goes", []Rule{rule(1, Always, nil, tagged)}, none,
			map[string]string{"a": Retain, "b": Retain, "c": Retain, "d": Retain, "u": Delete}},
		{"or of two rules", []Rule{rule(1, LatestPushedK, 1.0, vOnly), rule(2, NDaysSinceLastPull, 3.0, all)}, none,
			map[string]string{"a": Retain, "b": Retain, "c": Delete, "d": Retain, "u": Delete}},
		{"excludes", []Rule{rule(1, Always, nil, selector.Selector{Kind: selector.Kind, Decoration: selector.Excludes, Pattern: "dev-*", Extras: `{"untagged":false}`})}, none,
			map[string]string{"a": Retain, "b": Retain, "c": Delete, "d": Retain, "u": Delete}},
		{"disabled rules retain nothing", []Rule{{ID: 1, Disabled: true, Template: Always, TagSelectors: []selector.Selector{all}}}, none,
			map[string]string{"a": Delete, "b": Delete, "c": Delete, "d": Delete, "u": Delete}},
		{"immutable tags are never deleted", []Rule{rule(1, LatestPushedK, 1.0, all)},
			func(tags []string) (string, bool) {
				for _, tg := range tags {
					if strings.HasPrefix(tg, "dev-") {
						return "immutable rule 7", true
					}
				}
				return "", false
			},
			map[string]string{"a": Retain, "b": Delete, "c": Immutable, "d": Delete, "u": Delete}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			ds := Evaluate(tc.rules, cands, now, tc.protected)
			for _, d := range ds {
				got[d.Digest] = d.Action
				if d.Reason == "" {
					t.Errorf("%s: no reason given for %s", d.Digest, d.Action)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			for i := 1; i < len(ds); i++ {
				if ds[i].PushTime.After(ds[i-1].PushTime) {
					t.Errorf("decisions not newest push first: %s before %s", ds[i-1].Digest, ds[i].Digest)
				}
			}
		})
	}
}

func TestRuleN(t *testing.T) {
	for _, tc := range []struct {
		params  map[string]any
		want    int
		wantErr bool
	}{
		{map[string]any{LatestPushedK: 3.0}, 3, false},
		{map[string]any{LatestPushedK: "4"}, 4, false},
		{map[string]any{LatestPushedK: 1.5}, 0, true},
		{map[string]any{LatestPushedK: "many"}, 0, true},
		{map[string]any{LatestPushedK: -1.0}, 0, true},
		{map[string]any{}, 0, true},
	} {
		n, err := Rule{Template: LatestPushedK, Params: tc.params}.N()
		if (err != nil) != tc.wantErr || (!tc.wantErr && n != tc.want) {
			t.Errorf("N(%v) = %d, %v; want %d, error %v", tc.params, n, err, tc.want, tc.wantErr)
		}
	}
}
