// Package endpoint is lading's client of other registries: the targets
// and sources of replication and the upstreams of proxy-cache projects.
// An Endpoint is Harbor's registry record (type, URL, credential, TLS
// settings); a Client speaks the OCI distribution API to it through
// go-containerregistry's remote package, and, for type harbor, Harbor's
// REST API for what the distribution API cannot say (listing artifacts
// with their labels, creating the projects a push needs).
//
// Every connection goes through package outbound: an endpoint's address
// is refused when it is loopback, private, link-local or a cloud metadata
// service unless the administrator allowed it, at save time (Check) and
// at each connection (after name resolution, and for every redirect and
// token realm). The URL's scheme is kept for every request to its host
// (go-containerregistry would otherwise speak plain http to private
// addresses). Credentials travel in Authorization headers only and never
// appear in errors or logs.
//
// Errors are of errdefs classes: ErrNotFound when the remote does not
// have it, ErrUnauthorized or ErrDenied when it refuses the credentials,
// ErrThrottled for its 429, ErrUnavailable when it cannot answer (network,
// timeout, 5xx), ErrCorrupt and ErrTooLarge for content failing its
// checks.
package endpoint

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/outbound"
)

// Registry types, as Harbor names them.
const (
	// TypeHarbor is a registry that speaks Harbor's API v2.0 (Harbor, or
	// another lading).
	TypeHarbor = "harbor"
	// TypeDockerRegistry is any OCI distribution registry.
	TypeDockerRegistry = "docker-registry"
	// TypeDockerHub is Docker Hub (or a registry standing in for it):
	// one-component repositories are Docker Hub's library/ ones.
	TypeDockerHub = "docker-hub"
)

// Types lists the supported types.
var Types = []string{TypeDockerHub, TypeDockerRegistry, TypeHarbor}

// DockerHubURL is Docker Hub's registry endpoint.
const DockerHubURL = "https://registry-1.docker.io"

// Credential types.
const (
	CredentialBasic = "basic"
	CredentialOAuth = "oauth" // AccessSecret is a bearer token
)

// Credential is how lading authenticates to an endpoint.
type Credential struct {
	Type         string
	AccessKey    string
	AccessSecret string
}

// Endpoint is a registry lading talks to.
type Endpoint struct {
	Type       string
	URL        string
	Credential Credential
	// Insecure skips verifying the endpoint's TLS certificate.
	Insecure bool
	// CACertificate (PEM) verifies the endpoint's certificate instead of
	// the system's roots.
	CACertificate string
}

// Check validates an endpoint as it is saved, normalizing its URL: a
// known type, an http(s) URL without path, query or credentials whose
// address the outbound policy allows, a known credential type, a CA
// certificate that parses.
func (e *Endpoint) Check(p *outbound.Policy) error {
	if !slices.Contains(Types, e.Type) {
		return errdefs.InvalidArgument(fmt.Errorf("registry type %.40q is not supported; want one of %s", e.Type, strings.Join(Types, ", ")))
	}
	if e.Type == TypeDockerHub && (e.URL == "" || strings.TrimSuffix(e.URL, "/") == "https://hub.docker.com") {
		e.URL = DockerHubURL
	}
	if strings.TrimSpace(e.URL) == "" {
		return errdefs.InvalidArgument(errors.New("the registry URL is required"))
	}
	u, err := p.CheckURL(strings.TrimSuffix(e.URL, "/"))
	if err != nil {
		return fmt.Errorf("registry URL: %w", err)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return errdefs.InvalidArgument(fmt.Errorf("registry URL %s: a registry is addressed by scheme and host only (no path or query)", u.Redacted()))
	}
	u.Path, u.RawPath = "", ""
	e.URL = u.String()
	switch e.Credential.Type {
	case "":
		if e.Credential.AccessKey != "" || e.Credential.AccessSecret != "" {
			e.Credential.Type = CredentialBasic
		}
	case CredentialBasic, CredentialOAuth:
	default:
		return errdefs.InvalidArgument(fmt.Errorf("credential type %.20q is not basic or oauth", e.Credential.Type))
	}
	if len(e.Credential.AccessKey) > 1024 || len(e.Credential.AccessSecret) > 16<<10 {
		return errdefs.InvalidArgument(errors.New("credential too long"))
	}
	if strings.ContainsAny(e.Credential.AccessKey, "\r\n\x00:") || strings.ContainsAny(e.Credential.AccessSecret, "\r\n\x00") {
		return errdefs.InvalidArgument(errors.New("credential contains control characters (or ':' in the access key)"))
	}
	if e.CACertificate != "" {
		if _, err := certPool(e.CACertificate); err != nil {
			return err
		}
	}
	return nil
}

