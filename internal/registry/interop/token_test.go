package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// The token service: an anonymous /v2/ is challenged to /service/token,
// which trades basic credentials for a token; basic credentials also work
// on /v2/ itself, as on Harbor; clients that follow the challenge log in
// and push (skopeo login then copy; crane login then push).
func TestTokenService(t *testing.T) {
	skopeo := tool(t, "skopeo")
	crane := tool(t, "crane")
	reg := start(t)
	base := "http://" + reg.host
	resp, err := http.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || ch != `Bearer realm="`+base+`/service/token",service="harbor-registry"` {
		t.Errorf("anonymous /v2/: %s, challenge %q", resp.Status, ch)
	}
	for _, path := range []string{"/v2/", "/v2/token/app/tags/list"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			t.Errorf("basic GET %s: %s", path, resp.Status)
		}
	}
	req, _ := http.NewRequest("GET", base+"/service/token?service=harbor-registry&scope=repository:token/app:pull", nil)
	req.SetBasicAuth(user, password)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("basic credentials at the token endpoint: %s", resp.Status)
	}

	dir := t.TempDir()
	authfile := filepath.Join(dir, "auth.json")
	os.WriteFile(authfile, []byte("{}"), 0o600)
	run(t, nil, skopeo, "login", "--tls-verify=false", "--authfile", authfile, "-u", user, "-p", password, reg.host)
	src, want := ociLayout(t, "v1", 2000)
	run(t, nil, skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "--dest-authfile", authfile, "oci:"+src+":v1", "docker://"+reg.host+"/token/skopeo:v1")
	got := run(t, nil, skopeo, "inspect", "--raw", "--tls-verify=false", "--authfile", authfile, "docker://"+reg.host+"/token/skopeo:v1")
	if d := sha256Hex(got); "sha256:"+d != want {
		t.Errorf("pushed manifest %s, want %s", d, want)
	}

	env := []string{"DOCKER_CONFIG=" + dir}
	run(t, env, crane, "auth", "login", reg.host, "-u", user, "-p", password)
	layer := filepath.Join(dir, "layer.tar")
	writeFile(t, layer, tarOf(t, "etc/token", "pushed with a token\n"))
	run(t, env, crane, "append", "--insecure", "-f", layer, "-t", reg.host+"/token/crane:v1")
	run(t, env, crane, "digest", "--insecure", reg.host+"/token/crane:v1")
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
