package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/testenv"
)

func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuildCommand: -t names the result in the store; a rebuild prints the
// same image ID; --output alone writes the destination (read back by
// skopeo) and adds no image to the store; a tar on stdin is a context.
func TestBuildCommand(t *testing.T) {
	l := newLading(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello.txt /\nENV GREETING=hi\nCMD [\"/hello\"]\n",
		"hello.txt":  "hello\n",
	})
	id := strings.TrimSpace(l.ok("build", "-t", "example.com/hello:1", "-t", "hello:2", dir))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("build printed %q", id)
	}
	if again := strings.TrimSpace(l.ok("build", "-t", "example.com/hello:1", dir)); again != id {
		t.Errorf("rebuild printed %s, first build %s", again, id)
	}
	var rows []lsEntry
	if err := json.Unmarshal([]byte(l.ok("ls", "--format", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != id {
		t.Errorf("ls: %+v", rows)
	}
	var insp inspectOutput
	if err := json.Unmarshal([]byte(l.ok("inspect", "hello:2")), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp.Layers) != 1 || strings.Join(insp.Config.Cmd, " ") != "/hello" {
		t.Errorf("inspect: %+v", insp)
	}

	// --output alone: the destination only.
	l2 := newLading(t)
	out := filepath.Join(t.TempDir(), "hello.oci.tar")
	l2.ok("build", "--output", "oci-archive:"+out+":v1", dir)
	if rows := l2.ok("ls"); strings.Count(rows, "\n") > 1 {
		t.Errorf("--output alone added images to the store:\n%s", rows)
	}
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	raw, err := exec.Command(skopeo, "inspect", "--config", "oci-archive:"+out+":v1").Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	var cfg struct {
		Config struct{ Env []string } `json:"config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(cfg.Config.Env, " "), "GREETING=hi") {
		t.Errorf("skopeo reads env %v", cfg.Config.Env)
	}

	// --output to each other kind of destination, read back by skopeo.
	reg := registrytest.Start(t, registrytest.None)
	outs := map[string]string{
		"oci:" + filepath.Join(t.TempDir(), "layout") + ":v1":                     "",
		"docker-archive:" + filepath.Join(t.TempDir(), "hello.tar") + ":hello:v1": "",
		reg.Host + "/build/hello:v1":                                              "docker://",
	}
	for dest, skopeoPrefix := range outs {
		l2.ok("build", "--output", dest, dir)
		ref := skopeoPrefix + dest
		args := []string{"inspect", "--config", ref}
		if skopeoPrefix != "" {
			args = []string{"inspect", "--tls-verify=false", "--config", ref}
		}
		raw, err := exec.Command(skopeo, args...).Output()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v", ref, err)
		}
		cfg.Config.Env = nil
		if err := json.Unmarshal(raw, &cfg); err != nil || !strings.Contains(strings.Join(cfg.Config.Env, " "), "GREETING=hi") {
			t.Errorf("--output %s: skopeo reads env %v (%v)", dest, cfg.Config.Env, err)
		}
	}

	// A tar on standard input.
	var tarBuf bytes.Buffer
	if err := layer.FromDir(context.Background(), &tarBuf, dir); err != nil {
		t.Fatal(err)
	}
	l.stdin = tarBuf.String()
	if got := strings.TrimSpace(l.ok("build", "-")); !strings.HasPrefix(got, "sha256:") {
		t.Errorf("build - printed %q", got)
	}
}

func TestBuildErrors(t *testing.T) {
	l := newLading(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY --nope a /\n"})
	_, errs, code := l.run("build", dir)
	if code != exitError || !strings.Contains(errs, "Dockerfile:2: dockerfile parse error on line 2: unknown flag: --nope") {
		t.Errorf("exit %d: %s", code, errs)
	}
	if _, errs, code := l.run("build", "--network", "bridge", dir); code != exitUsage {
		t.Errorf("--network bridge: exit %d %s", code, errs)
	}
	if _, errs, code := l.run("build", "--runtime", "crun", dir); code != exitUsage {
		t.Errorf("--runtime crun: exit %d %s", code, errs)
	}
	if _, _, code := l.run("build"); code != exitUsage {
		t.Errorf("no context: exit %d", code)
	}
}
