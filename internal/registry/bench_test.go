package registry_test

// Benchmarks of the registry under 1, 10 and 50 concurrent clients, each
// beside a baseline measured in the same run: a bare net/http server on
// the same loopback that moves the same bytes in the same requests, with no
// storage, no metadata and no verification. The ratio registry/baseline is
// the cost of being a registry. See the README's Registry section:
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/registry/
//
// push:         a 1 MiB blob the way Docker clients send it (POST, one
//               PATCH with the data, PUT ?digest=), fsync included.
// pull:         a GET of a 1 MiB blob.
// manifest-get: a GET of a manifest by tag; p50 and p99 latencies.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/registry"
)

const benchBlobSize = 1 << 20

var benchClients = []int{1, 10, 50}

// benchClient keeps enough idle connections for every simulated client.
func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, DisableCompression: true}}
}

// parallel runs b.N operations on clients goroutines and reports the
// latency percentiles.
func parallel(b *testing.B, clients int, op func(i int) error) {
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	var failed atomic.Bool
	b.ResetTimer()
	for w := range clients {
		wg.Go(func() {
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := op(int(i)); err != nil {
					failed.Store(true)
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	ms := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// benchBlob is 1 MiB of random bytes with i in its first 8 bytes, so each
// operation pushes a new digest.
func benchBlob(base []byte, i int) ([]byte, string) {
	b := bytes.Clone(base)
	binary.LittleEndian.PutUint64(b, uint64(i)+uint64(time.Now().UnixNano()))
	s := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(s[:])
}

func randomBlob(n int) []byte {
	r := rand.NewChaCha8([32]byte{1})
	b := make([]byte, n)
	r.Read(b)
	return b
}

func expect(resp *http.Response, err error, status int) error {
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status)
	}
	return nil
}

// pushDockerStyle pushes a blob as Docker clients do.
func pushDockerStyle(c *http.Client, base, repo string, blob []byte, dgst string) error {
	resp, err := c.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err := expect(resp, err, http.StatusAccepted); err != nil {
		return err
	}
	loc := resp.Header.Get("Location")
	req, _ := http.NewRequest("PATCH", base+loc, bytes.NewReader(blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.Do(req)
	if err := expect(resp, err, http.StatusAccepted); err != nil {
		return err
	}
	req, _ = http.NewRequest("PUT", base+resp.Header.Get("Location")+"?digest="+dgst, nil)
	resp, err = c.Do(req)
	return expect(resp, err, http.StatusCreated)
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	return expect(resp, err, http.StatusOK)
}

// baseline is a bare HTTP server answering the same requests without being
// a registry: uploads are hashed and dropped, downloads come from memory.
func baseline(b *testing.B, blob, manifest []byte) string {
	var mu sync.Mutex
	next := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST":
			mu.Lock()
			next++
			id := next
			mu.Unlock()
			w.Header().Set("Location", fmt.Sprintf("/v2/r/blobs/uploads/%d", id))
			w.WriteHeader(http.StatusAccepted)
		case r.Method == "PATCH":
			h := sha256.New()
			io.Copy(h, r.Body)
			w.Header().Set("Location", r.URL.Path)
			w.WriteHeader(http.StatusAccepted)
		case r.Method == "PUT":
			w.WriteHeader(http.StatusCreated)
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", registry.MediaTypeOCIManifest)
			w.Header().Set("Content-Length", fmt.Sprint(len(manifest)))
			w.Write(manifest)
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			w.Write(blob)
		}
	})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}

// benchManifest pushes an image and returns its manifest.
func benchManifest(b *testing.B, tr *testRegistry) []byte {
	body, _ := tr.image(b, "bench/app", randomBlob(1000))
	if r := tr.putManifest(b, "bench/app", "latest", body, registry.MediaTypeOCIManifest); r.status != http.StatusCreated {
		b.Fatalf("manifest: %d %s", r.status, r.body)
	}
	return body
}

func BenchmarkPush(b *testing.B) {
	data := randomBlob(benchBlobSize)
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("registry/clients=%d", n), func(b *testing.B) {
			tr := newRegistry(b)
			c := benchClient()
			b.SetBytes(benchBlobSize)
			parallel(b, n, func(i int) error {
				blob, d := benchBlob(data, i)
				return pushDockerStyle(c, tr.url, "bench/push", blob, d)
			})
		})
		b.Run(fmt.Sprintf("baseline/clients=%d", n), func(b *testing.B) {
			base := baseline(b, data, nil)
			c := benchClient()
			b.SetBytes(benchBlobSize)
			parallel(b, n, func(i int) error {
				blob, d := benchBlob(data, i)
				return pushDockerStyle(c, base, "bench/push", blob, d)
			})
		})
	}
}

func BenchmarkPull(b *testing.B) {
	data := randomBlob(benchBlobSize)
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("registry/clients=%d", n), func(b *testing.B) {
			tr := newRegistry(b)
			var urls []string
			for i := range 16 {
				blob, _ := benchBlob(data, i)
				urls = append(urls, tr.url+"/v2/bench/pull/blobs/"+tr.pushBlob(b, "bench/pull", blob))
			}
			c := benchClient()
			b.SetBytes(benchBlobSize)
			parallel(b, n, func(i int) error { return get(c, urls[i%len(urls)]) })
		})
		b.Run(fmt.Sprintf("baseline/clients=%d", n), func(b *testing.B) {
			base := baseline(b, data, nil)
			c := benchClient()
			b.SetBytes(benchBlobSize)
			parallel(b, n, func(i int) error { return get(c, base+"/v2/bench/pull/blobs/x") })
		})
	}
}

func BenchmarkManifestGet(b *testing.B) {
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("registry/clients=%d", n), func(b *testing.B) {
			tr := newRegistry(b)
			benchManifest(b, tr)
			c := benchClient()
			url := tr.url + "/v2/bench/app/manifests/latest"
			parallel(b, n, func(int) error { return get(c, url) })
		})
		b.Run(fmt.Sprintf("baseline/clients=%d", n), func(b *testing.B) {
			tr := newRegistry(b)
			base := baseline(b, nil, benchManifest(b, tr))
			c := benchClient()
			url := base + "/v2/bench/app/manifests/latest"
			parallel(b, n, func(int) error { return get(c, url) })
		})
	}
}
