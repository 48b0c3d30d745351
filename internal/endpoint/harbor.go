package endpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Harbor's REST API v2.0, for type harbor: what the distribution API
// cannot say. Requests carry the credential directly (basic or bearer),
// as Harbor's API takes it.

const harborPageSize = 100

// harborMax bounds an API answer.
const harborMax = 16 << 20

// harborRequest sends a request to /api/v2.0 + path.
func (c *Client) harborRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	u, err := url.Parse(c.ep.URL + "/api/v2.0" + path)
	if err != nil {
		return nil, err
	}
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch c.ep.Credential.Type {
	case CredentialBasic:
		req.SetBasicAuth(c.ep.Credential.AccessKey, c.ep.Credential.AccessSecret)
	case CredentialOAuth:
		req.Header.Set("Authorization", "Bearer "+c.ep.Credential.AccessSecret)
	}
	hc := &http.Client{Transport: c.rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	return resp, nil
}

// harborGet GETs a JSON answer into out and returns X-Total-Count (-1
// when absent).
func (c *Client) harborGet(ctx context.Context, path string, q url.Values, out any) (int, error) {
	resp, err := c.harborRequest(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, statusError(resp, "GET /api/v2.0"+path)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, harborMax)).Decode(out); err != nil {
		return 0, classifyStatus(http.StatusBadGateway, fmt.Errorf("GET /api/v2.0%s: the answer is not Harbor's JSON: %v", path, err))
	}
	total := -1
	if s := resp.Header.Get("X-Total-Count"); s != "" {
		fmt.Sscan(s, &total)
	}
	return total, nil
}

// harborPages GETs every page of a listing.
func harborPages[T any](ctx context.Context, c *Client, path string, q url.Values) ([]T, error) {
	var out []T
	if q == nil {
		q = url.Values{}
	}
	q.Set("page_size", itoa(harborPageSize))
	for page := 1; page <= 100000; page++ {
		q.Set("page", itoa(page))
		var items []T
		if _, err := c.harborGet(ctx, path, q, &items); err != nil {
			return nil, err
		}
		out = append(out, items...)
		if len(items) < harborPageSize {
			break
		}
	}
	return out, nil
}

func (c *Client) harborRepositories(ctx context.Context) ([]string, error) {
	type repo struct {
		Name string `json:"name"`
	}
	list, err := harborPages[repo](ctx, c, "/repositories", nil)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, r := range list {
		out = append(out, r.Name)
	}
	return out, nil
}

// harborPath is an API path to a repository's artifacts: the project,
// then the rest of the name escaped twice, as Harbor's clients do.
func harborPath(repo string) (string, error) {
	proj, rest, ok := strings.Cut(repo, "/")
	if !ok {
		return "", fmt.Errorf("repository %s is not in a Harbor project", repo)
	}
	return "/projects/" + url.PathEscape(proj) + "/repositories/" + url.PathEscape(url.PathEscape(rest)), nil
}

func (c *Client) harborArtifacts(ctx context.Context, repo string) ([]Artifact, error) {
	path, err := harborPath(repo)
	if err != nil {
		return nil, err
	}
	type named struct {
		Name string `json:"name"`
	}
	type artifact struct {
		Digest            string  `json:"digest"`
		Type              string  `json:"type"`
		ManifestMediaType string  `json:"manifest_media_type"`
		Tags              []named `json:"tags"`
		Labels            []named `json:"labels"`
	}
	q := url.Values{"with_tag": {"true"}, "with_label": {"true"}}
	list, err := harborPages[artifact](ctx, c, path+"/artifacts", q)
	if err != nil {
		return nil, err
	}
	out := make([]Artifact, 0, len(list))
	for _, a := range list {
		x := Artifact{Digest: a.Digest, Type: a.Type, MediaType: a.ManifestMediaType}
		for _, t := range a.Tags {
			x.Tags = append(x.Tags, t.Name)
		}
		for _, l := range a.Labels {
			x.Labels = append(x.Labels, l.Name)
		}
		out = append(out, x)
	}
	return out, nil
}

func (c *Client) harborEnsureProject(ctx context.Context, project string) error {
	resp, err := c.harborRequest(ctx, http.MethodHead, "/projects", url.Values{"project_name": {project}}, nil)
	if err != nil {
		return err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
	default:
		return statusError(resp, "HEAD /api/v2.0/projects?project_name="+project)
	}
	body := map[string]any{"project_name": project, "metadata": map[string]string{"public": "false"}}
	resp, err = c.harborRequest(ctx, http.MethodPost, "/projects", nil, body)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusConflict {
		return nil
	}
	return statusError(resp, "creating the project "+project)
}
