package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/sandbox"
	"github.com/lading-dev/lading/internal/store"
)

// TestMain lets tests run this binary as lading itself.
func TestMain(m *testing.M) {
	sandbox.MaybeInit() // the container tests' sandboxes start this binary as their init
	if os.Getenv("LADING_TEST_MAIN") == "1" {
		os.Exit(Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	code := m.Run()
	removeBinary()
	os.Exit(code)
}

// throttle proxies to a registry, sending blob bodies slowly.
func throttle(t *testing.T, host string) string {
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/blobs/") || r.Method != http.MethodGet {
			proxy.ServeHTTP(w, r)
			return
		}
		resp, err := http.Get("http://" + host + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			if _, werr := w.Write(buf[:n]); werr != nil || r.Context().Err() != nil {
				return // the client is gone
			}
			w.(http.Flusher).Flush()
			if err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // about 3 MB/s
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestKillMidPull kills `lading pull` with SIGKILL while a layer is being
// written and checks that the store lost nothing acknowledged and shows
// nothing half-written: no reference to the image, every blob present
// verifies, a second pull completes, and prune removes the leftover.
func TestKillMidPull(t *testing.T) {
	reg := registrytest.Start(t, registrytest.None)
	img, err := random.Image(24<<20, 2) // two incompressible 24 MB layers
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(reg.Host + "/big/img:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	slow := throttle(t, reg.Host)
	root := t.TempDir()
	l := &lading{t: t, root: root}
	// Something acknowledged before the crash must survive it.
	l.ok("pull", "docker-archive:"+writeSmallArchive(t), "before/crash:1")

	exe, _ := os.Executable()
	cmd := exec.Command(exe, "--root", root, "--progress", "none", "pull", slow+"/big/img:1")
	cmd.Env = append(os.Environ(), "LADING_TEST_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ingest := filepath.Join(root, "ingest")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if partialBytes(ingest) > 2<<20 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the pull never wrote 2 MB")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.Resolve(ctx, "docker.io/before/crash:1"); err != nil {
		t.Errorf("an image pulled before the crash is gone: %v", err)
	}
	if _, err := st.Resolve(ctx, reg.Host+"/big/img:1"); err == nil {
		t.Error("the killed pull left a reference")
	}
	verifyAll(t, st)
	st.Close()
	if partialBytes(ingest) == 0 {
		t.Fatal("expected the killed pull's temp file in ingest/")
	}

	l.ok("pull", reg.Host+"/big/img:1")
	out := l.ok("prune")
	if !strings.Contains(out, "0 blobs") || !strings.Contains(out, "1 temp files") && !strings.Contains(out, "2 temp files") {
		t.Errorf("prune after the recovered pull: %q", out)
	}
	st, _ = store.Open(root)
	defer st.Close()
	verifyAll(t, st)
}

func partialBytes(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func verifyAll(t *testing.T, st *store.Store) {
	t.Helper()
	live, err := st.Reachable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(st.Root(), "blobs", "sha256"))
	for _, e := range ents {
		rc, _, err := st.OpenBlob(context.Background(), mustHash(t, e.Name()))
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err != nil {
			t.Errorf("blob %s: %v", e.Name(), err)
		}
	}
	for h := range live {
		if !st.Has(context.Background(), h, -1) {
			t.Errorf("a reference reaches missing blob %s", h)
		}
	}
}
