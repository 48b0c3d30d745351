package replication

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
)

// Filter decorations.
const (
	Matches  = "matches"
	Excludes = "excludes"
)

// Filter selects what a policy replicates (Harbor's ReplicationFilter):
// name and tag are doublestar patterns ("library/**", "v1.*",
// "{latest,stable}"), label a list of labels an artifact must all carry,
// resource "image" or "artifact" (everything).
type Filter struct {
	Type       string `json:"type"`
	Value      any    `json:"value"`
	Decoration string `json:"decoration,omitempty"`
}

// Limits on what a policy may hold.
const (
	maxFilters    = 16
	maxPattern    = 1024
	maxLabels     = 64
	maxNamespace  = 255
	maxPolicyName = 256
)

// check validates a filter as Harbor does and normalizes a label
// filter's value to []string.
func (f *Filter) check() error {
	switch f.Type {
	case endpoint.FilterName, endpoint.FilterTag, endpoint.FilterResource:
		v, ok := f.Value.(string)
		if !ok {
			return errdefs.InvalidArgument(errors.New("the type of filter value isn't string"))
		}
		if len(v) > maxPattern {
			return errdefs.InvalidArgument(fmt.Errorf("the %s filter is longer than %d bytes", f.Type, maxPattern))
		}
		switch f.Type {
		case endpoint.FilterResource:
			if v != endpoint.ResourceImage && v != endpoint.ResourceArtifact {
				return errdefs.InvalidArgument(fmt.Errorf("invalid resource filter: %.40s", v))
			}
		default:
			if !doublestar.ValidatePattern(v) {
				return errdefs.InvalidArgument(fmt.Errorf("the %s filter %.100q is not a valid pattern (doublestar: *, **, ?, [a-z], {a,b})", f.Type, v))
			}
		}
		if f.Type != endpoint.FilterTag && f.Decoration != "" {
			return errdefs.InvalidArgument(errors.New("only tag and label filter support decoration"))
		}
	case endpoint.FilterLabel:
		var labels []string
		switch v := f.Value.(type) {
		case []string:
			labels = v
		case []any:
			for _, x := range v {
				s, ok := x.(string)
				if !ok {
					return errdefs.InvalidArgument(errors.New("the type of label filter value isn't string slice"))
				}
				labels = append(labels, s)
			}
		default:
			return errdefs.InvalidArgument(errors.New("the type of label filter value isn't string slice"))
		}
		if len(labels) > maxLabels {
			return errdefs.InvalidArgument(fmt.Errorf("a label filter has at most %d labels", maxLabels))
		}
		f.Value = labels
	default:
		return errdefs.InvalidArgument(fmt.Errorf("invalid filter type %.40q", f.Type))
	}
	if f.Decoration != "" && f.Decoration != Matches && f.Decoration != Excludes {
		return errdefs.InvalidArgument(fmt.Errorf("invalid filter decoration, :%.40s", f.Decoration))
	}
	return nil
}

// match is doublestar matching; an empty pattern matches everything.
func match(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	ok, err := doublestar.Match(pattern, s)
	return err == nil && ok
}

// filters is a policy's filters, checked.
type filters []Filter

func (fs filters) value(typ string) (string, string) {
	for _, f := range fs {
		if f.Type == typ {
			s, _ := f.Value.(string)
			return s, f.Decoration
		}
	}
	return "", ""
}

// repository reports whether a repository's name passes the name filter.
func (fs filters) repository(name string) bool {
	p, _ := fs.value(endpoint.FilterName)
	return match(p, name)
}

// artifacts applies the tag, label and resource filters to a
// repository's artifacts, keeping only the tags that match (Harbor's
// artifact filters). An untagged artifact passes a tag filter only when
// the pattern matches the empty string.
func (fs filters) artifacts(list []endpoint.Artifact) []endpoint.Artifact {
	var out []endpoint.Artifact
	for _, a := range list {
		if !fs.resource(a) || !fs.labels(a.Labels) {
			continue
		}
		pattern, deco := fs.value(endpoint.FilterTag)
		if pattern == "" {
			out = append(out, a)
			continue
		}
		if len(a.Tags) == 0 {
			if match(pattern, "") != (deco == Excludes) {
				out = append(out, a)
			}
			continue
		}
		var tags []string
		for _, t := range a.Tags {
			if match(pattern, t) != (deco == Excludes) {
				tags = append(tags, t)
			}
		}
		if len(tags) > 0 {
			a.Tags = tags
			out = append(out, a)
		}
	}
	return out
}

func (fs filters) labels(have []string) bool {
	for _, f := range fs {
		if f.Type != endpoint.FilterLabel {
			continue
		}
		want, _ := f.Value.([]string)
		all := true
		for _, l := range want {
			if !slices.Contains(have, l) {
				all = false
				break
			}
		}
		if all == (f.Decoration == Excludes) && len(want) > 0 {
			return false
		}
	}
	return true
}

// imageTypes are the manifest media types of images (and their
// indexes): what the resource filter "image" keeps when the artifact's
// type is not known.
var imageTypes = []string{
	"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
}

func (fs filters) resource(a endpoint.Artifact) bool {
	v, _ := fs.value(endpoint.FilterResource)
	if v != endpoint.ResourceImage {
		return true
	}
	if a.Type != "" {
		return strings.EqualFold(a.Type, "IMAGE")
	}
	return a.MediaType == "" || slices.Contains(imageTypes, a.MediaType)
}

// namespaceRe is a repository path: components of lower-case letters and
// digits with single separators.
var namespaceRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$`)

// destination maps a source repository to its destination name (Harbor's
// replaceNamespace):
//
//	a/b/c/image, namespace n, count -1 (legacy) -> n/image
//	a/b/c/image, namespace n, count 0           -> n/a/b/c/image
//	a/b/c/image, namespace n, count 1           -> n/b/c/image
//	a/b/c/image, namespace n, count 3           -> n/image
//	a/b/c/image, namespace n, count 4           -> an error
//
// atLeastTwo asks for a destination in a project (lading, Harbor).
func destination(repo, namespace string, count int, atLeastTwo bool) (string, error) {
	out := repo
	if namespace != "" {
		parts := strings.Split(repo, "/")
		n := len(parts)
		var prefix string
		switch {
		case count < 0:
			prefix = namespace
		case count > n-1:
			return "", errdefs.InvalidArgument(fmt.Errorf("the source repository %q contains only %d path components %v excepting the last one, but the destination namespace flattening level is %d",
				repo, n-1, parts[:n-1], count))
		default:
			prefix = namespace + "/" + strings.Join(parts[count:n-1], "/")
		}
		out = path.Join(prefix, parts[n-1])
	}
	if atLeastTwo && !strings.Contains(out, "/") {
		return "", errdefs.InvalidArgument(fmt.Errorf("the destination repository %q has only one path component, but the destination keeps repositories in projects (PROJECT/NAME): set dest_namespace", out))
	}
	return out, nil
}
