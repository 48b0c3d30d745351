package trust

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestPresent: signatures in every format count as present without a
// policy; what is stored as a signature but is not one is rejected with
// its reason; other referrers are ignored.
func TestPresent(t *testing.T) {
	ctx := context.Background()
	subj := subjectDescriptor()
	s := Subject{Descriptor: subj, Name: testRepo}
	key := newECKey(t)
	p := newPKI(t, certSpec{})
	for _, tc := range []struct {
		name     string
		build    func(t *testing.T, m *memSource)
		formats  []Format
		rejected Reason
	}{
		{"nothing", func(*testing.T, *memSource) {}, nil, ""},
		{"cosign legacy", func(t *testing.T, m *memSource) {
			mustSign(t, m, s, SignOptions{Format: Cosign, Key: key})
		}, []Format{Cosign}, ""},
		{"cosign bundle", func(t *testing.T, m *memSource) {
			mustSign(t, m, s, SignOptions{Format: CosignBundle, Key: key})
		}, []Format{CosignBundle}, ""},
		{"notation", func(t *testing.T, m *memSource) {
			mustSign(t, m, s, SignOptions{Format: Notation, Key: p.leafKey, Chain: p.chain()})
		}, []Format{Notation}, ""},
		{"an SBOM referrer", func(t *testing.T, m *memSource) {
			m.referrer(subj, "application/vnd.goharbor.harbor.sbom.v1", m.add("application/spdx+json", []byte("{}")))
		}, nil, ""},
		{"the image as its own referrer", func(t *testing.T, m *memSource) {
			m.referrers = append(m.referrers, subj)
		}, nil, ReasonSelfReference},
		{"the legacy tag naming the image", func(t *testing.T, m *memSource) {
			m.tags[legacyTag(subj.Digest)] = subj
		}, nil, ReasonSelfReference},
		{"a legacy manifest without signatures", func(t *testing.T, m *memSource) {
			mf := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: m.add(string(types.OCIConfigJSON), emptyJSON), Layers: []v1.Descriptor{m.add(SimpleSigningMediaType, []byte("{}"))}}
			m.tags[legacyTag(subj.Digest)] = putRaw(t, m, &mf)
		}, nil, ReasonMalformed},
		{"notation with an unknown envelope", func(t *testing.T, m *memSource) {
			m.referrer(subj, NotationArtifactType, m.add("application/x-unknown", []byte("{}")))
		}, nil, ReasonUnsupported},
		{"a 50 MB signature manifest", func(t *testing.T, m *memSource) {
			d := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: subjectDescriptorOf("big").Digest, Size: 50 << 20}
			m.referrers = append(m.referrers, d)
		}, nil, ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemSource()
			tc.build(t, m)
			res, err := Present(ctx, m, s)
			if err != nil {
				t.Fatal(err)
			}
			var got []Format
			for _, sig := range res.Verified {
				got = append(got, sig.Format)
			}
			if len(got) != len(tc.formats) || (len(got) > 0 && got[0] != tc.formats[0]) {
				t.Errorf("present %v, want %v", got, tc.formats)
			}
			if tc.rejected == "" && len(res.Rejected) > 0 {
				t.Errorf("rejected %+v", res.Rejected)
			}
			if tc.rejected != "" && (len(res.Rejected) != 1 || res.Rejected[0].Reason != tc.rejected) {
				t.Errorf("rejected %+v, want one for %s", res.Rejected, tc.rejected)
			}
		})
	}
}

func mustSign(t *testing.T, m *memSource, s Subject, o SignOptions) {
	t.Helper()
	if _, err := Sign(context.Background(), m, m, s, o); err != nil {
		t.Fatal(err)
	}
}

func putRaw(t *testing.T, m *memSource, mf *manifest) v1.Descriptor {
	t.Helper()
	d, err := putManifest(context.Background(), m, mf, "")
	if err != nil {
		t.Fatal(err)
	}
	m.referrers = m.referrers[:len(m.referrers)-1] // stored, not listed
	return d
}
