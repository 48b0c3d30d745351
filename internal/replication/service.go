package replication

import (
	"context"
	"io"
	"log/slog"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/secrets"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
	"github.com/lading-dev/lading/internal/webhook"
)

// Job kinds and the executions' vendor type, as Harbor names them where
// it has names.
const (
	// Kind is a replication task's job.
	Kind = "REPLICATION"
	// PlanKind lists a run's resources and adds its tasks.
	PlanKind = "REPLICATION_PLAN"
	// ScheduleKind starts a scheduled run.
	ScheduleKind = "REPLICATION_SCHEDULE"
	// VendorType is the executions' vendor type (and the schedules').
	VendorType = "REPLICATION"
)

// Local is lading's own registry as replication reads and writes it,
// implemented by the wiring over the registry (which this package does
// not import). Writes take the path of a client's push: verified, checked
// by the Gate's policies, told to Events.
type Local interface {
	// Repositories lists every repository.
	Repositories(ctx context.Context) ([]string, error)
	// Artifacts lists a repository's artifacts that stand on their own
	// (not the referrers of another), with tags, labels and type.
	Artifacts(ctx context.Context, repo string) ([]endpoint.Artifact, error)
	// Tags lists a repository's tags.
	Tags(ctx context.Context, repo string) ([]string, error)
	// Manifest returns a manifest by tag or digest, and its content.
	Manifest(ctx context.Context, repo, ref string) ([]byte, v1.Descriptor, error)
	// Referrers lists the manifests whose subject is dgst.
	Referrers(ctx context.Context, repo, dgst string) ([]v1.Descriptor, error)
	// OpenBlob opens a blob of repo (the reader verifies it).
	OpenBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error)
	// BlobRepositories lists up to limit repositories that hold dgst.
	BlobRepositories(ctx context.Context, dgst string, limit int) ([]string, error)
	// HaveBlob reports whether repo can use dgst without receiving it
	// (linking it when the registry holds it elsewhere).
	HaveBlob(ctx context.Context, repo, dgst string) (bool, error)
	// WriteBlob stores a blob into repo, verified.
	WriteBlob(ctx context.Context, repo, dgst string, size int64, r io.Reader) error
	// WriteManifest stores a manifest into repo with tags and returns its
	// digest.
	WriteManifest(ctx context.Context, repo string, body []byte, mediaType string, tags []string) (string, error)
	// Delete deletes a manifest (ref a digest) or a tag.
	Delete(ctx context.Context, repo, ref string) error
}

// Options configure the service.
type Options struct {
	Log *slog.Logger
	// Outbound decides which addresses endpoints may have.
	Outbound *outbound.Policy
	// UserAgent of requests to endpoints; default "lading".
	UserAgent string
	// Concurrency bounds replication tasks at once across replicas;
	// default 4.
	Concurrency int
	// Timeout bounds each request's wait for an answer; default 30s.
	Timeout time.Duration
	// Host is how clients name lading (webhook payloads).
	Host string
	// Retention is how many executions of each policy are kept;
	// default 50.
	Retention int
}

// Service keeps registry endpoints and replication policies and runs
// replications.
type Service struct {
	db       *sqldb.DB
	access   *access.Checker
	audit    *audit.Log
	projects *project.Service
	jobs     *jobs.Queue
	tasks    *task.Manager
	webhooks *webhook.Service
	keys     *secrets.Keyring
	local    Local
	opt      Options
	log      *slog.Logger
}

// New returns the service. The local registry is set later (SetLocal):
// it is built after the services.
func New(db *sqldb.DB, checker *access.Checker, log *audit.Log, projects *project.Service, q *jobs.Queue, tasks *task.Manager,
	hooks *webhook.Service, keys *secrets.Keyring, o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Outbound == nil {
		o.Outbound = outbound.New()
	}
	if o.UserAgent == "" {
		o.UserAgent = "lading"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 50
	}
	return &Service{db: db, access: checker, audit: log, projects: projects, jobs: q, tasks: tasks, webhooks: hooks, keys: keys, opt: o, log: o.Log}
}

// SetLocal tells the service about lading's registry.
func (s *Service) SetLocal(l Local) { s.local = l }

// Definitions are the service's job kinds, for registration at wiring.
func (s *Service) Definitions() []jobs.Definition {
	return []jobs.Definition{
		{Kind: Kind, Run: jobs.Func(s.runTask), Concurrency: s.opt.Concurrency, MaxAttempts: 3, Timeout: 24 * time.Hour},
		{Kind: PlanKind, Run: jobs.Func(s.plan), Concurrency: s.opt.Concurrency, MaxAttempts: 3, Timeout: time.Hour},
		{Kind: ScheduleKind, Run: jobs.Func(s.scheduled), MaxAttempts: 3, Timeout: time.Minute},
	}
}

// Housekeep keeps each policy's newest executions and checks the
// endpoints' health (Harbor's status).
func (s *Service) Housekeep(ctx context.Context) {
	if err := s.tasks.Sweep(ctx, VendorType, s.opt.Retention); err != nil && ctx.Err() == nil {
		s.log.Warn("sweeping old replication executions", "error", err)
	}
	s.checkHealth(ctx)
}

// system is lading acting on its own behalf.
var system = access.Subject{Kind: access.KindUser, Name: "lading", SysAdmin: true}

// client returns a client of e.
func (s *Service) client(e endpoint.Endpoint, noRetry bool) (*endpoint.Client, error) {
	return endpoint.New(e, endpoint.Options{Outbound: s.opt.Outbound, Timeout: s.opt.Timeout, UserAgent: s.opt.UserAgent, NoRetry: noRetry})
}
