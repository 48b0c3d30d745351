package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestKillServeMidDelivery kills `lading serve` with SIGKILL while it
// delivers webhooks, starts it again on the same root, and checks that
// every push's event reached the receiver, each under one idempotency key
// and one payload: deliveries in flight at the kill ran again once their
// lease expired (at least once), and the receiver, deduplicating by the
// key, saw each event's effect exactly once.
func TestKillServeMidDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts lading serve twice; skipped with -short")
	}
	const pushes = 16
	var mu sync.Mutex
	byKey := map[string][]string{} // idempotency key -> payloads received
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(200 * time.Millisecond) // deliveries stay in flight
		mu.Lock()
		k := r.Header.Get("Idempotency-Key")
		byKey[k] = append(byKey[k], string(body))
		mu.Unlock()
	}))
	defer recv.Close()
	received := func() (keys, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range byKey {
			total += len(p)
		}
		return len(byKey), total
	}

	root := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(root, "serve.yaml")
	os.WriteFile(cfg, []byte(`address: `+addr+`
auth: {admin_password: Harbor12345}
outbound: {allow: [127.0.0.0/8]}
jobs: {lease: 3s, poll: 100ms, workers: 4}
log: {access: false}
`), 0o600)
	serve := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "--root", root, "serve", "--config", cfg)
		cmd.Env = append(os.Environ(), "LADING_TEST_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for deadline := time.Now().Add(60 * time.Second); ; {
			if resp, err := http.Get("http://" + addr + "/api/v2.0/ping"); err == nil {
				resp.Body.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				t.Fatalf("lading serve did not start:\n%s", stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	api := func(method, path string, body any) []byte {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, "http://"+addr+"/api/v2.0"+path, bytes.NewReader(b))
		req.SetBasicAuth("admin", "Harbor12345")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
		}
		return out
	}

	first := serve()
	api("POST", "/projects/library/webhook/policies", map[string]any{"name": "hook", "enabled": true, "event_types": []string{"PUSH_ARTIFACT"},
		"targets": []map[string]any{{"type": "http", "address": recv.URL + "/hook"}}})
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: "Harbor12345"})
	for i := range pushes {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(fmt.Sprintf("%s/library/app:t%d", addr, i), name.Insecure)
		if err := remote.Write(ref, img, auth); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		if keys, _ := received(); keys >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery within 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	keysAtKill, _ := received()

	serve()
	for deadline := time.Now().Add(90 * time.Second); ; {
		if keys, _ := received(); keys == pushes {
			break
		}
		if time.Now().After(deadline) {
			keys, total := received()
			t.Fatalf("%d of %d events delivered (%d deliveries) 90s after the restart", keys, pushes, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every execution ends Success.
	var policies []struct{ ID int64 }
	json.Unmarshal(api("GET", "/projects/library/webhook/policies", nil), &policies)
	for deadline := time.Now().Add(60 * time.Second); ; {
		var execs []struct{ Status string }
		json.Unmarshal(api("GET", fmt.Sprintf("/projects/library/webhook/policies/%d/executions?page_size=100", policies[0].ID), nil), &execs)
		ok := len(execs) == pushes
		for _, e := range execs {
			ok = ok && e.Status == "Success"
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("executions after the restart: %+v", execs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	keys, total := received()
	mu.Lock()
	defer mu.Unlock()
	digests := map[string]bool{}
	for k, ps := range byKey {
		for _, p := range ps[1:] {
			if p != ps[0] {
				t.Errorf("key %s delivered with different payloads", k)
			}
		}
		var payload struct {
			EventData struct {
				Resources []struct{ Digest string } `json:"resources"`
			} `json:"event_data"`
		}
		json.Unmarshal([]byte(ps[0]), &payload)
		digests[payload.EventData.Resources[0].Digest] = true
	}
	if keys != pushes || len(digests) != pushes {
		t.Errorf("%d keys for %d digests, want %d each", keys, len(digests), pushes)
	}
	t.Logf("killed after %d events delivered; %d events, %d deliveries (%d delivered again after the restart)", keysAtKill, keys, total, total-keys)
}
