package scanning

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lading-dev/lading/internal/match"
)

// splitDecode decodes b as splitObjects and the JSON decoder on each
// element would, or reports that it cannot.
func splitDecode(b []byte) ([]match.Package, bool) {
	elems, ok := splitObjects(b, nil)
	if !ok {
		return nil, false
	}
	var out []match.Package
	for _, e := range elems {
		var p match.Package
		if json.Unmarshal(b[e[0]:e[1]], &p) != nil {
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

func TestSplitObjects(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []match.Package
		ok   bool
	}{
		{in: `[]`, ok: true},
		{in: " [ ] \n", ok: true},
		{in: `[{"name":"a","version":"1"}]`, want: []match.Package{{Name: "a", Version: "1"}}, ok: true},
		{in: `[{"name":"a}]{[\"\\","version":"1"} , {"name":"b","namespace":"npm"}]`,
			want: []match.Package{{Name: `a}]{["\`, Version: "1"}, {Name: "b", Namespace: "npm"}}, ok: true},
		{in: `[{"name":{"x":[1,{}]}}]`, ok: false}, // the decoder refuses the element
		{in: `null`, ok: false},
		{in: ``, ok: false},
		{in: `[{"name":"a"}`, ok: false},
		{in: `[{"name":"a"},]`, ok: false},
		{in: `[{"name":"a"} {"name":"b"}]`, ok: false},
		{in: `[{"name":"a"}] x`, ok: false},
		{in: `[1]`, ok: false},
		{in: `[{"name":"a\`, ok: false},
		{in: `[{"name":"a\"}]`, ok: false},
	} {
		got, ok := splitDecode([]byte(tc.in))
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, diff)
		}
	}
}

// FuzzSplitObjects checks that whatever splitObjects accepts, the JSON
// decoder reads as the same packages.
func FuzzSplitObjects(f *testing.F) {
	for _, s := range []string{`[]`, `[{"name":"a","version":"1"},{"name":"b\"}"}]`, `[{"a":[{}]}]`, `[{"name":"x\\"}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := splitDecode(b)
		if !ok {
			return
		}
		var want []match.Package
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("split %q, which the decoder refuses: %v", b, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%q (-decoder +split):\n%s", b, diff)
		}
	})
}

func TestSameFindings(t *testing.T) {
	fs := []finding{{ID: "CVE-1", Sev: 5, Fix: true}, {ID: "CVE-2", Sev: 3}}
	packed, err := pack(fs)
	if err != nil {
		t.Fatal(err)
	}
	packedNil, _ := pack([]finding(nil))
	packedEmpty, _ := pack([]finding{})
	js := func(v []finding) []byte { b, _ := json.Marshal(v); return b }
	for _, tc := range []struct {
		name   string
		stored []byte
		now    []finding
		want   bool
	}{
		{"same", packed, fs, true},
		{"one fewer", packed, fs[:1], false},
		{"severity changed", packed, []finding{fs[0], {ID: "CVE-2", Sev: 4}}, false},
		{"fix appeared", packed, []finding{fs[0], {ID: "CVE-2", Sev: 3, Fix: true}}, false},
		{"none, stored as null", packedNil, nil, true},
		{"none, stored as []", packedEmpty, nil, true},
		{"none stored", nil, nil, true},
		{"new findings", packedNil, fs, false},
		{"unreadable", []byte("junk"), fs, false},
	} {
		if got, _ := sameFindings(tc.stored, js(tc.now), nil); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
