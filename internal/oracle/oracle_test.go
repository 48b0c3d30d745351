package oracle

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Each tool answers a few questions whose answers its documentation gives.
func TestTools(t *testing.T) {
	o := New(t)
	for _, tc := range []struct {
		tool  Tool
		pairs [][2]string
		want  []Answer
	}{
		{Dpkg, [][2]string{{"1.0~rc1", "1.0"}, {"1:0.9", "2.0"}, {"1.0", "1.0"}, {"a b", "1"}}, []Answer{{N: -1}, {N: 1}, {N: 0}, {Err: "bad version"}}},
		{Apk, [][2]string{{"1.2.3_rc1", "1.2.3"}, {"1.2.3-r1", "1.2.3-r0"}}, []Answer{{N: -1}, {N: 1}}},
		{RPM, [][2]string{{"1.0~rc1-1", "1.0-1"}, {"1:1.0-1", "2.0-1"}}, []Answer{{N: -1}, {N: 1}}},
		{PEP440, [][2]string{{"1.0rc1", "1.0"}, {"1.0.post1", "1.0"}, {"1.0", "not a version"}}, []Answer{{N: -1}, {N: 1}, {Err: "invalid"}}},
		{Semver, [][2]string{{"1.0.0-alpha", "1.0.0"}, {"1.10.0", "1.9.0"}}, []Answer{{N: -1}, {N: 1}}},
		{SemverSatisfies, [][2]string{{"1.2.3", "^1.0.0"}, {"2.0.0", "<2"}}, []Answer{{N: 1}, {N: 0}}},
		{SemverAny, [][2]string{{"<0.0.0", ""}, {">=1.0.0", ""}}, []Answer{{N: 0}, {N: 1}}},
		{Gem, [][2]string{{"1.0.pre", "1.0"}, {"1.10", "1.9"}}, []Answer{{N: -1}, {N: 1}}},
		{Maven, [][2]string{{"1.0-SNAPSHOT", "1.0"}, {"1.0-sp", "1.0"}}, []Answer{{N: -1}, {N: 1}}},
	} {
		t.Run(string(tc.tool), func(t *testing.T) {
			if diff := cmp.Diff(tc.want, o.Ask(t, tc.tool, tc.pairs)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.tool, diff)
			}
		})
	}
}
