package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
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
	if _, _, code := l.run("pull"); code != exitUsage {
		t.Errorf("missing argument: exit %d, want %d", code, exitUsage)
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

// TestCredentialHelper has docker's credential-helper protocol supply and
// store the credentials: config.json names a helper (credsStore), lading
// runs docker-credential-<name> get/store as docker does.
func TestCredentialHelper(t *testing.T) {
	corpus := corpustest.Dir(t)
	reg := registrytest.Start(t, registrytest.Htpasswd)
	l := newLading(t)
	bin := t.TempDir()
	stored := filepath.Join(bin, "stored.json")
	script := `#!/bin/sh
case "$1" in
get) read server; printf '{"ServerURL":"%s","Username":"` + reg.User + `","Secret":"` + reg.Password + `"}' "$server" ;;
store) cat > '` + stored + `' ;;
erase) rm -f '` + stored + `' ;;
list) echo '{}' ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-ladingtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	cfg := filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")
	os.WriteFile(cfg, []byte(`{"credsStore":"ladingtest"}`), 0o600)

	ref := reg.Host + "/helper/alpine:3.9"
	l.ok("pull", "docker-archive:"+filepath.Join(corpus, "images", "alpine-3.9.docker.tar"), ref)
	l.ok("push", ref) // credentials from the helper's get

	l.stdin = reg.Password + "\n"
	l.ok("login", "-u", reg.User, "--password-stdin", reg.Host)
	b, err := os.ReadFile(stored)
	if err != nil || !strings.Contains(string(b), reg.Password) {
		t.Errorf("login did not hand the credentials to the helper: %s %v", b, err)
	}
	if c, _ := os.ReadFile(cfg); strings.Contains(string(c), reg.Password) {
		t.Errorf("the password landed in config.json despite credsStore: %s", c)
	}
}

// TestExportHostileLayer exports an image whose layer writes through a
// symlink that points out of the root: the command fails naming the image,
// the layer and the entry, writes nothing outside the target directory, and
// leaves no partial tar file.
func TestExportHostileLayer(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o755)
	var layerBuf bytes.Buffer
	tw := tar.NewWriter(&layerBuf)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: outside, Mode: 0o777})
	tw.WriteHeader(&tar.Header{Name: "evil/pwned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3})
	tw.Write([]byte("bad"))
	tw.Close()
	layerBytes := layerBuf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "hostile.tar")
	tag, _ := name.NewTag("hostile:1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	lad := newLading(t)
	for _, out := range []string{filepath.Join(dir, "rootfs") + "/", filepath.Join(dir, "rootfs.tar")} {
		_, errs, code := lad.run("export", "-o", out, "docker-archive:"+archive)
		if code != exitError {
			t.Fatalf("export -o %s: exit %d, want %d", out, code, exitError)
		}
		for _, want := range []string{"docker-archive:" + archive, "layer 1/1 sha256:", `"evil/pwned"`} {
			if !strings.Contains(errs, want) {
				t.Errorf("export -o %s: error %q does not name %s", out, errs, want)
			}
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("export wrote outside its target: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs.tar")); err == nil {
		t.Error("a failed export left a tar file")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".rootfs.tar.tmp-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}
