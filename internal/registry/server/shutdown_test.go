package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// serving runs srv.Serve on a loopback port the way lading serve does:
// when Serve returns, the database is closed. It returns the base URL and
// a channel that receives Serve's error once the database is closed.
func serving(t *testing.T, ctx context.Context, srv *Server) (string, net.Listener, chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ctx, l)
		srv.Close()
		done <- err
	}()
	return "http://" + l.Addr().String(), l, done
}

var inFlight = regexp.MustCompile(`(?m)^lading_registry_http_requests_in_flight (\d+)$`)

// waitInFlight waits until the registry serves at least n requests
// besides the metrics request asking.
func waitInFlight(t *testing.T, base string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := inFlight.FindSubmatch(b); m != nil {
			if v, _ := strconv.Atoi(string(m[1])); v-1 >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %d requests in flight:\n%s", n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// slowPush starts a monolithic push whose body the test sends: the first
// half now, the rest when it writes to the returned pipe.
func slowPush(t *testing.T, base string, blob []byte) (*io.PipeWriter, chan *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", fmt.Sprintf("%s/v2/r/blobs/uploads/?digest=%s", base, digestOf(blob)), pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(blob))
	resp := make(chan *http.Response, 1)
	go func() {
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Logf("push: %v", err)
			resp <- nil
			return
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		resp <- r
	}()
	if _, err := pw.Write(blob[:len(blob)/2]); err != nil {
		t.Fatal(err)
	}
	return pw, resp
}

// A push in flight when the context ends completes, and the database is
// closed only after it: Serve waits for requests (up to the shutdown
// timeout) before it returns.
func TestShutdownWaitsForRequests(t *testing.T) {
	dir := t.TempDir()
	var cfg Config
	cfg.Auth.Mode = "none"
	cfg.Defaults(dir)
	srv, err := Open(t.Context(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, l, done := serving(t, ctx, srv)
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	pw, resp := slowPush(t, base, blob)
	waitInFlight(t, base, 1)

	cancel()
	// Shutting down: new connections are refused...
	for {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	// ...but Serve waits for the push.
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) and the database was closed with a push in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	pw.Write(blob[len(blob)/2:])
	pw.Close()
	if r := <-resp; r == nil || r.StatusCode != http.StatusCreated {
		t.Fatalf("push in flight at shutdown: %v", r)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	// What the push was told is true: the blob is there.
	srv, err = Open(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base, _, _ = serving(t, t.Context(), srv)
	r, err := http.Head(base + "/v2/r/blobs/" + digestOf(blob))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("the acknowledged blob after restart: %s", r.Status)
	}
}

// A request that does not finish within the shutdown timeout is cut off;
// Serve returns, and the push fails without leaving a blob.
func TestShutdownTimeout(t *testing.T) {
	dir := t.TempDir()
	var cfg Config
	cfg.Auth.Mode = "none"
	cfg.ShutdownTimeout = ptr(100 * time.Millisecond)
	cfg.Defaults(dir)
	srv, err := Open(t.Context(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	base, _, done := serving(t, ctx, srv)
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	pw, resp := slowPush(t, base, blob)
	waitInFlight(t, base, 1)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	// The client's transport waits for its body writer before it
	// reports the closed connection.
	pw.CloseWithError(errors.New("the client stops"))
	if r := <-resp; r != nil && r.StatusCode < 400 {
		t.Errorf("a push cut off by the shutdown succeeded: %s", r.Status)
	}
	srv, err = Open(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.Meta.Blob(context.Background(), "r", digestOf(blob)); err == nil {
		t.Error("a push cut off by the shutdown left a blob")
	}
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}
