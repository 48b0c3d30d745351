package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// layoutDigest reads the manifest digest of the image tagged tag in an OCI
// layout written by a client.
func layoutDigest(t *testing.T, dir, tag string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == tag {
			return m.Digest
		}
	}
	t.Fatalf("no %s in %s", tag, b)
	return ""
}

// skopeo copies in and out, in OCI and Docker schema 2 form, and lists and
// deletes, anonymously, with basic auth, with tokens and over TLS.
func TestSkopeo(t *testing.T) {
	skopeo := tool(t, "skopeo")
	for _, tc := range []struct {
		name   string
		setups []setup
		creds  bool
		tls    bool
	}{
		{"no-auth", []setup{withNoAuth}, false, false},
		{"htpasswd-import", []setup{withHtpasswd}, true, false},
		{"db", nil, true, false},
		{"tls", []setup{withTLS}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := start(t, tc.setups...)
			src, want := ociLayout(t, "v1", 3000, 50000)
			common := []string{"--insecure-policy"}
			tlsFlag := "--tls-verify=false"
			var creds, srcCreds, destCreds []string
			if tc.creds {
				creds = []string{"--creds", user + ":" + password}
				srcCreds = []string{"--src-creds", user + ":" + password}
				destCreds = []string{"--dest-creds", user + ":" + password}
			}
			if tc.tls {
				// Verify against the self-signed certificate.
				certDir := t.TempDir()
				b, _ := os.ReadFile(reg.srv.Config.TLS.Certificate)
				os.WriteFile(filepath.Join(certDir, "ca.crt"), b, 0o644)
				tlsFlag = "--cert-dir=" + certDir
			}
			ref := "docker://" + reg.host + "/skopeo/app:v1"
			args := append(append([]string{}, common...), "copy", strings.Replace(tlsFlag, "--", "--dest-", 1))
			run(t, nil, skopeo, append(append(args, destCreds...), "oci:"+src+":v1", ref)...)
			out := filepath.Join(t.TempDir(), "out")
			args = append(append([]string{}, common...), "copy", strings.Replace(tlsFlag, "--", "--src-", 1))
			run(t, nil, skopeo, append(append(args, srcCreds...), ref, "oci:"+out+":v1")...)
			if got := layoutDigest(t, out, "v1"); got != want {
				t.Errorf("round trip changed the manifest: %s, want %s", got, want)
			}
			// Docker schema 2: converted by skopeo, stored as is.
			ref2 := "docker://" + reg.host + "/skopeo/v2s2:v1"
			args = append(append([]string{}, common...), "copy", "--format", "v2s2", strings.Replace(tlsFlag, "--", "--dest-", 1))
			run(t, nil, skopeo, append(append(args, destCreds...), "oci:"+src+":v1", ref2)...)
			raw := run(t, nil, skopeo, append(append([]string{"inspect", "--raw", tlsFlag}, creds...), ref2)...)
			if !strings.Contains(raw, "application/vnd.docker.distribution.manifest.v2+json") {
				t.Errorf("schema 2 manifest: %s", raw)
			}
			tags := run(t, nil, skopeo, append(append([]string{"list-tags", tlsFlag}, creds...), "docker://"+reg.host+"/skopeo/app")...)
			if !strings.Contains(tags, `"v1"`) {
				t.Errorf("list-tags: %s", tags)
			}
			run(t, nil, skopeo, append(append([]string{"delete", tlsFlag}, creds...), ref)...)
			if _, err := try(nil, skopeo, append(append([]string{"inspect", "--raw", tlsFlag}, creds...), ref)...); err == nil {
				t.Error("image still there after skopeo delete")
			}
		})
	}
}

// podman pushes and pulls (as root, with vfs storage in a temporary root).
func TestPodman(t *testing.T) {
	podman := tool(t, "podman")
	skopeo := tool(t, "skopeo")
	for _, tc := range []struct {
		name   string
		setups []setup
	}{
		{"no-auth", []setup{withNoAuth}},
		{"db", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := start(t, tc.setups...)
			dir := t.TempDir()
			p := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
				"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
			var creds []string
			if tc.name != "no-auth" {
				creds = []string{"--creds", user + ":" + password}
			}
			env := []string{"REGISTRY_AUTH_FILE=" + authFile(t, dir)}
			// The image to start from, put in the registry by skopeo.
			src, _ := ociLayout(t, "v1", 4000)
			first := reg.host + "/podman/src:v1"
			var destCreds []string
			if creds != nil {
				destCreds = []string{"--dest-creds", user + ":" + password}
			}
			run(t, nil, skopeo, append(append([]string{"--insecure-policy", "copy", "--dest-tls-verify=false"}, destCreds...), "oci:"+src+":v1", "docker://"+first)...)
			img := reg.host + "/podman/app:v1"
			run(t, env, podman, append(append(append(p, "pull", "--tls-verify=false"), creds...), first)...)
			id := strings.TrimSpace(run(t, env, podman, append(p, "images", "-q", "--no-trunc")...))
			run(t, env, podman, append(p, "tag", id, img)...)
			run(t, env, podman, append(append(append(p, "push", "--tls-verify=false"), creds...), img)...)
			run(t, env, podman, append(p, "rmi", "-a", "-f")...)
			run(t, env, podman, append(append(append(p, "pull", "--tls-verify=false"), creds...), img)...)
			if got := strings.TrimSpace(run(t, env, podman, append(p, "images", "-q", "--no-trunc")...)); got != id {
				t.Errorf("pulled image %q, pushed %q", got, id)
			}
			// And the registry agrees with skopeo about what podman pushed.
			raw := run(t, nil, skopeo, append([]string{"inspect", "--tls-verify=false"}, append(creds, "docker://"+img)...)...)
			if !strings.Contains(raw, `"Digest"`) {
				t.Errorf("skopeo inspect of podman's push: %s", raw)
			}
		})
	}
}

