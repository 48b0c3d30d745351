package ui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
)

// target is what a /projects/{project}/r/{rest...} path names: a
// repository, and maybe an artifact of it and a panel of that artifact.
// Repository names never have a path component "-", so ".../-/" separates
// the artifact.
type target struct {
	Project  string
	Repo     string // within the project
	Artifact string // a digest or a tag
	Panel    string
}

func (c *call) target() target {
	t := target{Project: c.r.PathValue("project")}
	rest := c.r.PathValue("rest")
	repo, art, ok := strings.Cut(rest, "/-/")
	t.Repo = strings.TrimSuffix(repo, "/")
	if ok {
		t.Artifact, t.Panel, _ = strings.Cut(art, "/")
	}
	return t
}

func (t target) ref() project.Ref { return project.Ref{Name: t.Project} }

// RepoURL is the repository page's path.
func (t target) RepoURL() string {
	return "/projects/" + url.PathEscape(t.Project) + "/r/" + t.Repo
}

// ArtifactURL is the artifact page's path for a digest or tag.
func (t target) ArtifactURL(ref string) string { return t.RepoURL() + "/-/" + ref }

func (s *Server) repositoryOrArtifact(c *call) error {
	t := c.target()
	if t.Artifact != "" {
		return s.artifactPage(c, t)
	}
	return s.repositoryPage(c, t)
}

func (s *Server) repositoryOrArtifactPost(c *call) error {
	t := c.target()
	f := c.r.PostForm
	var err error
	var msg string
	to := t.RepoURL()
	switch action := f.Get("action"); {
	case t.Artifact == "" && action == "description":
		err = s.svc.Artifacts.UpdateRepository(c.ctx, c.who, t.ref(), t.Repo, f.Get("description"))
		msg = "Description saved."
	case t.Artifact == "" && action == "delete":
		err = s.svc.Artifacts.DeleteRepository(c.ctx, c.who, t.ref(), t.Repo)
		msg, to = "Repository "+t.Project+"/"+t.Repo+" deleted.", "/projects/"+url.PathEscape(t.Project)+"/repositories"
	case t.Artifact != "" && action == "delete":
		err = s.svc.Artifacts.DeleteArtifact(c.ctx, c.who, t.ref(), t.Repo, t.Artifact)
		msg = "Artifact " + shortDigest(t.Artifact) + " deleted."
	case t.Artifact != "" && action == "add-tag":
		tag := strings.TrimSpace(f.Get("tag"))
		err = s.svc.Artifacts.CreateTag(c.ctx, c.who, t.ref(), t.Repo, t.Artifact, tag)
		msg, to = "Tag "+tag+" added.", t.ArtifactURL(t.Artifact)
	case t.Artifact != "" && (action == "scan" || action == "stop-scan"):
		msg, err = s.scanAction(c, t, action)
		if c.r.PostForm.Get("from") != "list" {
			to = t.ArtifactURL(t.Artifact)
		}
	case t.Artifact != "" && (action == "attach-label" || action == "detach-label"):
		msg, err = s.labelAction(c, t, action)
		to = t.ArtifactURL(t.Artifact)
	case t.Artifact != "" && action == "delete-tag":
		tag := f.Get("tag")
		err = s.svc.Artifacts.DeleteTag(c.ctx, c.who, t.ref(), t.Repo, t.Artifact, tag)
		msg, to = "Tag "+tag+" deleted.", t.ArtifactURL(t.Artifact)
	default:
		return notFound("no action " + action + " here")
	}
	if formError(err) {
		c.flash(err.Error())
		return c.redirect(to)
	}
	if err != nil {
		return err
	}
	c.flash(msg)
	return c.redirect(to)
}

// artifactRow is one artifact of the repository page.
type artifactRow struct {
	artifact.Artifact
	// MoreTags is how many tags are not shown in the row.
	MoreTags int
	// PullRef is "project/repo:tag", or "@digest" without a tag.
	PullRef string
	Summary *inspect.Summary
	Labels  []label.Label
	// Signed is set when the artifact has a signature; Scan is its
	// registry-side scan, when scanning is plugged in and it has one.
	Signed bool
	Scan   *scanView
}

// sortOptions are the repository page's orders.
var sortOptions = []struct{ Value, Label string }{
	{"", "newest first"}, {"push_time", "oldest first"}, {"-size", "largest first"}, {"size", "smallest first"},
	{"-pull_time", "last pulled first"},
}

// rowTags is how many tags a row shows.
const rowTags = 5

func (s *Server) repositoryPage(c *call, t target) error {
	repo, err := s.svc.Artifacts.Repository(c.ctx, c.who, t.ref(), t.Repo)
	if err != nil {
		return err
	}
	v := c.r.URL.Query()
	q := query.Query{}
	tag := strings.TrimSpace(v.Get("tag"))
	switch {
	case tag == "untagged":
		q = q.With("tags", "nil")
	case tag != "":
		q = q.WithFuzzy("tags", tag)
	}
	if ty := v.Get("type"); ty != "" {
		q = q.With("type", ty)
	}
	sort := v.Get("sort")
	switch sort {
	case "size", "-size", "push_time", "-push_time", "pull_time", "-pull_time":
		q.Sorts = []query.Sort{{Key: strings.TrimPrefix(sort, "-"), Desc: strings.HasPrefix(sort, "-")}}
	default:
		sort = ""
	}
	page := c.pageOf()
	arts, tagCounts, total, err := s.svc.Artifacts.ArtifactsSomeTags(c.ctx, c.who, t.ref(), t.Repo, q, page, rowTags, artifact.WithAccessories)
	if err != nil {
		return err
	}
	scans, err := s.scanViews(c, arts)
	if err != nil {
		return err
	}
	rows := make([]artifactRow, len(arts))
	for i, a := range arts {
		rows[i] = artifactRow{Artifact: a, PullRef: a.RepositoryName + "@" + a.Digest, MoreTags: int(tagCounts[a.ID]) - len(a.Tags), Signed: signed(a)}
		if v, ok := scans[a.Digest]; ok {
			rows[i].Scan = &v
		}
		if len(a.Tags) > 0 {
			rows[i].PullRef = a.RepositoryName + ":" + a.Tags[0].Name
		}
	}
	if s.svc.Labels != nil {
		ids := make([]int64, len(arts))
		for i, a := range arts {
			ids[i] = a.ID
		}
		labels, err := s.svc.Labels.Of(c.ctx, ids)
		if err != nil {
			return err
		}
		for i := range rows {
			rows[i].Labels = labels[rows[i].ID]
		}
	}
	if s.svc.Inspect != nil {
		sums, err := s.svc.Inspect.Summaries(c.ctx, c.who, t.ref(), arts)
		if err != nil {
			return err
		}
		for i := range rows {
			if sm, ok := sums[rows[i].Digest]; ok {
				rows[i].Summary = &sm
			}
		}
	}
	return c.render(http.StatusOK, "repository", t.Project+"/"+t.Repo, map[string]any{
		"T": t, "Repo": repo, "Artifacts": rows, "Pager": newPager(c.r.URL, page, total),
		"Tag": tag, "Sort": sort, "Perms": c.projectPerms(repo.ProjectID), "Host": c.r.Host,
		"Analyzer": s.svc.Inspect != nil && s.svc.Inspect.CanAnalyze(), "ScanOn": s.scans != nil,
	})
}
