package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/ctxio"
	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
)

// copier copies artifacts from one side to the other: see the package
// comment for the order of things and what makes it safe to run again.
type copier struct {
	src, dst side
	log      *slog.Logger
	override bool
	// rate limits blob reads, in bytes per second (0: none).
	rate int64
	// mountFrom names a destination repository that should hold a blob
	// already (nil or "": none).
	mountFrom func(ctx context.Context, dgst string) string

	done    map[string]bool // manifests finished in this task
	srcTags []string        // the source repository's tags, once read
	stats   copyStats
}

type copyStats struct {
	manifests, blobsSent, blobsMounted, blobsPresent int
	bytes                                            int64
}

// maxDepth bounds indexes of indexes and chains of referrers.
const maxDepth = 8

// nondistributable layers are not sent (their content lives at URLs).
func nondistributable(mt string) bool {
	return strings.Contains(mt, "nondistributable") || strings.Contains(mt, "foreign")
}

// parsedRefs is what a manifest needs at the destination.
type parsedRefs struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        *v1.Descriptor  `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
	Manifests     []v1.Descriptor `json:"manifests"`
}

func refsOf(body []byte, dgst string) (blobs, children []v1.Descriptor, err error) {
	var p parsedRefs
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, nil, errdefs.InvalidArgument(fmt.Errorf("manifest %s is not JSON: %v", dgst, err))
	}
	if p.SchemaVersion == 1 {
		return nil, nil, errdefs.Unsupported(fmt.Errorf("manifest %s is a Docker schema 1 manifest, which is not replicated", dgst))
	}
	if p.Config != nil {
		blobs = append(blobs, *p.Config)
	}
	for _, l := range p.Layers {
		if !nondistributable(string(l.MediaType)) {
			blobs = append(blobs, l)
		}
	}
	return blobs, p.Manifests, nil
}

// copyArtifact copies one artifact with its tags, then its referrers.
func (c *copier) copyArtifact(ctx context.Context, srcRepo, dstRepo string, a artifactRef) error {
	return c.copyManifest(ctx, srcRepo, dstRepo, a.Digest, a.Tags, 0)
}

func (c *copier) copyManifest(ctx context.Context, srcRepo, dstRepo, dgst string, tags []string, depth int) error {
	if depth > maxDepth {
		return errdefs.InvalidArgument(fmt.Errorf("manifest %s: indexes or referrers nested deeper than %d", dgst, maxDepth))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	put, err := c.tagsToPut(ctx, dstRepo, dgst, tags)
	if err != nil {
		return err
	}
	have := c.done[dgst]
	if !have {
		d, err := c.dst.head(ctx, dstRepo, dgst)
		switch {
		case errdefs.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("checking %s@%s at the destination: %w", dstRepo, dgst, err)
		default:
			have = d == dgst
		}
	}
	if !have || len(put) > 0 {
		body, desc, err := c.src.manifest(ctx, srcRepo, dgst)
		if err != nil {
			return fmt.Errorf("reading %s@%s at the source: %w", srcRepo, dgst, err)
		}
		if !have {
			if err := c.copyContent(ctx, srcRepo, dstRepo, dgst, body, depth); err != nil {
				return err
			}
		}
		if err := c.dst.putManifest(ctx, dstRepo, put, body, desc); err != nil {
			return fmt.Errorf("storing %s@%s at the destination: %w", dstRepo, dgst, err)
		}
		c.stats.manifests++
		switch {
		case len(put) > 0:
			c.log.Info("manifest stored", "repository", dstRepo, "digest", dgst, "tags", strings.Join(put, ","))
		default:
			c.log.Info("manifest stored", "repository", dstRepo, "digest", dgst)
		}
	} else if len(tags) > 0 {
		c.log.Info("already at the destination", "repository", dstRepo, "digest", dgst, "tags", strings.Join(tags, ","))
	}
	if c.done[dgst] {
		return nil
	}
	c.done[dgst] = true
	return c.copyReferrers(ctx, srcRepo, dstRepo, dgst, depth)
}

// tagsToPut returns the tags the destination lacks, or has on another
// artifact when override is on.
func (c *copier) tagsToPut(ctx context.Context, dstRepo, dgst string, tags []string) ([]string, error) {
	var put []string
	for _, t := range tags {
		d, err := c.dst.head(ctx, dstRepo, t)
		switch {
		case errdefs.IsNotFound(err):
			put = append(put, t)
		case err != nil:
			return nil, fmt.Errorf("checking %s:%s at the destination: %w", dstRepo, t, err)
		case d == dgst:
		case !c.override:
			c.log.Warn("the destination's tag names another artifact and override is off: tag skipped", "repository", dstRepo, "tag", t, "destination_digest", d, "digest", dgst)
		default:
			c.log.Info("the destination's tag names another artifact: replaced (override)", "repository", dstRepo, "tag", t, "destination_digest", d, "digest", dgst)
			put = append(put, t)
		}
	}
	return put, nil
}

// copyContent sends what a manifest needs before it can be stored: its
// child manifests, then its blobs.
func (c *copier) copyContent(ctx context.Context, srcRepo, dstRepo, dgst string, body []byte, depth int) error {
	blobs, children, err := refsOf(body, dgst)
	if err != nil {
		return err
	}
	for _, ch := range children {
		if err := c.copyManifest(ctx, srcRepo, dstRepo, ch.Digest.String(), nil, depth+1); err != nil {
			return err
		}
	}
	for _, b := range blobs {
		if err := c.copyBlob(ctx, srcRepo, dstRepo, b); err != nil {
			return err
		}
	}
	return nil
}

// copyBlob sends a blob the destination lacks: a HEAD first, then a
// mount where one is known, else the content at the policy's speed.
func (c *copier) copyBlob(ctx context.Context, srcRepo, dstRepo string, d v1.Descriptor) error {
	dgst := d.Digest.String()
	ok, err := c.dst.haveBlob(ctx, dstRepo, dgst)
	if err != nil {
		return fmt.Errorf("checking blob %s at the destination: %w", dgst, err)
	}
	if ok {
		c.stats.blobsPresent++
		return nil
	}
	mount := ""
	if c.mountFrom != nil {
		mount = c.mountFrom(ctx, dgst)
	}
	open := func() (io.ReadCloser, error) {
		rc, n, err := c.src.openBlob(ctx, srcRepo, dgst)
		if err != nil {
			return nil, fmt.Errorf("reading blob %s at the source: %w", dgst, err)
		}
		if n >= 0 && n != d.Size {
			rc.Close()
			return nil, errdefs.Corrupt(fmt.Errorf("blob %s has %d bytes at the source; its manifest says %d", dgst, n, d.Size))
		}
		return ctxio.Limit(ctx, rc, c.rate), nil
	}
	sent, err := c.dst.putBlob(ctx, dstRepo, endpoint.Blob{Digest: dgst, Size: d.Size, MediaType: string(d.MediaType)}, mount, open)
	if err != nil {
		return fmt.Errorf("sending blob %s: %w", dgst, err)
	}
	if sent {
		c.stats.blobsSent++
		c.stats.bytes += d.Size
		c.log.Info("blob sent", "digest", dgst, "bytes", d.Size)
	} else {
		c.stats.blobsMounted++
		c.log.Info("blob mounted", "digest", dgst, "from", mount)
	}
	return nil
}

// accessoryTag is cosign's tag of a signature, attestation or SBOM.
var accessoryTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}\.(sig|att|sbom)$`)

