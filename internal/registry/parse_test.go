package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lading-dev/lading/internal/errdefs"
)

const (
	dA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	dC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	dE = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
)

func TestParseManifest(t *testing.T) {
	tests := []struct {
		file        string
		contentType string
		want        parsedManifest
		err         error // class
	}{
		{"oci-image.json", MediaTypeOCIManifest, parsedManifest{
			MediaType: MediaTypeOCIManifest, ArtifactType: "application/vnd.oci.image.config.v1+json",
			Annotations: map[string]string{"org.opencontainers.image.created": "2024-05-01T00:00:00Z"},
			Blobs:       []string{dA, dB}, // the nondistributable layer is not required
		}, nil},
		{"oci-image.json", "application/vnd.oci.image.manifest.v1+json; charset=utf-8", parsedManifest{
			MediaType: MediaTypeOCIManifest, ArtifactType: "application/vnd.oci.image.config.v1+json",
			Annotations: map[string]string{"org.opencontainers.image.created": "2024-05-01T00:00:00Z"},
			Blobs:       []string{dA, dB},
		}, nil},
		// A generic Content-Type does not contradict the mediaType field.
		{"oci-image.json", "application/json", parsedManifest{
			MediaType: MediaTypeOCIManifest, ArtifactType: "application/vnd.oci.image.config.v1+json",
			Annotations: map[string]string{"org.opencontainers.image.created": "2024-05-01T00:00:00Z"},
			Blobs:       []string{dA, dB},
		}, nil},
		{"oci-image.json", MediaTypeDockerManifest, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"oci-index.json", MediaTypeOCIIndex, parsedManifest{MediaType: MediaTypeOCIIndex, Manifests: []string{dA, dB}}, nil},
		{"oci-index-no-mediatype.json", "", parsedManifest{MediaType: MediaTypeOCIIndex, Manifests: []string{dA}}, nil},
		{"oci-index-no-mediatype.json", MediaTypeOCIIndex, parsedManifest{MediaType: MediaTypeOCIIndex, Manifests: []string{dA}}, nil},
		{"image-no-mediatype.json", MediaTypeOCIManifest, parsedManifest{MediaType: MediaTypeOCIManifest, ArtifactType: "application/vnd.oci.image.config.v1+json", Blobs: []string{dA}}, nil},
		{"image-no-mediatype.json", "", parsedManifest{MediaType: MediaTypeOCIManifest, ArtifactType: "application/vnd.oci.image.config.v1+json", Blobs: []string{dA}}, nil},
		// Without a mediaType field, the Content-Type names the kind.
		{"image-no-mediatype.json", MediaTypeDockerManifest, parsedManifest{MediaType: MediaTypeDockerManifest, ArtifactType: "application/vnd.oci.image.config.v1+json", Blobs: []string{dA}}, nil},
		{"docker-v2.json", MediaTypeDockerManifest, parsedManifest{
			MediaType: MediaTypeDockerManifest, ArtifactType: "application/vnd.docker.container.image.v1+json",
			Blobs: []string{dA, dB}, // the foreign layer is not required
		}, nil},
		{"docker-list.json", MediaTypeDockerList, parsedManifest{MediaType: MediaTypeDockerList, Manifests: []string{dA}}, nil},
		{"artifact-with-subject.json", MediaTypeOCIManifest, parsedManifest{
			MediaType: MediaTypeOCIManifest, ArtifactType: "application/vnd.example.sbom.v1", Subject: dC,
			Annotations: map[string]string{"org.example.sbom.format": "json"},
			Blobs:       []string{dE, dB},
		}, nil},
		{"image-config-as-artifact-type.json", MediaTypeOCIManifest, parsedManifest{
			MediaType: MediaTypeOCIManifest, ArtifactType: "application/vnd.example.signature.config.v1+json", Subject: dC,
			Blobs: []string{dA},
		}, nil},
		{"bad-image-with-manifests.json", MediaTypeOCIManifest, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"bad-index-with-layers.json", MediaTypeOCIIndex, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"bad-layer-digest.json", MediaTypeOCIManifest, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"bad-negative-size.json", MediaTypeOCIManifest, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"bad-data-mismatch.json", MediaTypeOCIManifest, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"bad-schema-version.json", MediaTypeOCIIndex, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"bad-no-config.json", MediaTypeDockerManifest, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"bad-unknown-type.json", "application/vnd.example.thing+json", parsedManifest{}, errdefs.ErrInvalidArgument},
		{"bad-not-object.json", MediaTypeOCIManifest, parsedManifest{}, errdefs.ErrInvalidArgument},
		{"schema1.json", "application/vnd.docker.distribution.manifest.v1+prettyjws", parsedManifest{}, errdefs.ErrUnsupported},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(filepath.Join("testdata", "manifests", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseManifest(b, tt.contentType)
		name := tt.file + " as " + tt.contentType
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: error %v, want class %v", name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(parsedManifest{}, "Sizes", "Where")); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// A manifest's stated sizes are recorded with the descriptor that states
// them, for the check against the stored blobs.
func TestParseManifestSizes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "manifests", "oci-image.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseManifest(b, MediaTypeOCIManifest)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{dA: 1469, dB: 2811969}, p.Sizes); diff != "" {
		t.Errorf("sizes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{dA: "config", dB: "layers[0]"}, p.Where); diff != "" {
		t.Errorf("descriptors (-want +got):\n%s", diff)
	}
}

func FuzzParseManifest(f *testing.F) {
	ents, _ := os.ReadDir(filepath.Join("testdata", "manifests"))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join("testdata", "manifests", e.Name()))
		f.Add(b, MediaTypeOCIManifest)
		f.Add(b, "")
	}
	f.Fuzz(func(t *testing.T, b []byte, ct string) {
		p, err := parseManifest(b, ct)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) && !errors.Is(err, errdefs.ErrUnsupported) {
				t.Fatalf("error of no class: %v", err)
			}
			return
		}
		if !isManifestType(p.MediaType) {
			t.Fatalf("accepted media type %q", p.MediaType)
		}
		for _, d := range append(append([]string{}, p.Blobs...), p.Manifests...) {
			if _, err := parseDigestString(d); err != nil {
				t.Fatalf("accepted reference %q: %v", d, err)
			}
			if _, ok := p.Sizes[d]; !ok || p.Where[d] == "" {
				t.Fatalf("reference %q without its stated size", d)
			}
		}
	})
}

