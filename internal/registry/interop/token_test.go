package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// In token mode the registry takes bearer tokens only: a raw request with
// good basic credentials gets 401 and a Bearer challenge, basic credentials
// work at the token endpoint, and clients that follow the challenge log in
// and push as before (skopeo login then copy; crane login then push).
func TestTokenModeTakesTokensOnly(t *testing.T) {
	skopeo := tool(t, "skopeo")
	crane := tool(t, "crane")
	reg := start(t, withTokenAuth)
	base := "http://" + reg.host
	for _, path := range []string{"/v2/", "/v2/token/app/tags/list"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer realm=") {
			t.Errorf("basic GET %s: %s, challenge %q; want 401 and a Bearer challenge", path, resp.Status, ch)
		}
	}
	req, _ := http.NewRequest("GET", base+"/auth/token?service=lading&scope=repository:token/app:pull", nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
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
