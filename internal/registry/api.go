package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/verify"
)

// call is one API request on its way through a handler.
type call struct {
	w    *recorder
	req  *http.Request
	rt   route
	who  Subject
	info *reqInfo
}

type handlerFunc func(r *Registry, c *call) error

// endpoint is a handler with the access it needs.
type endpoint struct {
	fn     handlerFunc
	action string // "pull", "push", "delete"; "" for the base route
	codes  codes
}

// endpoints maps a route and a method to its handler.
func endpoints(k routeKind, method string) (endpoint, []string) {
	blobCodes := codes{notFound: codeBlobUnknown, invalid: codeDigestInvalid}
	uploadCodes := codes{notFound: codeBlobUploadUnknown, invalid: codeBlobUploadInvalid}
	manifestCodes := codes{notFound: codeManifestUnknown, invalid: codeManifestInvalid}
	var table map[string]endpoint
	switch k {
	case routeBase:
		table = map[string]endpoint{"GET": {fn: (*Registry).base}, "HEAD": {fn: (*Registry).base}}
	case routeCatalog:
		table = map[string]endpoint{"GET": {fn: (*Registry).catalog, action: "catalog"}}
	case routeTags:
		table = map[string]endpoint{"GET": {fn: (*Registry).tags, action: "pull", codes: codes{invalid: codeUnsupported}}}
	case routeManifest:
		table = map[string]endpoint{
			"GET":    {fn: (*Registry).getManifest, action: "pull", codes: manifestCodes},
			"HEAD":   {fn: (*Registry).getManifest, action: "pull", codes: manifestCodes},
			"PUT":    {fn: (*Registry).putManifest, action: "push", codes: manifestCodes},
			"DELETE": {fn: (*Registry).deleteManifest, action: "delete", codes: manifestCodes},
		}
	case routeBlob:
		table = map[string]endpoint{
			"GET":    {fn: (*Registry).getBlob, action: "pull", codes: blobCodes},
			"HEAD":   {fn: (*Registry).getBlob, action: "pull", codes: blobCodes},
			"DELETE": {fn: (*Registry).deleteBlob, action: "delete", codes: blobCodes},
		}
	case routeUploadStart:
		table = map[string]endpoint{"POST": {fn: (*Registry).startUpload, action: "push", codes: uploadCodes}}
	case routeUpload:
		table = map[string]endpoint{
			"GET":    {fn: (*Registry).uploadStatus, action: "push", codes: uploadCodes},
			"PATCH":  {fn: (*Registry).patchUpload, action: "push", codes: uploadCodes},
			"PUT":    {fn: (*Registry).finishUpload, action: "push", codes: uploadCodes},
			"DELETE": {fn: (*Registry).cancelUpload, action: "push", codes: uploadCodes},
		}
	case routeReferrers:
		table = map[string]endpoint{"GET": {fn: (*Registry).referrers, action: "pull", codes: codes{invalid: codeDigestInvalid}}}
	}
	ep, ok := table[method]
	if !ok {
		var allow []string
		for m := range table {
			allow = append(allow, m)
		}
		return endpoint{}, allow
	}
	return ep, nil
}

func (r *Registry) serveAPI(w *recorder, req *http.Request, info *reqInfo) {
	fail := func(ae *apiError) {
		info.err = ae
		writeError(w, req, ae)
	}
	rt, err := parseRoute(req.URL.EscapedPath())
	if err != nil {
		if errors.Is(err, errNotAPI) {
			fail(&apiError{status: http.StatusNotFound, code: codeUnsupported, err: fmt.Errorf("%s: %w", req.URL.Path, err)})
			return
		}
		fail(&apiError{status: http.StatusBadRequest, code: codeNameInvalid, err: err})
		return
	}
	info.route, info.repo = rt.kind.String(), rt.repo
	ep, allow := endpoints(rt.kind, req.Method)
	if ep.fn == nil {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		fail(&apiError{status: http.StatusMethodNotAllowed, code: codeUnsupported, err: fmt.Errorf("method %s not allowed on %s", req.Method, rt.kind)})
		return
	}
	who, ae := r.authorize(w, req, rt, ep.action)
	if ae != nil {
		fail(ae)
		return
	}
	info.user = who.Name
	if ep.action == "push" {
		up, err := r.upstream(&call{req: req, rt: rt})
		if err == nil && up != nil {
			err = errProxyPush(rt.repo)
		}
		if err != nil {
			fail(toAPI(err, ep.codes))
			return
		}
	}
	if r.gate != nil {
		kind := "user"
		if who.Anonymous() {
			kind = "anonymous"
		}
		req = req.WithContext(actor.With(req.Context(), actor.Actor{Name: who.Name, Kind: kind, Address: req.RemoteAddr, RequestID: info.id}))
	}
	// Bodies are counted, and abandoned when they stall.
	if req.Body != nil && req.Body != http.NoBody {
		cb := &countingBody{r: &idleBody{r: req.Body, rc: http.NewResponseController(w), idle: r.limits.IdleTimeout}}
		w.read = cb
		req.Body = struct {
			io.Reader
			io.Closer
		}{cb, req.Body}
	}
	c := &call{w: w, req: req, rt: rt, who: who, info: info}
	if err := ep.fn(r, c); err != nil {
		ae := toAPI(err, ep.codes)
		if ae.status >= 500 && req.Context().Err() != nil {
			// The client went away (or the server is shutting down):
			// the failure is theirs to see, not a server error to log.
			ae = &apiError{status: statusClientGone, code: "CLIENT_GONE", err: err}
		}
		info.err = ae
		if !w.wroteHeader && ae.status != statusClientGone {
			writeError(w, req, ae)
		}
	}
}