func parseDigestString(s string) (string, error) {
	h, err := parseDigest(s)
	return h.String(), err
}

func TestCheckRepository(t *testing.T) {
	good := []string{"a", "library/alpine", "a/b/c/d", "a.b", "a_b", "a__b", "a-b", "a--b", "0", "a1/b2", "foo.bar-baz_qux/x", strings.Repeat("a", 255)}
	bad := []string{"", "A", "a/", "/a", "a//b", "..", "a/..", "../a", ".", "a/./b", "a.", ".a", "a_", "_a", "a___b", "a-", "-a", "a.-b",
		"a b", "a%2fb", "a\\b", "a:b", "a@b", "ä", "a\x00", strings.Repeat("a", 256)}
	for _, n := range good {
		if err := CheckRepository(n); err != nil {
			t.Errorf("CheckRepository(%q): %v", n, err)
		}
	}
	for _, n := range bad {
		if err := CheckRepository(n); !errdefs.IsInvalidArgument(err) {
			t.Errorf("CheckRepository(%q) = %v, want an invalid argument", n, err)
		}
	}
}

func TestCheckTag(t *testing.T) {
	for _, tag := range []string{"latest", "v1.0", "1", "_x", "A-b.c_d", strings.Repeat("t", 128)} {
		if err := CheckTag(tag); err != nil {
			t.Errorf("CheckTag(%q): %v", tag, err)
		}
	}
	for _, tag := range []string{"", ".x", "-x", "a:b", "a/b", "a b", strings.Repeat("t", 129), "ä"} {
		if err := CheckTag(tag); err == nil {
			t.Errorf("CheckTag(%q) accepted", tag)
		}
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path string
		want route
		err  error
	}{
		{"/v2/", route{kind: routeBase}, nil},
		{"/v2", route{kind: routeBase}, nil},
		{"/v2/_catalog", route{kind: routeCatalog}, nil},
		{"/v2/a/b/tags/list", route{kind: routeTags, repo: "a/b"}, nil},
		{"/v2/a/manifests/latest", route{kind: routeManifest, repo: "a", ref: "latest"}, nil},
		{"/v2/a/manifests/" + dA, route{kind: routeManifest, repo: "a", ref: dA}, nil},
		// Components named like endpoints belong to the name.
		{"/v2/manifests/manifests/x", route{kind: routeManifest, repo: "manifests", ref: "x"}, nil},
		{"/v2/a/blobs/b/blobs/" + dA, route{kind: routeBlob, repo: "a/blobs/b", ref: dA}, nil},
		{"/v2/a/tags/list/tags/list", route{kind: routeTags, repo: "a/tags/list"}, nil},
		{"/v2/a/blobs/uploads/", route{kind: routeUploadStart, repo: "a"}, nil},
		{"/v2/a/blobs/uploads", route{kind: routeUploadStart, repo: "a"}, nil},
		{"/v2/a/blobs/uploads/0123", route{kind: routeUpload, repo: "a", ref: "0123"}, nil},
		{"/v2/a/referrers/" + dA, route{kind: routeReferrers, repo: "a", ref: dA}, nil},
		{"/v2/a/manifests/", route{}, errNotAPI},
		{"/v2/a/blobs/", route{}, errNotAPI},
		{"/v2/a", route{}, errNotAPI},
		{"/v3/", route{}, errNotAPI},
		{"/v2/../x/manifests/y", route{}, errdefs.ErrInvalidArgument},
		{"/v2/a%2Fb/manifests/y", route{}, errdefs.ErrInvalidArgument},
		{"/v2/A/manifests/y", route{}, errdefs.ErrInvalidArgument},
		{"/v2//manifests/y", route{}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		got, err := parseRoute(tt.path)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("parseRoute(%q) error %v, want %v", tt.path, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRoute(%q): %v", tt.path, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(route{})); diff != "" {
			t.Errorf("parseRoute(%q) (-want +got):\n%s", tt.path, diff)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/a/b/manifests/latest", "/v2/a/blobs/uploads/", "/v2/../a/tags/list", "/v2/a%2f/blobs/x", "/v2/_catalog"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, err := parseRoute(p)
		if err != nil {
			return
		}
		if rt.kind == routeBase || rt.kind == routeCatalog {
			return
		}
		if err := CheckRepository(rt.repo); err != nil {
			t.Fatalf("route %+v with an invalid name: %v", rt, err)
		}
		for seg := range strings.SplitSeq(rt.repo, "/") {
			if seg == "." || seg == ".." || strings.ContainsAny(seg, "%\\") {
				t.Fatalf("route %+v: unsafe name", rt)
			}
		}
	})
}

func FuzzCheckRepository(f *testing.F) {
	for _, s := range []string{"a/b", "a..b", "a__b", "a-_b", "a/../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckRepository(s) != nil {
			return
		}
		if len(s) > maxNameLength || strings.Contains(s, "//") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
			t.Fatalf("accepted %q", s)
		}
		for seg := range strings.SplitSeq(s, "/") {
			if seg == "" || seg[0] == '.' || seg[0] == '_' || seg[0] == '-' {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"0-99", 0, 99, true},
		{"100-100", 100, 100, true},
		{"bytes 0-99/100", 0, 99, true},
		{"bytes 0-99/*", 0, 99, true},
		{"bytes=5-9", 5, 9, true},
		{" 1-2 ", 1, 2, true},
		{"", 0, 0, false},
		{"5", 0, 0, false},
		{"9-5", 0, 0, false},
		{"-5", 0, 0, false},
		{"5-", 0, 0, false},
		{"a-b", 0, 0, false},
		{"+1-2", 0, 0, false},
		{"0-99/x", 0, 0, false},
		{"0-9999999999999999999", 0, 0, false},
		{"0x1-0x2", 0, 0, false},
	}
	for _, tt := range tests {
		s, e, err := parseContentRange(tt.in)
		if tt.ok != (err == nil) || tt.ok && (s != tt.start || e != tt.end) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tt.in, s, e, err)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("parseContentRange(%q): error of no class", tt.in)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-99", "bytes 0-99/100", "bytes=1-2", "9-5", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseContentRange(s)
		if err == nil && (start < 0 || end < start) {
			t.Fatalf("parseContentRange(%q) = %d, %d", s, start, end)
		}
	})
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		h          string
		size       int64
		kind       rangeKind
		start, end int64
	}{
		{"bytes=0-9", 100, rangePartial, 0, 9},
		{"bytes=90-", 100, rangePartial, 90, 99},
		{"bytes=-10", 100, rangePartial, 90, 99},
		{"bytes=-1000", 100, rangePartial, 0, 99},
		{"bytes=50-1000", 100, rangePartial, 50, 99},
		{"bytes=100-", 100, rangeUnsatisfiable, 0, 0},
		{"bytes=9-5", 100, rangeUnsatisfiable, 0, 0},
		{"bytes=-0", 100, rangeUnsatisfiable, 0, 0},
		{"bytes=0-0", 0, rangeUnsatisfiable, 0, 0},
		{"bytes=0-1,3-4", 100, rangeFull, 0, 99},
		{"bytes=a-b", 100, rangeFull, 0, 99},
		{"lines=1-2", 100, rangeFull, 0, 99},
	}
	for _, tt := range tests {
		k, s, e := parseRange(tt.h, tt.size)
		if k != tt.kind || k != rangeUnsatisfiable && (s != tt.start || e != tt.end) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %d", tt.h, tt.size, k, s, e)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	f.Add("bytes=0-9", int64(100))
	f.Add("bytes=-5", int64(3))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		k, s, e := parseRange(h, size)
		if k == rangePartial && (s < 0 || e < s || e >= size) {
			t.Fatalf("parseRange(%q, %d) = %d..%d", h, size, s, e)
		}
	})
}
