package image

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	dgst := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want Reference
	}{
		{"alpine", Reference{Name: "docker.io/library/alpine:latest"}},
		{"alpine:3.10", Reference{Name: "docker.io/library/alpine:3.10"}},
		{"library/alpine:3.10", Reference{Name: "docker.io/library/alpine:3.10"}},
		{"docker.io/alpine:3.10", Reference{Name: "docker.io/library/alpine:3.10"}},
		{"index.docker.io/foo/bar", Reference{Name: "docker.io/foo/bar:latest"}},
		{"quay.io/a/b:c", Reference{Name: "quay.io/a/b:c"}},
		{"localhost:5000/x/y", Reference{Name: "localhost:5000/x/y:latest"}},
		{"127.0.0.1:5000/z:1", Reference{Name: "127.0.0.1:5000/z:1"}},
		{"alpine@" + dgst, Reference{Name: "docker.io/library/alpine@" + dgst}},
		{"docker://alpine", Reference{Transport: Registry, Name: "docker.io/library/alpine:latest"}},
		{"local:alpine:3.10", Reference{Transport: Local, Name: "docker.io/library/alpine:3.10"}},
		{"local:0123456789ab", Reference{Transport: Local, Name: "0123456789ab"}},
		{"0123456789abcdef", Reference{Name: "0123456789abcdef"}},
		{"oci:/tmp/layout", Reference{Transport: OCI, Path: "/tmp/layout"}},
		{"oci:/tmp/layout:3.10", Reference{Transport: OCI, Path: "/tmp/layout", Name: "3.10"}},
		{"oci:/tmp/layout:docker.io/library/alpine:3.10", Reference{Transport: OCI, Path: "/tmp/layout", Name: "docker.io/library/alpine:3.10"}},
		{"oci-archive:a.tar:latest", Reference{Transport: OCIArchive, Path: "a.tar", Name: "latest"}},
		{"docker-archive:a.tar", Reference{Transport: DockerArchive, Path: "a.tar"}},
		{"docker-archive:a.tar:alpine:3.10", Reference{Transport: DockerArchive, Path: "a.tar", Name: "docker.io/library/alpine:3.10"}},
		{"docker-archive:a.tar:@1", Reference{Transport: DockerArchive, Path: "a.tar", Name: "@1"}},
		{"dir:/srv/rootfs", Reference{Transport: Dir, Path: "/srv/rootfs"}},
		{"docker-daemon:alpine:3.10", Reference{Transport: Daemon, Name: "docker.io/library/alpine:3.10"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("round trip through %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "UPPER/case", "oci:", "dir:", "a b", "alpine@sha256:12", "docker-archive:x.tar:BAD REF", "docker://"} {
		if r, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want error", in, r)
		}
	}
}

func TestFamiliarName(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/alpine:3.10": "alpine:3.10",
		"docker.io/foo/bar:1":           "foo/bar:1",
		"quay.io/a/b:c":                 "quay.io/a/b:c",
		"localhost:5000/x:1":            "localhost:5000/x:1",
	} {
		if got := FamiliarName(in); got != want {
			t.Errorf("FamiliarName(%q) = %q, want %q", in, got, want)
		}
	}
	repo, tag := SplitName("localhost:5000/x/y:1")
	if repo != "localhost:5000/x/y" || tag != "1" {
		t.Errorf("SplitName = %q %q", repo, tag)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"alpine", "oci:/a:b", "docker-archive:x:@3", "local:abc", "docker://q.io/a:b@sha256:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) ok but its String %q does not parse: %v", s, r.String(), err)
		}
		if again != r {
			t.Fatalf("round trip %q: %+v != %+v", s, r, again)
		}
	})
}
