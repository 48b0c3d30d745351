package oidc

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLocalPath: a login sends the browser back only to a path of this
// server.
func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", true},
		{"/", true},
		{"/harbor/projects?x=1", true},
		{"//evil.example/x", false},
		{"/\\evil.example", false},
		{"https://evil.example/", false},
		{"javascript:alert(1)", false},
		{"harbor", false},
		{"/x\r\nSet-Cookie: a=b", false},
		{"http:/evil", false},
	} {
		if got := LocalPath(tc.in); got != tc.want {
			t.Errorf("LocalPath(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "http://x", "/a?b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !LocalPath(s) || s == "" {
			return
		}
		// A browser resolving it against lading stays on lading.
		base, _ := url.Parse("https://lading.example/c/oidc/callback")
		u, err := base.Parse(strings.ReplaceAll(s, "\\", "/"))
		if err == nil && u.Host != "lading.example" {
			t.Errorf("LocalPath(%q) but it leads to %s", s, u.Host)
		}
	})
}

// TestGroupsAndConfig: the groups claim as a list or a single string,
// the filter, and the settings read as Harbor's.
func TestGroupsAndConfig(t *testing.T) {
	for _, tc := range []struct {
		claims map[string]any
		want   []string
		ok     bool
	}{
		{map[string]any{"groups": []any{"a", "b", 3}}, []string{"a", "b"}, true},
		{map[string]any{"groups": "solo"}, []string{"solo"}, true},
		{map[string]any{"groups": 7}, nil, false},
		{map[string]any{"groups": []any{"a", "", " ", "a", "x\ny", strings.Repeat("g", 256), "\xff", "b"}}, []string{"a", "b"}, true},
		{map[string]any{"groups": ""}, nil, true},
		{map[string]any{}, nil, false},
	} {
		got, ok := groupsOf(tc.claims, "groups")
		if ok != tc.ok || !cmp.Equal(got, tc.want) {
			t.Errorf("groupsOf(%v) = %v %v", tc.claims, got, ok)
		}
	}
	if got := filterGroups([]string{"dev-a", "ops", "dev-b"}, "^dev-"); !cmp.Equal(got, []string{"dev-a", "dev-b"}) {
		t.Errorf("filter: %v", got)
	}
	c := ConfigOf(map[string]any{"oidc_scope": " openid , email,", "oidc_extra_redirect_parms": `{"prompt":"login"}`, "oidc_client_secret": " s "})
	if !cmp.Equal(c.Scopes, []string{"openid", "email"}) || c.ExtraParams["prompt"] != "login" || c.ClientSecret != " s " {
		t.Errorf("ConfigOf: %+v", c)
	}
	if c := ConfigOf(map[string]any{}); !cmp.Equal(c.Scopes, []string{"openid"}) {
		t.Errorf("default scopes: %v", c.Scopes)
	}
}

// FuzzGroupsClaim: whatever a provider puts in the groups claim, what
// comes out are distinct names a user group can have.
func FuzzGroupsClaim(f *testing.F) {
	for _, s := range []string{`{"groups":["a","b"]}`, `{"groups":"solo"}`, `{"groups":[1,null,{"x":1},["y"]]}`, `{"groups":["", "a", "a"]}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		groups, _ := groupsOf(claims, "groups")
		seen := map[string]bool{}
		for _, g := range groups {
			if !groupName(g) || strings.TrimSpace(g) == "" || len(g) > 255 || seen[g] {
				t.Errorf("groupsOf(%s) gave %q", data, g)
			}
			seen[g] = true
		}
	})
}
