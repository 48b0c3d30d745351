package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// maxNameLength bounds a repository name, as Docker's reference grammar
// does for a whole reference.
const maxNameLength = 255

// CheckRepository reports whether name is a repository name of the
// distribution spec's grammar:
//
//	name      = component ("/" component)*
//	component = [a-z0-9]+ (separator [a-z0-9]+)*
//	separator = "." | "_" | "__" | "-"+
//
// It never allows empty components, dot-only components ("." or ".."),
// percent-encoding, backslashes or any byte outside the grammar, so a name is
// always a safe relative path.
func CheckRepository(name string) error {
	if name == "" {
		return errdefs.InvalidArgument(errors.New("repository name is empty"))
	}
	if len(name) > maxNameLength {
		return errdefs.InvalidArgument(fmt.Errorf("repository name %.40q...: longer than %d bytes", name, maxNameLength))
	}
	for comp := range strings.SplitSeq(name, "/") {
		if err := checkComponent(comp); err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("repository name %q: %w", name, err))
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func checkComponent(c string) error {
	if c == "" {
		return errors.New("empty path component")
	}
	i := 0
	for {
		// A run of [a-z0-9]+.
		start := i
		for i < len(c) && isAlnum(c[i]) {
			i++
		}
		if i == start {
			if i < len(c) {
				return fmt.Errorf("component %q: %q where a lower-case letter or digit must be", c, c[i])
			}
			return fmt.Errorf("component %q ends with a separator", c)
		}
		if i == len(c) {
			return nil
		}
		// A separator: ".", "_", "__" or "-"+.
		switch c[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return fmt.Errorf("component %q: byte %q not allowed", c, c[i])
		}
		if i == len(c) {
			return fmt.Errorf("component %q ends with a separator", c)
		}
	}
}

// CheckTag reports whether tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func CheckTag(tag string) error {
	if tag == "" || len(tag) > 128 {
		return errdefs.InvalidArgument(fmt.Errorf("tag %.40q: want 1 to 128 characters", tag))
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
		if i > 0 {
			ok = ok || c == '.' || c == '-'
		}
		if !ok {
			return errdefs.InvalidArgument(fmt.Errorf("tag %q: byte %q not allowed at %d", tag, c, i))
		}
	}
	return nil
}

// routeKind says which endpoint a request path names.
type routeKind int

const (
	routeBase        routeKind = iota // /v2/
	routeCatalog                      // /v2/_catalog
	routeTags                         // /v2/<name>/tags/list
	routeManifest                     // /v2/<name>/manifests/<reference>
	routeBlob                         // /v2/<name>/blobs/<digest>
	routeUploadStart                  // /v2/<name>/blobs/uploads/
	routeUpload                       // /v2/<name>/blobs/uploads/<id>
	routeReferrers                    // /v2/<name>/referrers/<digest>
)

var routeNames = [...]string{
	routeBase:        "base",
	routeCatalog:     "catalog",
	routeTags:        "tags",
	routeManifest:    "manifest",
	routeBlob:        "blob",
	routeUploadStart: "upload-start",
	routeUpload:      "upload",
	routeReferrers:   "referrers",
}

func (k routeKind) String() string { return routeNames[k] }

// route is a parsed API path.
type route struct {
	kind routeKind
	repo string
	ref  string // tag or digest, digest, or upload id, as the kind says
}

// parseRoute parses the escaped path of a request under /v2/. The name is
// everything before the endpoint's fixed tail, and must pass
// CheckRepository; nothing in the path is unescaped, so "%2F" or "%2e%2e"
// can never turn into separators or dot segments.
func parseRoute(escaped string) (route, error) {
	rest, ok := strings.CutPrefix(escaped, "/v2/")
	if !ok {
		if escaped == "/v2" {
			return route{kind: routeBase}, nil
		}
		return route{}, errNotAPI
	}
	if rest == "" {
		return route{kind: routeBase}, nil
	}
	if rest == "_catalog" {
		return route{kind: routeCatalog}, nil
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	var rt route
	var nameSegs int
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		rt, nameSegs = route{kind: routeTags}, n-2
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			rt = route{kind: routeUploadStart}
		} else {
			rt = route{kind: routeUpload, ref: segs[n-1]}
		}
		nameSegs = n - 3
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		// A client that drops the trailing slash.
		rt, nameSegs = route{kind: routeUploadStart}, n-2
	case n >= 3 && segs[n-2] == "manifests":
		rt, nameSegs = route{kind: routeManifest, ref: segs[n-1]}, n-2
	case n >= 3 && segs[n-2] == "blobs":
		rt, nameSegs = route{kind: routeBlob, ref: segs[n-1]}, n-2
	case n >= 3 && segs[n-2] == "referrers":
		rt, nameSegs = route{kind: routeReferrers, ref: segs[n-1]}, n-2
	default:
		return route{}, errNotAPI
	}
	rt.repo = strings.Join(segs[:nameSegs], "/")
	if err := CheckRepository(rt.repo); err != nil {
		return route{}, err
	}
	if rt.kind != routeUploadStart && rt.kind != routeTags && rt.ref == "" {
		return route{}, errNotAPI
	}
	return rt, nil
}

// errNotAPI: the path names no endpoint.
var errNotAPI = errdefs.NotFound(errors.New("no such endpoint"))
