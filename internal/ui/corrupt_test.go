package ui_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/inspect/compute"
	"github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/ui"
)

// TestCorruptLayer: a stored layer whose bytes were damaged on disk is
// named in the artifact page's analysis panel (with the page and as the
// fragment the script asks for); the rest of the page is shown.
func TestCorruptLayer(t *testing.T) {
	content := filepath.Join(t.TempDir(), "content")
	s := start(t, compute.New(), func(c *server.Config) { c.Storage.Filesystem.Root = content })
	if _, err := s.Core.Projects.Create(context.Background(), s.admin(t), project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	img := labeled(t, map[string]string{"n": "corrupt"})
	d := s.push(t, img, "acme/app", "v1", "admin", "Harbor12345")
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(content, "blobs", ld.Algorithm, ld.Hex[:2], ld.Hex, "data")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, s.URL)
	br.login("admin", "Harbor12345")
	page := "/projects/acme/r/app/-/" + d.String() + "/vulnerabilities"
	for _, fragment := range []string{"", "analysis"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+page, nil)
		if fragment != "" {
			req.Header.Set(ui.FragmentHeader, fragment)
		}
		resp, err := br.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<div id="analysis"><p class="error" role="alert">The image could not be analyzed: `) || !strings.Contains(body, ld.String()) {
			t.Errorf("fragment %q: %d, want the panel naming layer %s: %.1500s", fragment, resp.StatusCode, ld, body)
		}
		if fragment == "" && !strings.Contains(body, `id="hist-h"`) {
			t.Errorf("the page around the panel is missing")
		}
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLabels: an artifact's labels (Harbor's, attached through the label
// service) are shown in the repository's list, names and descriptions
// escaped.
func TestLabels(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	admin := s.admin(t)
	if _, err := s.Core.Projects.Create(ctx, admin, project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	d := s.push(t, labeled(t, map[string]string{"n": "l"}), "acme/app", "v1", "admin", "Harbor12345")
	id, err := s.Core.Labels.Create(ctx, admin, label.Label{Name: "qa<b>ok</b>", Description: xss})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Core.Labels.Attach(ctx, admin, project.Ref{Name: "acme"}, "app", d.String(), id); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, s.URL)
	br.login("admin", "Harbor12345")
	st, body := br.get("/projects/acme/r/app")
	if st != http.StatusOK || !strings.Contains(body, `<span class="label" title="&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;`) ||
		!strings.Contains(body, `>qa&lt;b&gt;ok&lt;/b&gt;</span>`) {
		t.Errorf("repository page: %d, label not shown escaped: %.3000s", st, body)
	}
	checkNoInline(t, "labels", body)
}
