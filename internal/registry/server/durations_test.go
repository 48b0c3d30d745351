package server

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
)

// durations are the effective durations of a configuration, after
// Defaults.
func durations(c Config) map[string]time.Duration {
	return map[string]time.Duration{
		"gc.interval":   c.GC.Interval,
		"gc.grace":      *c.GC.Grace,
		"gc.upload_ttl": *c.GC.UploadTTL,
	}
}

// Durations are written as Go durations ("90s", "1h30m") or as a bare 0,
// the way people write "off" in YAML. 0 means 0 wherever it is accepted (an
// interval of 0 is no periodic collection, a grace of 0 no grace window);
// where 0 makes no sense, or a number lacks its unit, the configuration
// is refused with a message naming the key.
func TestConfigDurations(t *testing.T) {
	def := map[string]time.Duration{"gc.interval": 0, "gc.grace": time.Hour, "gc.upload_ttl": 24 * time.Hour}
	with := func(k string, v time.Duration) map[string]time.Duration {
		m := map[string]time.Duration{}
		for kk, vv := range def {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		yaml string
		want map[string]time.Duration
		err  []string // words of the error
	}{
		{"", def, nil},
		{"gc: {}", def, nil},
		{"gc: {interval: 0}", def, nil},
		{"gc: {interval: 0s}", def, nil},
		{"gc: {interval: 24h}", with("gc.interval", 24*time.Hour), nil},
		{"gc: {interval: \"0\"}", def, nil},
		{"gc: {grace: 0}", with("gc.grace", 0), nil},
		{"gc: {grace: 0s}", with("gc.grace", 0), nil},
		{"gc: {grace: 0m}", with("gc.grace", 0), nil},
		{"gc: {grace: 90m}", with("gc.grace", 90*time.Minute), nil},
		{"gc: {upload_ttl: 1h}", with("gc.upload_ttl", time.Hour), nil},
		{"gc: {interval: 90}", nil, []string{"gc.interval", "90", "unit"}},
		{"gc: {grace: 1.5}", nil, []string{"gc.grace", "unit"}},
		{"gc: {interval: -1h}", nil, []string{"gc.interval", "negative"}},
		{"gc: {grace: -1s}", nil, []string{"gc.grace", "negative"}},
		{"gc: {upload_ttl: 0}", nil, []string{"gc.upload_ttl"}},
		{"limits: {idle_timeout: 0}", nil, []string{"limits.idle_timeout"}},
		{"limits: {idle_timeout: 7}", nil, []string{"limits.idle_timeout", "unit"}},
		{"gc: {interval: often}", nil, []string{"gc.interval", "often"}},
	} {
		c, err := ParseConfig([]byte(tc.yaml))
		if err == nil {
			c.Defaults(t.TempDir())
			err = c.Validate()
		}
		if tc.err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%q: error %v, want an invalid argument", tc.yaml, err)
				continue
			}
			for _, w := range tc.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q: error %q does not say %q", tc.yaml, err, w)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if diff := cmp.Diff(tc.want, durations(c)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.yaml, diff)
		}
	}
}
