package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A server serves, logs each request as JSON, runs its periodic collector,
// and shuts down when its context ends.
func TestServe(t *testing.T) {
	var cfg Config
	cfg.Auth.Mode = "none"
	cfg.Defaults(t.TempDir())
	cfg.GC.Interval = 20 * time.Millisecond
	cfg.GC.Grace = ptr(time.Nanosecond)
	access, logs := &lockedBuffer{}, &lockedBuffer{}
	srv, err := Open(t.Context(), cfg, Options{AccessLog: access, Log: newTextLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()
	body := []byte("unreferenced")
	sum := sha256.Sum256(body)
	resp, err := http.Post(base+"/v2/r/blobs/uploads/?digest=sha256:"+hex.EncodeToString(sum[:]), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %s", resp.Status)
	}
	// The collector, running every 20ms with no grace, removes the blob
	// no manifest references.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(m), "lading_registry_gc_blobs_deleted_total 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the periodic collector did not run; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if !strings.Contains(access.String(), `"route":"upload-start"`) {
		t.Errorf("access log: %s", access.String())
	}
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// With metrics.address set, /metrics is served there and only there.
func TestMetricsAddress(t *testing.T) {
	var cfg Config
	cfg.Auth.Mode = "none"
	cfg.Metrics.Address = "127.0.0.1:0"
	cfg.Defaults(t.TempDir())
	srv, err := Open(t.Context(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	maddr, err := srv.ListenMetrics()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	base, _, done := serving(t, ctx, srv)
	defer func() { cancel(); <-done }()
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(base + "/v2/"); code != http.StatusOK {
		t.Fatalf("registry: %d", code)
	}
	code, body := get("http://" + maddr.String() + "/metrics")
	if code != http.StatusOK || !strings.Contains(body, `lading_registry_http_requests_total{code="200",method="GET",route="base"} 1`) {
		t.Errorf("metrics address: %d %.500s", code, body)
	}
	if code, body := get(base + "/metrics"); code != http.StatusNotFound || strings.Contains(body, "lading_registry") {
		t.Errorf("/metrics on the registry's port: %d %.200s", code, body)
	}
	if code, _ := get("http://" + maddr.String() + "/v2/"); code != http.StatusNotFound {
		t.Errorf("the registry API on the metrics address: %d", code)
	}
}
