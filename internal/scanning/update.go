package scanning

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/vulndb/feed"
	"github.com/lading-dev/lading/internal/vulndb/oci"
)

// Updates of the vulnerability database (VULNDB_UPDATE jobs): from an OCI
// artifact that lading db push made (in this registry, read from storage,
// or in another, through the outbound policy), or built from feed files.

// splitRepository tells a reference of this registry ("project/repo:tag")
// from one of another ("host[:port]/repo:tag"), as docker tells a
// registry host from a path: a first component with a dot or a colon, or
// "localhost".
func splitRepository(ref string) (string, bool) {
	first, _, ok := strings.Cut(ref, "/")
	if !ok {
		return ref, false
	}
	remote := strings.ContainsAny(first, ".:") || first == "localhost"
	return ref, remote
}

// cronOf accepts the cron shorthands besides six fields.
func cronOf(expr string) string {
	switch strings.TrimSpace(expr) {
	case "@hourly":
		return jobs.CronHourly
	case "@daily", "@midnight":
		return jobs.CronDaily
	case "@weekly":
		return jobs.CronWeekly
	}
	return expr
}

// The vendor type of the update's schedule.
const vendorUpdate = "VULNDB_UPDATE"

// schedule sets the update's schedule and queues a first update when this
// replica has no database.
func (s *Service) schedule(ctx context.Context) error {
	src := s.opt.Source
	if src.Repository == "" && len(src.Feeds) == 0 {
		return s.d.Jobs.DeleteSchedule(ctx, vendorUpdate, 0)
	}
	c := cronOf(src.Schedule)
	if c == "" {
		c = jobs.CronDaily
	}
	if _, err := s.d.Jobs.SetSchedule(ctx, jobs.Schedule{VendorType: vendorUpdate, Kind: KindUpdateDB, Cron: c}); err != nil {
		return err
	}
	if s.keeper.has() {
		return nil
	}
	_, err := s.UpdateDB(ctx)
	return err
}

// UpdateDB queues an update of the vulnerability database now and returns
// its job.
func (s *Service) UpdateDB(ctx context.Context) (int64, error) {
	if s.opt.Source.Repository == "" && len(s.opt.Source.Feeds) == 0 {
		return 0, errdefs.FailedPrecondition(fmt.Errorf("scan.db_source names nothing to update the vulnerability database from"))
	}
	id, _, err := s.d.Jobs.Enqueue(ctx, jobs.Request{Kind: KindUpdateDB, Key: "vulndb-update", ReleaseKey: true})
	return id, err
}

type updateArgs struct{}

func (s *Service) runUpdate(ctx context.Context, j *jobs.Job, _ *updateArgs) error {
	src := s.opt.Source
	if s.keeper.path == "" {
		return jobs.Permanent(errdefs.InvalidArgument(fmt.Errorf("scan.db names no file to keep the vulnerability database in")))
	}
	var from string
	var err error
	switch {
	case src.Repository != "":
		from = src.Repository
		j.Log.Info("updating the vulnerability database", "from", from)
		err = s.pullDB(ctx, src)
	case len(src.Feeds) > 0:
		from = "feeds " + strings.Join(src.Feeds, ", ")
		j.Log.Info("building the vulnerability database", "from", from)
		_, err = feed.Build(ctx, j.Log, s.keeper.path, src.Feeds, feed.WithBuiltBy("lading serve "+s.opt.Version))
	default:
		return jobs.Permanent(errdefs.InvalidArgument(fmt.Errorf("scan.db_source names nothing to update from")))
	}
	if err != nil {
		j.Log.Error("update failed; the database in force stays", "error", err)
		if errdefs.IsUnavailable(err) {
			return err
		}
		return jobs.Permanent(err)
	}
	h, err := openHandle(s.keeper.path)
	if err != nil {
		return jobs.Permanent(err)
	}
	cur, cerr := s.keeper.acquire()
	if cerr == nil {
		same := cur.digest == h.digest
		cur.release()
		if same {
			h.release()
			j.Log.Info("the vulnerability database is unchanged", "digest", h.digest)
			return nil
		}
	}
	s.keeper.swap(h)
	m := h.db.Metadata()
	j.Log.Info("vulnerability database updated", "digest", h.digest, "built_at", m.BuiltAt, "advisories", m.Advisories, "vulnerabilities", m.Vulnerabilities)
	if err := s.keeper.publish(ctx, h, from); err != nil {
		return err
	}
	j.Log.Info("every stored report will be re-evaluated against it")
	return nil
}

// pullDB pulls a database that lading db push pushed into the file.
func (s *Service) pullDB(ctx context.Context, src Source) error {
	ref, remote := splitRepository(src.Repository)
	if !remote {
		repo, tag := ref, "latest"
		if i := strings.LastIndex(ref, "@"); i > 0 {
			repo, tag = ref[:i], ref[i+1:]
		} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
			repo, tag = ref[:i], ref[i+1:]
		}
		m, err := s.d.Content.Manifest(ctx, repo, tag)
		if err != nil {
			return err
		}
		_, err = oci.PullFrom(ctx, contentBlobs{c: s.d.Content, repo: repo}, repo+":"+tag, m.Body, s.keeper.path)
		return err
	}
	if src.Offline {
		return errdefs.Denied(fmt.Errorf("%s is in another registry and scan.db_source.offline is set", ref))
	}
	var opts []name.Option
	if src.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return errdefs.InvalidArgument(err)
	}
	client := s.d.Outbound.Client(outbound.ClientOptions{Timeout: 30 * time.Minute, InsecureSkipVerify: src.Insecure})
	_, err = oci.Pull(ctx, r, s.keeper.path, oci.WithTransport(client.Transport))
	return err
}

// contentBlobs opens the blobs of a repository of this registry.
type contentBlobs struct {
	c    Content
	repo string
}

func (b contentBlobs) OpenBlob(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	rc, _, err := b.c.OpenBlob(ctx, b.repo, d.Digest.String())
	return rc, err
}
