package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/registrytest"
)

// lading runs the CLI in-process with its own root and returns stdout,
// stderr and the exit code.
type lading struct {
	t     *testing.T
	root  string
	stdin string
}

func newLading(t *testing.T) *lading {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // never touch the user's credentials
	return &lading{t: t, root: t.TempDir()}
}

func (l *lading) run(args ...string) (string, string, int) {
	l.t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), append([]string{"--root", l.root, "--progress", "none"}, args...), strings.NewReader(l.stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// ok runs and fails the test unless the exit code is 0.
func (l *lading) ok(args ...string) string {
	l.t.Helper()
	out, errs, code := l.run(args...)
	if code != 0 {
		l.t.Fatalf("lading %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

func TestExitCodes(t *testing.T) {
	l := newLading(t)
	if _, _, code := l.run("--bogus"); code != exitUsage {
		t.Errorf("unknown flag: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := l.run("inspect", "local:nothere:1"); code != exitError {
		t.Errorf("missing image: exit %d, want %d", code, exitError)
	}
	_, errs, code := l.run("inspect", "--platform", "bogus", "local:x")
	if code != exitUsage || !strings.Contains(errs, "os/arch") {
		t.Errorf("bad platform: exit %d, %q", code, errs)
	}
}

// TestImageWorkflow walks through the local-store commands on corpus
// images: pull, ls, inspect, history, tag, save, rmi, load, prune.
func TestImageWorkflow(t *testing.T) {
	corpus := corpustest.Dir(t)
	l := newLading(t)
	app := filepath.Join(corpus, "images", "alpine-3.20-app.oci.tar")
	out := l.ok("pull", "oci-archive:"+app+":latest", "corpus/app:1")
	if !strings.Contains(out, "sha256:51e7f8c739f6ba4de5e5786b0f44e49589109c8cf8ef07abbb0af0b4e17cd40a") {
		t.Errorf("pull printed %q, want the manifest digest from the corpus README", out)
	}
	l.ok("load", "-i", filepath.Join(corpus, "images", "alpine-3.10.docker-save.tar.gz"))

	var rows []lsEntry
	if err := json.Unmarshal([]byte(l.ok("ls", "--format", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Repository+":"+r.Tag] = r.ID
	}
	want := map[string]string{
		"corpus/app:1": "sha256:973dc03a43c7f068a2a22b7134c09a84f7d40245e3bfdf6c2d0d5d1d8b23a902",
		"alpine:3.10":  "sha256:af341ccd2df8b0e2d67cf8dd32e087bfda4e5756ebd1c76bbf3efa0dc246590e",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ls: %s has ID %q, want %q (all: %v)", k, got[k], v, got)
		}
	}

	var insp inspectOutput
	if err := json.Unmarshal([]byte(l.ok("inspect", "corpus/app:1")), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp.Layers) != 5 || insp.Layers[1].DiffID != "sha256:c1b53cf044d8d270100f3da906f2fcd6f92b0369f60e8cbc27884c6c94116da9" || insp.Config.WorkingDir != "/app" {
		t.Errorf("inspect: %d layers, layer 1 diffID %s, workdir %q", len(insp.Layers), insp.Layers[1].DiffID, insp.Config.WorkingDir)
	}
	// Inspect by image ID prefix, as docker allows.
	l.ok("inspect", "973dc03a43c7")

	hist := l.ok("history", "--no-trunc", "corpus/app:1")
	if !strings.Contains(hist, "apk del --no-network libc-utils") {
		t.Errorf("history lacks the apk del step:\n%s", hist)
	}

	l.ok("tag", "corpus/app:1", "example.com/app:2")
	save := filepath.Join(t.TempDir(), "both.tar")
	l.ok("save", "-o", save, "example.com/app:2", "alpine:3.10")
	l.ok("rmi", "example.com/app:2", "alpine:3.10", "corpus/app:1")
	if rows := l.ok("ls"); strings.Count(rows, "\n") != 1 {
		t.Errorf("ls after rmi:\n%s", rows)
	}
	out = l.ok("load", "-i", save)
	if !strings.Contains(out, "Loaded image: example.com/app:2") || !strings.Contains(out, "Loaded image: alpine:3.10") {
		t.Errorf("load: %q", out)
	}
	if err := json.Unmarshal([]byte(l.ok("inspect", "example.com/app:2")), &insp); err != nil {
		t.Fatal(err)
	}
	if insp.ID != want["corpus/app:1"] {
		t.Errorf("the image ID changed through save and load: %s", insp.ID)
	}
	out = l.ok("prune", "--dry-run")
	if !strings.Contains(out, "Would delete 0 blobs") {
		t.Errorf("prune after load: %q", out)
	}
}

func TestLoginPushPull(t *testing.T) {
	corpus := corpustest.Dir(t)
	reg := registrytest.Start(t, registrytest.Htpasswd)
	l := newLading(t)
	ref := reg.Host + "/corpus/alpine:3.9"
	l.ok("pull", "docker-archive:"+filepath.Join(corpus, "images", "alpine-3.9.docker.tar"), ref)

	if _, errs, code := l.run("push", ref); code == 0 || !strings.Contains(errs, "401") && !strings.Contains(strings.ToLower(errs), "unauthorized") {
		t.Fatalf("push before login: exit %d, %q", code, errs)
	}
	l.stdin = "wrong\n"
	if _, _, code := l.run("login", "-u", reg.User, "--password-stdin", reg.Host); code == 0 {
		t.Fatal("login with a wrong password succeeded")
	}
	l.stdin = reg.Password + "\n"
	if out := l.ok("login", "-u", reg.User, "--password-stdin", reg.Host); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("login: %q", out)
	}
	cfg, err := os.ReadFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"))
	if err != nil || !strings.Contains(string(cfg), reg.Host) {
		t.Fatalf("config.json after login: %s, %v", cfg, err)
	}
	l.ok("push", ref)
	l.ok("rmi", ref)
	out := l.ok("pull", ref)
	if !strings.Contains(out, "sha256:") {
		t.Errorf("pull: %q", out)
	}
	var insp inspectOutput
	json.Unmarshal([]byte(l.ok("inspect", ref)), &insp)
	if insp.ID != "sha256:affab69322fea4e383fe3e7c9bd447b1393fb23adbe991f0162171ef5289f469" {
		t.Errorf("image ID after push and pull: %s", insp.ID)
	}
	for _, layer := range insp.Layers {
		if !strings.HasSuffix(string(layer.MediaType), "gzip") {
			t.Errorf("pushed layer is %s, want gzip", layer.MediaType)
		}
	}
	l.ok("logout", reg.Host)
	l.ok("rmi", ref)
	if _, _, code := l.run("pull", ref); code == 0 {
		t.Error("pull after logout succeeded")
	}
}

func mustHash(t *testing.T, hex string) v1.Hash {
	t.Helper()
	return v1.Hash{Algorithm: "sha256", Hex: hex}
}

// writeSmallArchive writes a one-layer docker-archive and returns its path.
func writeSmallArchive(t *testing.T) string {
	t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "small.tar")
	tag, _ := name.NewTag("small:1")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}
