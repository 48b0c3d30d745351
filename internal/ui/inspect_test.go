package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/inspect/compute"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/testenv"
)

// TestInspectAgainstSkopeo pushes a corpus image with skopeo and checks
// what the artifact page's service reads of it (platform, config,
// history, layers) against what skopeo reads from the registry, the
// packages the analyzer finds against the corpus's counts (apk info, npm
// ls), and who may read it.
func TestInspectAgainstSkopeo(t *testing.T) {
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	img := corpustest.Image(t, "alpine-3.20-app.oci.tar")
	s := start(t, compute.New())
	ctx := context.Background()
	admin := s.admin(t)
	if _, err := s.Core.Projects.Create(ctx, admin, project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"guest", "outsider"} {
		if _, err := s.Core.Identity.CreateUser(ctx, admin, identity.UserCreate{Username: u, Email: u + "@example.com", Realname: u, Password: userPassword}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Core.Projects.AddMember(ctx, admin, project.Ref{Name: "acme"}, project.MemberCreate{Username: "guest", Role: access.LimitedGuest}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(skopeo, "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", "admin:Harbor12345",
		"oci-archive:"+img+":latest", "docker://"+s.Host+"/acme/app:1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	skopeoJSON := func(v any, args ...string) {
		t.Helper()
		out, err := exec.Command(skopeo, append([]string{"inspect", "--tls-verify=false", "--creds", "admin:Harbor12345"}, args...)...).Output()
		if err != nil {
			t.Fatalf("skopeo inspect %v: %v", args, err)
		}
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatal(err)
		}
	}
	ref := "docker://" + s.Host + "/acme/app:1"
	var cfg struct {
		Architecture, OS string
		Config           struct {
			Env, Cmd, Entrypoint []string
			User, WorkingDir     string
			Labels               map[string]string
		}
		History []struct {
			CreatedBy  string `json:"created_by"`
			EmptyLayer bool   `json:"empty_layer"`
		}
	}
	skopeoJSON(&cfg, "--config", ref)
	var man struct {
		Layers []struct {
			Digest string
			Size   int64
		}
	}
	skopeoJSON(&man, "--raw", ref)

	d, err := s.Inspect.Artifact(ctx, admin, project.Ref{Name: "acme"}, "app", "1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Image == nil {
		t.Fatal("no image details")
	}
	type view struct {
		Platform             string
		Env, Cmd, Entrypoint []string
		User, WorkingDir     string
		Labels               map[string]string
		History              []string
		Layers               []string
		Sizes                []int64
	}
	want := view{Platform: cfg.OS + "/" + cfg.Architecture, Env: cfg.Config.Env, Cmd: cfg.Config.Cmd, Entrypoint: cfg.Config.Entrypoint,
		User: cfg.Config.User, WorkingDir: cfg.Config.WorkingDir, Labels: cfg.Config.Labels}
	for _, h := range cfg.History {
		want.History = append(want.History, h.CreatedBy)
	}
	for _, l := range man.Layers {
		want.Layers, want.Sizes = append(want.Layers, l.Digest), append(want.Sizes, l.Size)
	}
	c := d.Image.Config
	got := view{Platform: d.Image.Platform, Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, User: c.User, WorkingDir: c.WorkingDir, Labels: c.Labels}
	for _, h := range d.Image.History {
		got.History = append(got.History, h.CreatedBy)
	}
	for _, l := range d.Image.Layers {
		got.Layers, got.Sizes = append(got.Layers, l.Digest), append(got.Sizes, l.Size)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("artifact details differ from skopeo's (-skopeo +lading):\n%s", diff)
	}

	// What is inside: the corpus README's counts, from apk info and npm ls.
	an, err := s.Inspect.Analyze(ctx, admin, project.Ref{Name: "acme"}, "app", "1")
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]int{}
	for _, p := range an.Packages {
		byType[p.Type]++
		if p.Layer < 0 || p.Layer >= len(d.Image.Layers) {
			t.Errorf("%s %s: layer %d", p.Name, p.Version, p.Layer)
		}
	}
	if byType["apk"] != 12 || byType["node_modules"] != 81 {
		t.Errorf("packages by type %v, want 12 apk and 81 in node_modules", byType)
	}
	if an.BaseLayers != 1 {
		t.Errorf("base layers %d, want 1 (the Alpine image's ADD)", an.BaseLayers)
	}

	// Who may read it: a limited guest may (Harbor's matrix gives every
	// role artifact-addition read); an outsider may not even see the
	// artifact of a private project.
	guest, err := s.Core.Identity.Login(ctx, "guest", userPassword, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inspect.Analyze(ctx, guest, project.Ref{Name: "acme"}, "app", "1"); err != nil {
		t.Errorf("limited guest analyzing: %v", err)
	}
	for _, u := range []string{"outsider"} {
		who, err := s.Core.Identity.Login(ctx, u, userPassword, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Inspect.Analyze(ctx, who, project.Ref{Name: "acme"}, "app", "1"); !errors.Is(err, errdefs.ErrDenied) && !errdefs.IsNotFound(err) {
			t.Errorf("%s analyzing: %v, want a refusal", u, err)
		}
	}
}
