// Package image opens images wherever they live and writes them wherever
// they go. A Reference names a place with a transport, as skopeo spells it:
//
//	alpine:3.10                    a registry, or the local store if it has the name
//	docker://alpine:3.10           a registry (never the store)
//	local:alpine:3.10              lading's local store
//	oci:DIR[:REF]                  an OCI image layout directory
//	oci-archive:FILE[:REF]         a tar of an OCI image layout
//	docker-archive:FILE[:REF]      a `docker save` tar (plain or gzipped); REF is a
//	                               name:tag in the archive or @N, the Nth image
//	                               (docker-archive:FILE@N works too)
//	dir:PATH                       a root filesystem directory (a source only)
//	docker-daemon:REF              a Docker Engine, through its API socket
//
// Sources resolve to a go-containerregistry v1.Image or v1.ImageIndex whose
// blobs are verified as they are read; sinks write an image or index and
// return its descriptor. Names follow the Docker reference grammar,
// `[registry/]repo[:tag][@digest]`, with docker.io and library/ as defaults.
package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Transport says where an image lives.
type Transport string

// The transports.
const (
	Auto          Transport = ""       // a bare name: the store if it has it, else the registry
	Registry      Transport = "docker" // an OCI distribution registry
	Local         Transport = "local"  // lading's store
	OCI           Transport = "oci"    // an OCI layout directory
	OCIArchive    Transport = "oci-archive"
	DockerArchive Transport = "docker-archive"
	Dir           Transport = "dir"
	Daemon        Transport = "docker-daemon"
)

var transports = []Transport{Registry, Local, OCI, OCIArchive, DockerArchive, Dir, Daemon}

// Reference names an image and where it lives.
type Reference struct {
	Transport Transport
	// Path is the directory or file of oci, oci-archive, docker-archive and
	// dir references.
	Path string
	// Name is, for registry, local, daemon and auto references, the
	// normalized name (docker.io/library/alpine:3.10); for oci and
	// oci-archive, the ref-name annotation to look for ("" for the only
	// image); for docker-archive, a normalized name:tag or "@N".
	Name string
	// Insecure allows plain HTTP and unverified TLS for a registry.
	Insecure bool
}

// Parse parses a reference with an optional transport prefix.
func Parse(s string) (Reference, error) {
	if s == "" {
		return Reference{}, errdefs.InvalidArgument(fmt.Errorf("empty image reference"))
	}
	for _, t := range transports {
		rest, ok := strings.CutPrefix(s, string(t)+":")
		if !ok {
			continue
		}
		switch t {
		case Registry:
			n, err := NormalizeName(strings.TrimPrefix(rest, "//"))
			if err != nil {
				return Reference{}, err
			}
			return Reference{Transport: t, Name: n}, nil
		case Local, Daemon:
			if IsID(rest) && t == Local {
				return Reference{Transport: t, Name: rest}, nil
			}
			n, err := NormalizeName(rest)
			if err != nil {
				return Reference{}, err
			}
			return Reference{Transport: t, Name: n}, nil
		case Dir:
			if rest == "" {
				return Reference{}, errdefs.InvalidArgument(fmt.Errorf("%q: dir: needs a path", s))
			}
			return Reference{Transport: t, Path: rest}, nil
		default: // oci, oci-archive, docker-archive: PATH[:REF]
			path, ref, hasRef := strings.Cut(rest, ":")
			if t == DockerArchive && !hasRef {
				// docker-archive:FILE@N is docker-archive:FILE:@N (a file
				// whose name ends in @N is docker-archive:FILE@N:).
				path, ref = splitPosition(path)
			}
			if path == "" {
				return Reference{}, errdefs.InvalidArgument(fmt.Errorf("%q: %s: needs a path", s, t))
			}
			if t == DockerArchive && ref != "" && !strings.HasPrefix(ref, "@") {
				n, err := NormalizeName(ref)
				if err != nil {
					return Reference{}, err
				}
				ref = n
			}
			return Reference{Transport: t, Path: path, Name: ref}, nil
		}
	}
	if IsID(s) {
		return Reference{Transport: Auto, Name: s}, nil
	}
	n, err := NormalizeName(s)
	if err != nil {
		return Reference{}, err
	}
	return Reference{Transport: Auto, Name: n}, nil
}

// splitPosition splits "FILE@N" into "FILE" and "@N" when N is a number.
func splitPosition(p string) (string, string) {
	i := strings.LastIndexByte(p, '@')
	if i <= 0 || i == len(p)-1 {
		return p, ""
	}
	for _, c := range p[i+1:] {
		if c < '0' || c > '9' {
			return p, ""
		}
	}
	return p[:i], p[i:]
}

// String returns the reference in the form Parse reads.
func (r Reference) String() string {
	switch r.Transport {
	case Auto:
		return r.Name
	case Registry:
		return "docker://" + r.Name
	case Local, Daemon:
		return string(r.Transport) + ":" + r.Name
	case Dir:
		return "dir:" + r.Path
	}
	if r.Name == "" {
		return string(r.Transport) + ":" + r.Path
	}
	return string(r.Transport) + ":" + r.Path + ":" + r.Name
}

// NormalizeName parses a Docker reference and returns its full form:
// registry, repository with library/ for official images, and a tag
// (latest when neither tag nor digest is given) or a digest.
func NormalizeName(s string) (string, error) {
	r, err := name.ParseReference(s, name.WithDefaultTag("latest"))
	if err != nil {
		return "", errdefs.InvalidArgument(fmt.Errorf("image reference %q: %w", s, err))
	}
	n := r.Name()
	if rest, ok := strings.CutPrefix(n, name.DefaultRegistry+"/"); ok {
		n = "docker.io/" + rest
	}
	return n, nil
}

// FamiliarName shortens a normalized name the way docker displays it:
// docker.io/library/alpine:3.10 becomes alpine:3.10.
func FamiliarName(n string) string {
	if rest, ok := strings.CutPrefix(n, "docker.io/library/"); ok && !strings.Contains(strings.SplitN(rest, ":", 2)[0], "/") {
		return rest
	}
	if rest, ok := strings.CutPrefix(n, "docker.io/"); ok {
		return rest
	}
	return n
}

// SplitName splits a normalized name into repository and tag or digest
// ("docker.io/library/alpine", "3.10"). A digest keeps its "@".
func SplitName(n string) (repo, tagOrDigest string) {
	if i := strings.Index(n, "@"); i >= 0 {
		return n[:i], n[i:]
	}
	slash := strings.LastIndex(n, "/")
	if i := strings.LastIndex(n, ":"); i > slash {
		return n[:i], n[i+1:]
	}
	return n, ""
}

// IsID reports whether s looks like an image ID: a sha256 digest or at
// least 12 hex digits of one.
func IsID(s string) bool {
	h := strings.TrimPrefix(s, "sha256:")
	if len(h) < 12 || len(h) > 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
