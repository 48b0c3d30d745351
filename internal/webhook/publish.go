package webhook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
)

// Artifact publishes PUSH_ARTIFACT, PULL_ARTIFACT or DELETE_ARTIFACT for
// a manifest of repo ("PROJECT/NAME"), as the registry's events report
// them: host is the registry's address as clients name it (for
// resource_url), tags the tags pushed, pulled by or deleted (the digest
// stands for the tag when there is none, as in Harbor). A repository
// outside any project has no webhooks.
func (s *Service) Artifact(ctx context.Context, typ, host, repo, digest string, tags []string, operator string) error {
	p, err := s.projectOf(ctx, repo)
	if err != nil || p.ID == 0 {
		return err
	}
	ref := digest
	if len(tags) > 0 && tags[0] != "" {
		ref = tags[0]
	}
	var created time.Time
	if s.opt.RepoCreated != nil && typ != DeleteArtifact {
		created = s.opt.RepoCreated(ctx, repo)
	}
	return s.Publish(ctx, Event{Type: typ, ProjectID: p.ID, Operator: operator, Data: EventData{
		Resources:  []Resource{{Digest: digest, Tag: ref, ResourceURL: ResourceURL(host, repo, ref)}},
		Repository: RepositoryOf(repo, p.Public, created),
	}})
}

// Quota publishes QUOTA_EXCEED (a push refused) or QUOTA_WARNING (a
// project's usage past the warning threshold) with Harbor's payload:
// details go to custom_attributes.Details.
func (s *Service) Quota(ctx context.Context, typ, repo, digest, tag, details, operator string) error {
	if typ != QuotaExceed && typ != QuotaWarning {
		return errdefs.InvalidArgument(fmt.Errorf("%s is not a quota event", typ))
	}
	p, err := s.projectOf(ctx, repo)
	if err != nil || p.ID == 0 {
		return err
	}
	e := Event{Type: typ, ProjectID: p.ID, Operator: operator, Data: EventData{
		Repository: RepositoryOf(repo, p.Public, time.Time{}),
		Custom:     map[string]string{"Details": details},
	}}
	if tag != "" || digest != "" {
		e.Data.Resources = []Resource{{Digest: digest, Tag: tag}}
	}
	return s.Publish(ctx, e)
}

// WarningPercent is the share of a quota past which pushes raise
// QUOTA_WARNING (Harbor's default, 85%).
const WarningPercent = 85

// QuotaWarningDetails is Harbor's message for a quota past the warning
// threshold, or "" when used is below it (or there is no limit).
func QuotaWarningDetails(used, hard int64) string {
	if hard <= 0 || used*100 < hard*WarningPercent {
		return ""
	}
	return fmt.Sprintf("quota usage reach %d%%: resource storage used %s of %s", WarningPercent, bytesText(used), bytesText(hard))
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func (s *Service) projectOf(ctx context.Context, repo string) (info struct {
	ID     int64
	Public bool
}, err error) {
	name, _, ok := strings.Cut(repo, "/")
	if !ok {
		return info, nil
	}
	p, err := s.projects.Resolve(ctx, project.Ref{Name: name})
	if errdefs.IsNotFound(err) {
		return info, nil
	}
	info.ID, info.Public = p.ID, p.Public
	return info, err
}