// authorize checks the caller may do action on the route's repository. It
// answers 401 with a challenge or 403 itself.
func (r *Registry) authorize(w http.ResponseWriter, req *http.Request, rt route, action string) (Subject, *apiError) {
	if r.gate == nil {
		return Subject{}, nil
	}
	var need []Scope
	switch {
	case action == "catalog":
		need = []Scope{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	case action != "":
		acts := []string{action}
		if action == "push" {
			acts = []string{"pull", "push"} // what Docker clients ask for
		}
		need = []Scope{{Type: "repository", Name: rt.repo, Actions: acts}}
	}
	return r.check(w, req, need, action)
}

// base answers the API version check.
func (r *Registry) base(c *call) error {
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", "2")
	c.w.WriteHeader(http.StatusOK)
	if c.req.Method != http.MethodHead {
		io.WriteString(c.w, "{}")
	}
	return nil
}

// parseDigest parses a digest from a request; any failure is a 400
// DIGEST_INVALID, never a 5xx.
func parseDigest(s string) (v1.Hash, error) {
	h, err := verify.ParseDigest(s)
	if err != nil {
		return v1.Hash{}, withCode(http.StatusBadRequest, codeDigestInvalid, err)
	}
	return h, nil
}

// writeJSON answers with a JSON document.
func writeJSON(c *call, status int, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := c.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(status)
	if c.req.Method != http.MethodHead {
		c.w.Write(b)
	}
	return nil
}

// idleBody is a request body that gives up when no byte arrives for idle.
type idleBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.r.Read(p)
	if err == io.EOF {
		// The body is in: what follows (verifying, assembling a
		// large blob) may take longer than the idle timeout, and the
		// server's watch for a closed connection must not trip on
		// our deadline meanwhile.
		b.rc.SetReadDeadline(time.Time{})
	}
	if err != nil && err != io.EOF {
		return n, &bodyError{err: err, stalled: isTimeout(err)}
	}
	return n, err
}

// bodyError is a failure to read the client's request body: a stall, a
// dropped connection. It tells a client problem from a storage problem.
type bodyError struct {
	err     error
	stalled bool
}

func (e *bodyError) Error() string {
	if e.stalled {
		return "request body stalled: " + e.err.Error()
	}
	return "reading request body: " + e.err.Error()
}

func (e *bodyError) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// bodyFailure maps a failed body read to its answer: a stalled upload is a
// 408, a dropped or short one a 400; nil when err is not about the body.
func bodyFailure(err error) error {
	var be *bodyError
	if !errors.As(err, &be) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return withCode(http.StatusRequestEntityTooLarge, codeSizeInvalid, err)
		}
		return nil
	}
	if be.stalled {
		return withCode(http.StatusRequestTimeout, codeBlobUploadInvalid, be)
	}
	return withCode(http.StatusBadRequest, codeBlobUploadInvalid, be)
}

// copyOut streams src to the response, giving up when the client stops
// reading for the idle timeout. Pieces keep the zero-copy path (sendfile)
// of the underlying writer.
func (r *Registry) copyOut(c *call, src io.Reader, n int64) error {
	rc := http.NewResponseController(c.w)
	defer rc.SetWriteDeadline(time.Time{})
	const piece = 1 << 20
	for n > 0 {
		rc.SetWriteDeadline(time.Now().Add(r.limits.IdleTimeout))
		m, err := io.CopyN(c.w, src, min(n, piece))
		n -= m
		if err != nil {
			return err
		}
	}
	return nil
}

// ReadFrom lets copies into the response use the connection's ReadFrom.
func (rec *recorder) ReadFrom(src io.Reader) (int64, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := rec.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(rec.ResponseWriter, src)
	}
	rec.written += n
	return n, err
}
