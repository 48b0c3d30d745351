package trust

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
)

// hostileRegistry answers the referrers API with what its fields say and
// counts the bytes it managed to send.
type hostileRegistry struct {
	referrers func(w http.ResponseWriter)
	manifest  func(w http.ResponseWriter)
	sent      atomic.Int64
}

func (h *hostileRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cw := &countingWriter{w: w, n: &h.sent}
	switch {
	case r.URL.Path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.Contains(r.URL.Path, "/referrers/") && h.referrers != nil:
		h.referrers(cw)
	case strings.Contains(r.URL.Path, "/manifests/sha256:") && h.manifest != nil:
		h.manifest(cw)
	default:
		http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
	}
}

type countingWriter struct {
	w http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Header() http.Header    { return c.w.Header() }
func (c *countingWriter) WriteHeader(status int) { c.w.WriteHeader(status) }
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// stream writes 50 MB of b, stopping when the client goes away.
func stream(w io.Writer, b byte) {
	io.Copy(w, io.LimitReader(repeat(b), 50<<20))
}

// TestRemoteBoundedReads serves 50 MB answers through a real HTTP
// registry: Remote reads a bounded prefix and refuses them.
func TestRemoteBoundedReads(t *testing.T) {
	ctx := context.Background()
	subj := subjectDescriptor()
	big := blobDescriptor(string(types.OCIManifestSchema1), []byte("big"))
	for _, tc := range []struct {
		name string
		reg  *hostileRegistry
		want Reason // "" when listing itself must fail
	}{
		{"50 MB referrers index", &hostileRegistry{referrers: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", string(types.OCIImageIndex))
			stream(w, ' ')
		}}, ""},
		{"50 MB signature manifest", &hostileRegistry{
			referrers: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", string(types.OCIImageIndex))
				json.NewEncoder(w).Encode(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{MediaType: big.MediaType, Digest: big.Digest, Size: 100, ArtifactType: NotationArtifactType}}})
			},
			manifest: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
				stream(w, ' ')
			},
		}, ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.reg)
			defer srv.Close()
			repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/app", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Verify(ctx, NewRemote(repo, nil, nil), Subject{Descriptor: subj, Name: repo.Name()}, &Policy{Keys: []*Key{trustedKey(t, newECKey(t))}})
			if tc.want == "" {
				if err == nil || !errors.Is(err, errdefs.ErrTooLarge) {
					t.Fatalf("err %v, want too large", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if err := res.Err(); !HasReason(err, tc.want) {
					t.Fatalf("%v, want %s", err, tc.want)
				}
			}
			srv.CloseClientConnections()
			if sent := tc.reg.sent.Load(); sent > 16<<20 {
				t.Errorf("the server sent %d MB before the client stopped reading", sent>>20)
			}
		})
	}
}
