package replication

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
)

// TestDestination checks the namespace replacement against the examples
// of Harbor's replaceNamespace (src/controller/replication/flow/stage.go).
func TestDestination(t *testing.T) {
	for _, tc := range []struct {
		repo, ns   string
		count      int
		atLeastTwo bool
		want       string
		wantErr    bool
	}{
		{"a/b/c/image", "", -1, false, "a/b/c/image", false},
		{"a/b/c/image", "n", -1, false, "n/image", false},
		{"a/b/c/image", "n", 0, false, "n/a/b/c/image", false},
		{"a/b/c/image", "n", 1, false, "n/b/c/image", false},
		{"a/b/c/image", "n", 2, false, "n/c/image", false},
		{"a/b/c/image", "n", 3, false, "n/image", false},
		{"a/b/c/image", "n", 4, false, "", true},
		{"library/hello", "mirror", -1, true, "mirror/hello", false},
		{"hello", "", -1, true, "", true}, // lading needs PROJECT/NAME
		{"hello", "", -1, false, "hello", false},
		{"hello", "proj", 0, true, "proj/hello", false},
		{"x/y", "a/b", 1, true, "a/b/y", false},
	} {
		got, err := destination(tc.repo, tc.ns, tc.count, tc.atLeastTwo)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("destination(%q, %q, %d) = %q, %v; want %q (error %v)", tc.repo, tc.ns, tc.count, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("destination(%q, %q, %d): error %v is not invalid argument", tc.repo, tc.ns, tc.count, err)
		}
	}
}

func TestFilters(t *testing.T) {
	arts := []endpoint.Artifact{
		{Digest: "sha256:1", Tags: []string{"v1.0", "v1.1", "latest"}, Labels: []string{"prod", "team-a"}, Type: "IMAGE"},
		{Digest: "sha256:2", Tags: []string{"v2.0"}, Labels: []string{"team-a"}, Type: "IMAGE"},
		{Digest: "sha256:3", Type: "IMAGE"}, // untagged
		{Digest: "sha256:4", Tags: []string{"chart-1"}, Type: "CHART"},
		{Digest: "sha256:5", Tags: []string{"x"}, MediaType: "application/vnd.oci.image.manifest.v1+json"},
		{Digest: "sha256:6", Tags: []string{"y"}, MediaType: "application/vnd.cncf.helm.config.v1+json"},
	}
	digests := func(list []endpoint.Artifact) map[string][]string {
		out := map[string][]string{}
		for _, a := range list {
			out[a.Digest] = a.Tags
		}
		return out
	}
	for _, tc := range []struct {
		name string
		fs   []Filter
		want map[string][]string
	}{
		{"none", nil, digests(arts)},
		{"tag v1.*", []Filter{{Type: "tag", Value: "v1.*"}}, map[string][]string{"sha256:1": {"v1.0", "v1.1"}}},
		{"tag excludes v1.*", []Filter{{Type: "tag", Value: "v1.*", Decoration: Excludes}},
			map[string][]string{"sha256:1": {"latest"}, "sha256:2": {"v2.0"}, "sha256:3": nil, "sha256:4": {"chart-1"}, "sha256:5": {"x"}, "sha256:6": {"y"}}},
		{"tag {latest,v2.0}", []Filter{{Type: "tag", Value: "{latest,v2.0}"}}, map[string][]string{"sha256:1": {"latest"}, "sha256:2": {"v2.0"}}},
		{"tag ** keeps untagged", []Filter{{Type: "tag", Value: "**"}}, digests(arts)},
		{"label prod", []Filter{{Type: "label", Value: []any{"prod"}}}, map[string][]string{"sha256:1": {"v1.0", "v1.1", "latest"}}},
		{"labels prod and team-a", []Filter{{Type: "label", Value: []any{"prod", "team-a"}}}, map[string][]string{"sha256:1": {"v1.0", "v1.1", "latest"}}},
		{"label excludes team-a", []Filter{{Type: "label", Value: []any{"team-a"}, Decoration: Excludes}},
			map[string][]string{"sha256:3": nil, "sha256:4": {"chart-1"}, "sha256:5": {"x"}, "sha256:6": {"y"}}},
		{"resource image", []Filter{{Type: "resource", Value: "image"}},
			map[string][]string{"sha256:1": {"v1.0", "v1.1", "latest"}, "sha256:2": {"v2.0"}, "sha256:3": nil, "sha256:5": {"x"}}},
		{"resource artifact", []Filter{{Type: "resource", Value: "artifact"}}, digests(arts)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.fs {
				if err := tc.fs[i].check(); err != nil {
					t.Fatal(err)
				}
			}
			got := digests(filters(tc.fs).artifacts(arts))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRepositoryFilter(t *testing.T) {
	for _, tc := range []struct {
		pattern, repo string
		want          bool
	}{
		{"", "anything/at/all", true},
		{"library/**", "library/a/b", true},
		{"library/*", "library/a/b", false},
		{"library/*", "library/a", true},
		{"{library,team}/app", "team/app", true},
		{"team/app", "team/app2", false},
	} {
		fs := filters{{Type: "name", Value: tc.pattern}}
		if got := fs.repository(tc.repo); got != tc.want {
			t.Errorf("name %q on %q: %v, want %v", tc.pattern, tc.repo, got, tc.want)
		}
	}
}

func TestFilterCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
		ok   bool
	}{
		{"name", Filter{Type: "name", Value: "library/**"}, true},
		{"bad pattern", Filter{Type: "name", Value: "library/[a"}, false},
		{"name with decoration", Filter{Type: "name", Value: "x", Decoration: Matches}, false},
		{"tag excludes", Filter{Type: "tag", Value: "v*", Decoration: Excludes}, true},
		{"bad decoration", Filter{Type: "tag", Value: "v*", Decoration: "maybe"}, false},
		{"resource image", Filter{Type: "resource", Value: "image"}, true},
		{"resource chart", Filter{Type: "resource", Value: "chart"}, false},
		{"label list", Filter{Type: "label", Value: []any{"a", "b"}}, true},
		{"label not a list", Filter{Type: "label", Value: "a"}, false},
		{"label list of numbers", Filter{Type: "label", Value: []any{1.0}}, false},
		{"number value", Filter{Type: "tag", Value: 3.0}, false},
		{"unknown type", Filter{Type: "size", Value: "1"}, false},
		{"huge pattern", Filter{Type: "tag", Value: string(make([]byte, 2000))}, false},
	} {
		err := tc.f.check()
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v is not invalid argument", tc.name, err)
		}
	}
}

func TestSpecific(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    []string
		ok      bool
	}{
		{"library/hello", []string{"library/hello"}, true},
		{"library/{hello,world}", []string{"library/hello", "library/world"}, true},
		{"library/*", nil, false},
		{"", nil, false},
		{"a/{b,c}/{d,e}", nil, false},
	} {
		got, ok := specific(tc.pattern)
		if ok != tc.ok || !cmp.Equal(got, tc.want) {
			t.Errorf("specific(%q) = %v, %v; want %v, %v", tc.pattern, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{"library/**", "{a,b}", "[a-z]*", "v1.?", "\\", "{{{", "[", "**/**"} {
		f.Add(s, "library/app")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		fl := Filter{Type: "name", Value: pattern}
		if err := fl.check(); err != nil {
			return
		}
		filters{fl}.repository(name)
		filters{{Type: "tag", Value: pattern}}.artifacts([]endpoint.Artifact{{Digest: "sha256:1", Tags: []string{name}}})
	})
}