// buildah builds from scratch, pushes and pulls.
func TestBuildah(t *testing.T) {
	buildah := tool(t, "buildah")
	reg := start(t, withHtpasswd)
	dir := t.TempDir()
	b := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}
	env := []string{"REGISTRY_AUTH_FILE=" + authFile(t, dir), "BUILDAH_ISOLATION=chroot"}
	file := filepath.Join(dir, "hello.txt")
	os.WriteFile(file, []byte("built by buildah\n"), 0o644)
	ctr := strings.TrimSpace(run(t, env, buildah, append(b, "from", "scratch")...))
	run(t, env, buildah, append(b, "copy", ctr, file, "/hello.txt")...)
	run(t, env, buildah, append(b, "config", "--label", "org.lading.test=buildah", ctr)...)
	run(t, env, buildah, append(b, "commit", ctr, "built")...)
	img := "docker://" + reg.host + "/buildah/built:v1"
	creds := "--creds=" + user + ":" + password
	run(t, env, buildah, append(b, "push", "--tls-verify=false", creds, "built", img)...)
	run(t, env, buildah, append(b, "rm", "-a")...)
	run(t, env, buildah, append(b, "rmi", "-a", "-f")...)
	run(t, env, buildah, append(b, "pull", "--tls-verify=false", creds, reg.host+"/buildah/built:v1")...)
	out := run(t, env, buildah, append(b, "inspect", "--type", "image", reg.host+"/buildah/built:v1")...)
	if !strings.Contains(out, "org.lading.test") {
		t.Errorf("pulled image lacks its label: %.400s", out)
	}
}

// crane pushes, lists, copies across repositories (a mount), pulls and
// deletes, with token auth.
func TestCrane(t *testing.T) {
	crane := tool(t, "crane")
	reg := start(t)
	dir := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + dir}
	run(t, env, crane, "auth", "login", reg.host, "-u", user, "-p", password)
	layer := filepath.Join(dir, "layer.tar")
	os.WriteFile(layer, tarOf(t, "etc/hello", "hello from crane\n"), 0o644)
	img := reg.host + "/crane/app:v1"
	run(t, env, crane, "append", "--insecure", "-f", layer, "-t", img)
	digest := strings.TrimSpace(run(t, env, crane, "digest", "--insecure", img))
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("crane digest: %q", digest)
	}
	run(t, env, crane, "copy", "--insecure", img, reg.host+"/crane/copy:v1")
	if got := strings.TrimSpace(run(t, env, crane, "digest", "--insecure", reg.host+"/crane/copy:v1")); got != digest {
		t.Errorf("copy digest %s, want %s", got, digest)
	}
	tags := run(t, env, crane, "ls", "--insecure", reg.host+"/crane/app")
	if strings.TrimSpace(tags) != "v1" {
		t.Errorf("crane ls: %q", tags)
	}
	cat := run(t, env, crane, "catalog", "--insecure", reg.host)
	if !strings.Contains(cat, "crane/app") || !strings.Contains(cat, "crane/copy") {
		t.Errorf("crane catalog: %q", cat)
	}
	run(t, env, crane, "pull", "--insecure", img, filepath.Join(dir, "pulled.tar"))
	run(t, env, crane, "delete", "--insecure", reg.host+"/crane/copy@"+digest)
	if _, err := try(env, crane, "digest", "--insecure", reg.host+"/crane/copy:v1"); err == nil {
		t.Error("deleted manifest still resolves")
	}
}

// oras pushes an artifact, attaches a referrer, discovers it through the
// referrers API and pulls.
func TestOras(t *testing.T) {
	oras := tool(t, "oras")
	reg := start(t)
	dir := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + dir}
	creds := []string{"--plain-http", "-u", user, "-p", password}
	os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"packages":[]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "sig.txt"), []byte("signature"), 0o644)
	ref := reg.host + "/oras/art:v1"
	orasIn := func(args ...string) string {
		t.Helper()
		return runIn(t, dir, env, oras, args...)
	}
	orasIn(append(append([]string{"push"}, creds...), "--artifact-type", "application/vnd.lading.test", ref, "sbom.json:application/json")...)
	orasIn(append(append([]string{"attach"}, creds...), "--artifact-type", "application/vnd.lading.sig", ref, "sig.txt:text/plain")...)
	out := orasIn(append(append([]string{"discover"}, creds...), "--format", "json", ref)...)
	var disc struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	if err := json.Unmarshal([]byte(out), &disc); err != nil || len(disc.Referrers) != 1 || disc.Referrers[0].ArtifactType != "application/vnd.lading.sig" {
		t.Errorf("oras discover: %v %s", err, out)
	}
	pulled := filepath.Join(dir, "pulled")
	orasIn(append(append([]string{"pull"}, creds...), "-o", pulled, ref)...)
	if b, _ := os.ReadFile(filepath.Join(pulled, "sbom.json")); string(b) != `{"packages":[]}` {
		t.Errorf("pulled %q", b)
	}
}

// authFile is an empty containers-auth.json, so podman and buildah neither
// read nor write the user's own.
func authFile(t *testing.T, dir string) string {
	p := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
