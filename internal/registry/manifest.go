package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// Manifest media types the registry stores.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"

	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// nondistributable layer media types: layers a manifest may name without
// the registry having them (they are fetched from their URLs).
var nondistributable = map[string]bool{
	"application/vnd.oci.image.layer.nondistributable.v1.tar":      true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": true,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":    true,
	"application/vnd.docker.image.rootfs.foreign.diff.tar":         true,
}

// descriptor is the part of an OCI descriptor the registry checks.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         *int64            `json:"size"`
	Data         []byte            `json:"data,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *descriptor       `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// parsedManifest is what the registry records about a manifest.
type parsedManifest struct {
	MediaType    string
	ArtifactType string // for the referrers API
	Subject      string // digest, or ""
	Annotations  map[string]string
	Blobs        []string          // blobs the repository must have
	Manifests    []string          // manifests the repository must have
	Sizes        map[string]int64  // the size stated for each of those digests
	Where        map[string]string // the first descriptor naming each ("layers[2]")
}

// refs checks the descriptors of a manifest's list (layers or manifests)
// and records those the repository must have: all but nondistributable
// layers.
func (p *parsedManifest) refs(list string, ds []descriptor, manifests bool) error {
	for i, d := range ds {
		where := fmt.Sprintf("%s[%d]", list, i)
		if err := checkDescriptor(where, d); err != nil {
			return err
		}
		if !manifests && nondistributable[d.MediaType] {
			continue
		}
		if err := p.ref(where, d, manifests); err != nil {
			return err
		}
	}
	return nil
}

// ref records a descriptor the repository must have: a blob, or a manifest
// (an index entry). One digest stated with two sizes is refused.
func (p *parsedManifest) ref(where string, d descriptor, manifest bool) error {
	if first, ok := p.Where[d.Digest]; ok {
		if p.Sizes[d.Digest] != *d.Size {
			return errdefs.InvalidArgument(fmt.Errorf("manifest %s: %s states size %d, but %s states %d for the same digest",
				where, d.Digest, *d.Size, first, p.Sizes[d.Digest]))
		}
	} else {
		if p.Where == nil {
			p.Where, p.Sizes = map[string]string{}, map[string]int64{}
		}
		p.Where[d.Digest], p.Sizes[d.Digest] = where, *d.Size
	}
	if manifest {
		p.Manifests = append(p.Manifests, d.Digest)
	} else {
		p.Blobs = append(p.Blobs, d.Digest)
	}
	return nil
}

// parseManifest checks a manifest pushed with the given Content-Type and
// says what it references. Errors are of class errdefs.ErrInvalidArgument
// (a bad manifest) or errdefs.ErrUnsupported (a kind the registry does not
// store, such as Docker schema 1).
func parseManifest(body []byte, contentType string) (parsedManifest, error) {
	var raw rawManifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return parsedManifest{}, errdefs.InvalidArgument(fmt.Errorf("manifest is not valid JSON: %w", err))
	}
	if dec.More() {
		return parsedManifest{}, errdefs.InvalidArgument(errors.New("manifest: data after the JSON document"))
	}
	// Which fields are present at all (an empty "layers" list is not
	// the same as no "layers").
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return parsedManifest{}, errdefs.InvalidArgument(fmt.Errorf("manifest is not a JSON object: %w", err))
	}
	_, hasConfig := fields["config"]
	_, hasLayers := fields["layers"]
	_, hasManifests := fields["manifests"]

	ct := ""
	if contentType != "" {
		if mt, _, err := mime.ParseMediaType(contentType); err == nil {
			ct = strings.ToLower(mt)
		}
	}
	mt := raw.MediaType
	switch {
	case mt != "" && isManifestType(ct) && ct != mt:
		return parsedManifest{}, errdefs.InvalidArgument(fmt.Errorf("manifest mediaType %q differs from its Content-Type %q", mt, ct))
	case mt == "" && isManifestType(ct):
		mt = ct
	case mt == "" && hasManifests && !hasConfig:
		mt = MediaTypeOCIIndex
	case mt == "":
		mt = MediaTypeOCIManifest
	}
	if mt == mediaTypeDockerSchema1 || mt == mediaTypeDockerSchema1Signed || ct == mediaTypeDockerSchema1 || ct == mediaTypeDockerSchema1Signed ||
		raw.SchemaVersion != nil && *raw.SchemaVersion == 1 && raw.MediaType == "" {
		return parsedManifest{}, errdefs.Unsupported(errors.New("Docker schema 1 manifests are not supported; push schema 2 or OCI"))
	}
	if !isManifestType(mt) {
		return parsedManifest{}, errdefs.InvalidArgument(fmt.Errorf("manifest media type %q is not one of %s, %s, %s, %s", mt,
			MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList))
	}
	if raw.SchemaVersion == nil || *raw.SchemaVersion != 2 {
		return parsedManifest{}, errdefs.InvalidArgument(errors.New("manifest schemaVersion must be 2"))
	}
	p := parsedManifest{MediaType: mt, Annotations: raw.Annotations, ArtifactType: raw.ArtifactType}
	if raw.Subject != nil {
		if err := checkDescriptor("subject", *raw.Subject); err != nil {
			return parsedManifest{}, err
		}
		p.Subject = raw.Subject.Digest
	}
	switch mt {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if hasManifests {
			return parsedManifest{}, errdefs.InvalidArgument(errors.New("image manifest has a manifests field (an index's)"))
		}
		if raw.Config == nil {
			return parsedManifest{}, errdefs.InvalidArgument(errors.New("image manifest has no config"))
		}
		if err := checkDescriptor("config", *raw.Config); err != nil {
			return parsedManifest{}, err
		}
		if err := p.ref("config", *raw.Config, false); err != nil {
			return parsedManifest{}, err
		}
		if p.ArtifactType == "" {
			p.ArtifactType = raw.Config.MediaType
		}
		if err := p.refs("layers", raw.Layers, false); err != nil {
			return parsedManifest{}, err
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if hasConfig || hasLayers {
			return parsedManifest{}, errdefs.InvalidArgument(errors.New("index has a config or layers field (an image manifest's)"))
		}
		if mt == MediaTypeDockerList && !hasManifests {
			return parsedManifest{}, errdefs.InvalidArgument(errors.New("manifest list has no manifests field"))
		}
		if err := p.refs("manifests", raw.Manifests, true); err != nil {
			return parsedManifest{}, err
		}
	}
	return p, nil
}

func isManifestType(mt string) bool {
	switch mt {
	case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList:
		return true
	}
	return false
}

// checkDescriptor checks the fields of a descriptor the registry relies on:
// a media type, a valid digest, a size, and embedded data that matches both.
func checkDescriptor(where string, d descriptor) error {
	if d.MediaType == "" {
		return errdefs.InvalidArgument(fmt.Errorf("manifest %s: no mediaType", where))
	}
	h, err := verify.ParseDigest(d.Digest)
	if err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("manifest %s: %w", where, err))
	}
	if d.Size == nil || *d.Size < 0 {
		return errdefs.InvalidArgument(fmt.Errorf("manifest %s: size missing or negative", where))
	}
	if d.Data != nil {
		if int64(len(d.Data)) != *d.Size {
			return errdefs.InvalidArgument(fmt.Errorf("manifest %s: data has %d bytes, size says %d", where, len(d.Data), *d.Size))
		}
		got, err := verify.FromBytes(d.Data, h.Algorithm)
		if err != nil || got != h {
			return errdefs.InvalidArgument(fmt.Errorf("manifest %s: data does not match digest %s", where, h))
		}
	}
	return nil
}
