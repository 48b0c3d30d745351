package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/gc"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
)

// immutableTags is the Gate check of immutable tag rules: a push may not
// move a protected tag to another manifest (a push of the same manifest
// changes nothing and passes), and a protected tag, or a manifest that
// one names, may not be deleted. New tags are always allowed.
type immutableTags struct {
	registry.AllowAll
	core *core.Core
	meta *meta.SQL
}

func (p immutableTags) CheckPush(ctx context.Context, _ registry.Subject, m registry.PushCheck) error {
	var moving []string
	for _, t := range m.Tags {
		cur, err := p.meta.Tag(ctx, m.Repository, t)
		if errdefs.IsNotFound(err) {
			continue // a new tag
		}
		if err != nil {
			return err
		}
		if cur.Digest != m.Digest {
			moving = append(moving, t)
		}
	}
	return p.core.Immutable.Check(ctx, m.Repository, moving)
}

func (p immutableTags) CheckDelete(ctx context.Context, _ registry.Subject, repo, dgst, tag string) error {
	if tag != "" {
		return p.core.Immutable.Check(ctx, repo, []string{tag})
	}
	tags, err := p.core.Artifacts.TagsOf(ctx, repo, dgst)
	if err != nil {
		return err
	}
	return p.core.Immutable.Check(ctx, repo, tags)
}

// collector is garbage collection's view of the registry: untagged
// artifacts deleted through the metadata store (so the artifact view,
// quotas and the audit log follow), then the online collector, then the
// quotas recounted.
type collector struct{ s *Server }

var _ gc.Collector = collector{}

func (c collector) Collect(ctx context.Context, o gc.Options, jobLog *slog.Logger) (gc.Report, error) {
	s := c.s
	ctx = actor.System(ctx, "garbage-collection")
	log := jobLog // stored with the job; the job service mirrors it to the job log
	grace := durationOr(s.Config.GC.Grace, registry.DefaultGrace)
	var rep gc.Report
	var untaggedBefore time.Time
	if o.DeleteUntagged {
		untaggedBefore = time.Now().Add(-grace)
		n, err := s.deleteUntagged(ctx, untaggedBefore, o.DryRun, log)
		rep.UntaggedArtifacts = n
		if err != nil {
			return rep, err
		}
	}
	r, err := s.Collector.Collect(ctx, registry.GCOptions{
		Grace:          grace,
		UploadTTL:      deref(s.Config.GC.UploadTTL),
		DryRun:         o.DryRun,
		UntaggedBefore: untaggedBefore,
		Workers:        o.Workers,
		Log:            log,
	})
	rep.Blobs, rep.Bytes, rep.UploadsExpired = r.BlobsDeleted+r.OrphansDeleted, r.BytesDeleted, r.UploadsExpired
	for i, d := range r.Digests {
		if i == 100 {
			log.Info(fmt.Sprintf("... and %d more blobs", len(r.Digests)-100))
			break
		}
		if o.DryRun {
			log.Info("would delete blob " + d)
		} else {
			log.Info("deleted blob " + d)
		}
	}
	if err != nil || o.DryRun {
		return rep, err
	}
	if err := s.Core.Projects.Recount(ctx, s.Meta.ForEachLink); err != nil {
		return rep, fmt.Errorf("recounting quotas: %w", err)
	}
	log.Info("project quotas recounted from what is left")
	return rep, nil
}

// deleteUntagged deletes, pass after pass (an index's children are
// untagged once it is gone), the manifests that no tag, index or subject
// keeps, created before before; in a dry run it counts the first pass.
func (s *Server) deleteUntagged(ctx context.Context, before time.Time, dryRun bool, log *slog.Logger) (int, error) {
	total := 0
	for pass := 0; pass < 8; pass++ {
		n := 0
		after := meta.Ref{}
		for {
			list, err := s.Meta.Untagged(ctx, before, after, 500)
			if err != nil {
				return total, err
			}
			if len(list) == 0 {
				break
			}
			after = list[len(list)-1]
			for _, m := range list {
				if dryRun {
					log.Info("would delete untagged artifact " + m.Repo + "@" + m.Digest)
					n++
					continue
				}
				ok, err := s.Meta.DeleteUntagged(ctx, m.Repo, m.Digest)
				if err != nil {
					return total, err
				}
				if !ok {
					continue // gone, or tagged or listed meanwhile
				}
				log.Info("deleted untagged artifact " + m.Repo + "@" + m.Digest)
				n++
			}
		}
		total += n
		if n == 0 || dryRun {
			break
		}
	}
	return total, nil
}
