package adapter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// The auth types of a scanner registration, as Harbor names them.
const (
	AuthNone   = ""
	AuthBasic  = "Basic"
	AuthBearer = "Bearer"
	AuthAPIKey = "X-ScannerAdapter-API-Key"
)

// CheckAuth validates an auth type and its credential.
func CheckAuth(auth, credential string) error {
	switch auth {
	case AuthNone:
		return nil
	case AuthBasic:
		if !strings.Contains(credential, ":") {
			return errdefs.InvalidArgument(errors.New("a Basic access credential is username:password"))
		}
	case AuthBearer, AuthAPIKey:
		if credential == "" {
			return errdefs.InvalidArgument(fmt.Errorf("auth %s needs an access credential", auth))
		}
	default:
		return errdefs.InvalidArgument(fmt.Errorf("auth %q is not Basic, Bearer or X-ScannerAdapter-API-Key", auth))
	}
	return nil
}

// SetAuth sets a request's credentials for an auth type, as Harbor sends
// them to a registered scanner.
func SetAuth(h http.Header, auth, credential string) {
	switch auth {
	case AuthBasic:
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(credential)))
	case AuthBearer:
		h.Set("Authorization", "Bearer "+credential)
	case AuthAPIKey:
		h.Set(AuthAPIKey, credential)
	}
}

// MaxReport bounds a report read from a scanner.
const MaxReport = 64 << 20

// Client calls a scanner adapter.
type Client struct {
	// URL is the adapter's base URL (its /api/v1 is appended).
	URL string
	// Auth and Credential authenticate the calls (see SetAuth).
	Auth, Credential string
	// HTTP sends the requests (an outbound.Policy client).
	HTTP *http.Client
}

func (c *Client) endpoint(path string) string {
	return strings.TrimSuffix(c.URL, "/") + Prefix + path
}

func (c *Client) do(ctx context.Context, method, path, accept, ctype string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path), rd)
	if err != nil {
		return nil, errdefs.InvalidArgument(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	SetAuth(req.Header, c.Auth, c.Credential)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if errors.Is(err, errdefs.ErrDenied) {
			return nil, err
		}
		return nil, errdefs.Unavailable(fmt.Errorf("scanner %s: %w", c.URL, err))
	}
	return resp, nil
}

// failure reads an error response into an error of the class its status
// says.
func (c *Client) failure(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e ErrorResponse
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	err := fmt.Errorf("scanner %s: %s %s: %d %s", c.URL, resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, msg)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return errdefs.Unauthorized(err)
	case http.StatusForbidden:
		return errdefs.Denied(err)
	case http.StatusNotFound:
		return errdefs.NotFound(err)
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return errdefs.InvalidArgument(err)
	case http.StatusNotImplemented:
		return errdefs.Unsupported(err)
	}
	return errdefs.Unavailable(err)
}

// Metadata asks for the scanner's metadata.
func (c *Client) Metadata(ctx context.Context) (Metadata, error) {
	resp, err := c.do(ctx, http.MethodGet, "/metadata", MimeMetadata+", application/vnd.scanner.adapter.metadata+json; version=1.0", "", nil)
	if err != nil {
		return Metadata{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Metadata{}, c.failure(resp)
	}
	var m Metadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return Metadata{}, errdefs.Unavailable(fmt.Errorf("scanner %s: metadata: %v", c.URL, err))
	}
	if m.Scanner.Name == "" {
		return Metadata{}, errdefs.Unavailable(fmt.Errorf("scanner %s: metadata names no scanner", c.URL))
	}
	return m, nil
}

// Scan sends a scan request and returns its id.
func (c *Client) Scan(ctx context.Context, req ScanRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, http.MethodPost, "/scan", MimeScanResponse, MimeScanRequest, body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", c.failure(resp)
	}
	var sr ScanResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&sr); err != nil || sr.ID == "" {
		return "", errdefs.Unavailable(fmt.Errorf("scanner %s: scan response without an id", c.URL))
	}
	return sr.ID, nil
}

// Report asks once for the report of scan id in mime (for an SBOM report,
// in sbomType); a *NotReady says when to ask again.
func (c *Client) Report(ctx context.Context, id, mime, sbomType string) ([]byte, error) {
	path := "/scan/" + url.PathEscape(id) + "/report"
	if sbomType != "" {
		path += "?sbom_media_type=" + url.QueryEscape(sbomType)
	}
	resp, err := c.do(ctx, http.MethodGet, path, mime, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxReport+1))
		if err != nil {
			return nil, errdefs.Unavailable(fmt.Errorf("scanner %s: report: %w", c.URL, err))
		}
		if len(b) > MaxReport {
			return nil, errdefs.TooLarge(fmt.Errorf("scanner %s: report larger than %d bytes", c.URL, MaxReport))
		}
		return b, nil
	case http.StatusFound:
		secs, _ := strconv.Atoi(resp.Header.Get("Refresh-After"))
		return nil, &NotReady{RetryAfter: time.Duration(min(max(secs, 1), 60)) * time.Second}
	}
	return nil, c.failure(resp)
}

// WaitReport polls for the report until it is ready, ctx ends, or the
// scanner fails.
func (c *Client) WaitReport(ctx context.Context, id, mime, sbomType string) ([]byte, error) {
	for {
		b, err := c.Report(ctx, id, mime, sbomType)
		var nr *NotReady
		if !errors.As(err, &nr) {
			return b, err
		}
		t := time.NewTimer(min(nr.RetryAfter, 5*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