// copyReferrers copies what refers to dgst: the referrers API (or its
// fallback tag) and cosign's tags, whatever the policy's filters say.
func (c *copier) copyReferrers(ctx context.Context, srcRepo, dstRepo, dgst string, depth int) error {
	refs, err := c.src.referrers(ctx, srcRepo, dgst)
	if err != nil {
		return fmt.Errorf("listing the referrers of %s@%s: %w", srcRepo, dgst, err)
	}
	for _, r := range refs {
		if c.done[r.Digest.String()] {
			continue
		}
		c.log.Info("copying a referrer", "subject", dgst, "digest", r.Digest.String(), "artifact_type", r.ArtifactType)
		if err := c.copyManifest(ctx, srcRepo, dstRepo, r.Digest.String(), nil, depth+1); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(dgst, "sha256:") {
		return nil
	}
	if c.srcTags == nil {
		if c.srcTags, err = c.src.tags(ctx, srcRepo); err != nil {
			return fmt.Errorf("listing the tags of %s: %w", srcRepo, err)
		}
		if c.srcTags == nil {
			c.srcTags = []string{}
		}
	}
	prefix := "sha256-" + strings.TrimPrefix(dgst, "sha256:") + "."
	for _, t := range c.srcTags {
		if !strings.HasPrefix(t, prefix) || !accessoryTag.MatchString(t) {
			continue
		}
		d, err := c.src.head(ctx, srcRepo, t)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s:%s at the source: %w", srcRepo, t, err)
		}
		c.log.Info("copying an accessory", "subject", dgst, "tag", t)
		if err := c.copyManifest(ctx, srcRepo, dstRepo, d, []string{t}, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// permanent tells failures a retry cannot fix.
func permanent(err error) bool {
	for _, class := range []error{errdefs.ErrInvalidArgument, errdefs.ErrCorrupt, errdefs.ErrTooLarge, errdefs.ErrDenied,
		errdefs.ErrUnauthorized, errdefs.ErrFailedPrecondition, errdefs.ErrUnsupported, errdefs.ErrNotFound} {
		if errors.Is(err, class) {
			return true
		}
	}
	return false
}

// runTask is a REPLICATION job.
func (s *Service) runTask(ctx context.Context, j *jobs.Job, a taskArgs) (err error) {
	defer func() {
		final := err == nil || jobs.IsPermanent(err) || j.Attempt >= j.MaxAttempts
		if final && ctx.Err() == nil {
			s.notify(context.WithoutCancel(ctx), j, a, err)
		}
	}()
	src, err := s.side(ctx, a.SrcRegistry)
	if err != nil {
		return s.taskError(j, err)
	}
	dst, err := s.side(ctx, a.DstRegistry)
	if err != nil {
		return s.taskError(j, err)
	}
	if a.Operation == OpDeletion {
		return s.deleteTask(ctx, j, a, dst)
	}
	j.Log.Info(fmt.Sprintf("copying %s:[%s] (source: %s) to %s (destination: %s)", a.SrcRepo, a.references(), src, a.DstRepo, dst),
		"attempt", j.Attempt, "override", a.Override)
	if a.Speed > 0 {
		j.Log.Info(fmt.Sprintf("limit network speed at %d KB/s", a.Speed))
	}
	if err := dst.ensureNamespace(ctx, a.DstRepo); err != nil {
		return s.taskError(j, fmt.Errorf("preparing %s at the destination: %w", a.DstRepo, err))
	}
	c := &copier{src: src, dst: dst, log: j.Log, override: a.Override, rate: int64(a.Speed) * 1024, done: map[string]bool{}}
	if a.SrcRegistry == 0 {
		c.mountFrom = s.mounter(ctx, a)
	}
	var failed []string
	var last error
	for _, art := range a.Artifacts {
		if err := c.copyArtifact(ctx, a.SrcRepo, a.DstRepo, art); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ref := art.Digest
			if len(art.Tags) > 0 {
				ref = strings.Join(art.Tags, ",")
			}
			j.Log.Error("copying an artifact failed", "artifact", a.SrcRepo+":"+ref, "error", err.Error())
			failed = append(failed, ref)
			last = err
		}
	}
	j.Log.Info(fmt.Sprintf("copy of %s to %s finished", a.SrcRepo, a.DstRepo), "manifests_stored", c.stats.manifests,
		"blobs_sent", c.stats.blobsSent, "blobs_mounted", c.stats.blobsMounted, "blobs_already_there", c.stats.blobsPresent, "bytes_sent", c.stats.bytes)
	if len(failed) > 0 {
		err := fmt.Errorf("%d of %d artifact(s) failed (%s): %w", len(failed), len(a.Artifacts), strings.Join(failed, " "), last)
		if permanent(last) {
			return jobs.Permanent(err)
		}
		return err
	}
	return nil
}

// taskError logs a task's failure and marks those a retry cannot fix.
func (s *Service) taskError(j *jobs.Job, err error) error {
	j.Log.Error("replication failed", "error", err.Error())
	if permanent(err) {
		return jobs.Permanent(err)
	}
	return err
}

// deleteTask deletes, at the destination, what was deleted in lading.
func (s *Service) deleteTask(ctx context.Context, j *jobs.Job, a taskArgs, dst side) error {
	for _, art := range a.Artifacts {
		refs := art.Tags
		if len(refs) == 0 {
			refs = []string{art.Digest}
		}
		for _, ref := range refs {
			err := dst.delete(ctx, a.DstRepo, ref)
			if ref != art.Digest && errdefs.IsInvalidArgument(err) {
				err = s.deleteTagged(ctx, j, dst, a.DstRepo, ref, art.Digest, err)
			}
			switch {
			case errdefs.IsNotFound(err):
				j.Log.Info("already absent at the destination", "repository", a.DstRepo, "reference", ref)
			case err != nil:
				return s.taskError(j, fmt.Errorf("deleting %s:%s at the destination: %w", a.DstRepo, ref, err))
			default:
				j.Log.Info("deleted at the destination", "repository", a.DstRepo, "reference", ref)
			}
		}
	}
	return nil
}

// deleteTagged is the deletion of a tag at a destination that refused
// it (Distribution 2.x answers 400 DIGEST_INVALID: the distribution spec
// made deleting tags optional). As Harbor does, the manifest the tag
// names is deleted, with its other tags there, but only while the tag
// still names the artifact deleted in lading; otherwise the refusal
// stands.
func (s *Service) deleteTagged(ctx context.Context, j *jobs.Job, dst side, repo, tag, dgst string, refused error) error {
	d, err := dst.head(ctx, repo, tag)
	if err != nil {
		return err
	}
	if d != dgst {
		return fmt.Errorf("%w (the tag names %s there, not %s: left alone)", refused, d, dgst)
	}
	j.Log.Warn("the destination cannot delete a tag: deleting the manifest it names, as Harbor does", "repository", repo, "tag", tag, "digest", dgst, "refusal", refused.Error())
	return dst.delete(ctx, repo, dgst)
}

// mounter finds, for a push-based task, a destination repository that
// should have a blob already: another lading repository holding it,
// covered by the same policy, mapped to its destination name.
func (s *Service) mounter(ctx context.Context, a taskArgs) func(context.Context, string) string {
	p, err := s.policy(ctx, a.Policy)
	if err != nil {
		return nil
	}
	fs := filters(p.Filters)
	atLeastTwo, _ := s.inProjects(ctx, p.DestRegistry)
	return func(ctx context.Context, dgst string) string {
		repos, err := s.local.BlobRepositories(ctx, dgst, 20)
		if err != nil {
			return ""
		}
		for _, r := range repos {
			if r == a.SrcRepo || !fs.repository(r) {
				continue
			}
			if d, err := destination(r, p.DestNamespace, p.DestNamespaceReplaceCount, atLeastTwo); err == nil && d != a.DstRepo {
				return d
			}
		}
		return ""
	}
}
