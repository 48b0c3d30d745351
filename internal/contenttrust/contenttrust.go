// Package contenttrust is the registry's signature policy, Harbor's
// "content trust" taken further: a project that demands signed images
// (its metadata enable_content_trust_cosign, enable_content_trust for
// Notation) has pulls of an artifact without such a signature refused
// with 412, and, beyond Harbor, it can name the signers it trusts (cosign
// public keys; a Notation trust policy and trust store), so that a
// signature counts only when it verifies against them. Without keys or a
// trust policy for a format, a signature of that format need only be
// present, as in Harbor.
//
// # Pull-time verification, fast and coherent across replicas
//
// CheckPull answers each pull with at most two small queries and, most of
// the time, a map lookup: the project's two flags (project metadata) and,
// when either is on, the project's policy version and the repository's
// signature generation. A verdict is cached in memory by (repository,
// digest) together with the generation and the policy key it was computed
// under; either changing makes it stale. The generation is a random
// number rewritten, in the registry's own transaction (Changed, called by
// the metadata store's hooks), whenever something that can change a
// verdict in the repository changes: a manifest with a subject, an
// index, cosign's legacy signature tags, any deletion. The policy version
// is rewritten by every change of the policy. Since both live in the
// database, a second replica sees a change at its next pull: a policy
// change applies at once, everywhere. Random values (not counters) keep a
// project or repository deleted and made again from meeting an old
// verdict.
//
// A verdict is computed with package trust over the registry's own
// storage (Content): trust.Verify with the project's Policy (built once
// per policy version) for the formats the project has trust for,
// trust.Present for the others. An image listed by an index that
// satisfies the policy is trusted through it (a multi-platform image is
// signed once). Signatures, SBOMs and attestations themselves (manifests
// without a filesystem layer that refer to a subject, or cosign's legacy
// signature manifests) are served: verifiers must read them.
//
// # Tables (owned here)
//
//	content_trust_policies  project_id, version (random), document (the
//	                        Policy as JSON), updated
//	content_trust_repos     repo, generation (random)
package contenttrust

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/singleflight"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/trust"
)

// Migrations create the tables; they follow the project tables.
var Migrations = []sqldb.Migration{{Owner: "contenttrust", Name: "trust policies, signature generations", SQL: []string{
	`CREATE TABLE content_trust_policies (
		project_id {{int}} PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
		version {{int}} NOT NULL,
		document {{text}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE content_trust_repos (
		repo {{text}} PRIMARY KEY,
		generation {{int}} NOT NULL)`,
}}}

// The project metadata that turn the policy on, as Harbor names them.
const (
	MetaCosign   = "enable_content_trust_cosign"
	MetaNotation = "enable_content_trust"
)

// Content is what the service reads of the registry: its own storage,
// never the network.
type Content interface {
	// Source reads the signatures stored next to the images of repo.
	Source(repo string) trust.Source
	// Manifest returns the descriptor of the manifest dgst of repo and,
	// when it holds at most max bytes, its content (checked against its
	// digest); nil content otherwise.
	Manifest(ctx context.Context, repo, dgst string, max int64) (v1.Descriptor, []byte, error)
	// Parents lists the indexes of repo that list the manifest dgst.
	Parents(ctx context.Context, repo, dgst string) ([]string, error)
}

// Options configure the service.
type Options struct {
	// Host is how clients name the registry (host[:port]): Notation trust
	// policies scope their trust to "Host/project/repository".
	Host string
	// Outbound is where Notation's revocation checks (OCSP, CRL: the URLs
	// a signing certificate names) may connect; nil: the public internet
	// only.
	Outbound *outbound.Policy
	// CacheSize bounds the verdicts held in memory (default 20000).
	CacheSize int
	// Log receives what goes wrong in the background.
	Log *slog.Logger
}

// Service is the signature policy.
type Service struct {
	db        *sqldb.DB
	access    *access.Checker
	audit     *audit.Log
	projects  *project.Service
	artifacts *artifact.Service
	opt       Options
	log       *slog.Logger
	content   atomic.Pointer[contentBox]
	notation  trust.NotationOptions

	mu       sync.Mutex
	compiled map[int64]*compiled // by project id, at its version
	fixed    atomic.Pointer[map[string]*compiled]
	cache    *lru
	flight   singleflight.Group

	refusals chan audit.Event
	stop     chan struct{}
	done     chan struct{}
}

type contentBox struct{ c Content }

// New returns the service; SetContent gives it the registry's content
// (built after it). Close stops its audit writer.
func New(db *sqldb.DB, checker *access.Checker, log *audit.Log, projects *project.Service, artifacts *artifact.Service, o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 20000
	}
	if o.Outbound == nil {
		o.Outbound = outbound.New()
	}
	s := &Service{db: db, access: checker, audit: log, projects: projects, artifacts: artifacts, opt: o, log: o.Log,
		compiled: map[int64]*compiled{}, cache: newLRU(o.CacheSize),
		refusals: make(chan audit.Event, maxPendingRefusals), stop: make(chan struct{}), done: make(chan struct{})}
	empty := map[string]*compiled{}
	s.fixed.Store(&empty)
	client := o.Outbound.Client(outbound.ClientOptions{Timeout: 5 * time.Second})
	s.notation = trust.NotationOptions{Revocation: revocationValidator(client)}
	go s.writeRefusals()
	return s
}

// SetContent gives the service the registry's content.
func (s *Service) SetContent(c Content) { s.content.Store(&contentBox{c}) }

// Close writes the refusals still pending.
func (s *Service) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// random is a fresh non-zero random version or generation.
func random() int64 {
	var b [8]byte
	rand.Read(b[:])
	v := int64(binary.LittleEndian.Uint64(b[:]) >> 1)
	if v == 0 {
		v = 1
	}
	return v
}