// certPool parses PEM certificates.
func certPool(pemText string) (*x509.CertPool, error) {
	if len(pemText) > 1<<20 {
		return nil, errdefs.InvalidArgument(errors.New("ca_certificate larger than 1 MiB"))
	}
	pool := x509.NewCertPool()
	rest := []byte(pemText)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("ca_certificate: %v", err))
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errdefs.InvalidArgument(errors.New("ca_certificate holds no PEM certificate"))
	}
	return pool, nil
}

// Filter types and styles, as Harbor names them.
const (
	FilterName     = "name"
	FilterTag      = "tag"
	FilterLabel    = "label"
	FilterResource = "resource"

	StyleInput = "input"
	StyleRadio = "radio"
	StyleList  = "list"
)

// Trigger types, as Harbor names them.
const (
	TriggerManual    = "manual"
	TriggerScheduled = "scheduled"
	TriggerEvent     = "event_based"
)

// Resource types.
const (
	ResourceImage    = "image"
	ResourceArtifact = "artifact"
)

// FilterStyle is a filter a registry supports.
type FilterStyle struct {
	Type   string   `json:"type"`
	Style  string   `json:"style"`
	Values []string `json:"values,omitempty"`
}

// Info is what a registry type supports (Harbor's RegistryInfo).
type Info struct {
	Type        string        `json:"type"`
	Description string        `json:"description"`
	Filters     []FilterStyle `json:"supported_resource_filters"`
	Triggers    []string      `json:"supported_triggers"`
}

// InfoOf returns what a type supports as a source of pull-based
// replication. Event-based triggers exist only for lading itself.
func InfoOf(typ string) Info {
	in := Info{
		Type:     typ,
		Triggers: []string{TriggerManual, TriggerScheduled},
		Filters: []FilterStyle{
			{Type: FilterName, Style: StyleInput},
			{Type: FilterTag, Style: StyleInput},
		},
	}
	switch typ {
	case TypeHarbor:
		in.Description = "Harbor's API v2.0 (Harbor or lading)"
		in.Filters = append(in.Filters, FilterStyle{Type: FilterLabel, Style: StyleInput})
	case TypeDockerHub:
		in.Description = "Docker Hub"
	default:
		in.Description = "an OCI distribution registry"
	}
	in.Filters = append(in.Filters, FilterStyle{Type: FilterResource, Style: StyleRadio, Values: []string{ResourceImage, ResourceArtifact}})
	return in
}

// Pattern is Harbor's RegistryProviderInfo: how the UI asks for an
// endpoint and its credential.
type Pattern struct {
	EndpointPattern   EndpointPattern   `json:"endpoint_pattern"`
	CredentialPattern CredentialPattern `json:"credential_pattern"`
}

// EndpointPattern is Harbor's RegistryProviderEndpointPattern.
type EndpointPattern struct {
	EndpointType string              `json:"endpoint_type"`
	Endpoints    []map[string]string `json:"endpoints,omitempty"`
}

// CredentialPattern is Harbor's RegistryProviderCredentialPattern.
type CredentialPattern struct {
	AccessKeyType    string `json:"access_key_type"`
	AccessKeyData    string `json:"access_key_data,omitempty"`
	AccessSecretType string `json:"access_secret_type"`
	AccessSecretData string `json:"access_secret_data,omitempty"`
}

// PatternOf returns a type's pattern.
func PatternOf(typ string) Pattern {
	p := Pattern{
		EndpointPattern:   EndpointPattern{EndpointType: "EndpointPatternTypeStandard"},
		CredentialPattern: CredentialPattern{AccessKeyType: "AccessKeyTypeStandard", AccessSecretType: "AccessSecretTypePass"},
	}
	if typ == TypeDockerHub {
		p.EndpointPattern = EndpointPattern{EndpointType: "EndpointPatternTypeFix", Endpoints: []map[string]string{{"key": "hub.docker.com", "value": "https://hub.docker.com"}}}
	}
	return p
}
