package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
)

// maxAnswer is how much of a receiver's answer is read, for the log.
const maxAnswer = 4 << 10

type httpClient struct{ c *http.Client }

func newHTTPClient(p *outbound.Policy, timeout time.Duration, insecure bool) *httpClient {
	return &httpClient{c: p.Client(outbound.ClientOptions{Timeout: timeout, InsecureSkipVerify: insecure, NoRedirects: true})}
}

// redactURL is an address fit for a log: no query, no credentials.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable address)"
	}
	u.User, u.RawQuery, u.ForceQuery = nil, "", false
	s := u.String()
	if strings.Contains(raw, "?") {
		s += "?…"
	}
	return s
}

// deliver is one attempt of a WEBHOOK job.
func (s *Service) deliver(ctx context.Context, j *jobs.Job, d delivery) error {
	// The address was checked when the policy was saved; check it again,
	// the outbound policy may have changed since.
	if _, err := s.opt.Outbound.CheckURL(d.Address); err != nil {
		j.Log.Error("the target address is not allowed", "address", redactURL(d.Address), "error", err)
		return jobs.Permanent(err)
	}
	j.Log.Info("delivering", "event", d.EventType, "address", redactURL(d.Address), "format", d.Format, "bytes", len(d.Payload), "idempotency_key", d.Key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Address, strings.NewReader(d.Payload))
	if err != nil {
		return jobs.Permanent(fmt.Errorf("building the request: %w", err))
	}
	req.Header = header(d.ContentType, d.AuthHeader, d.Key, s.opt.UserAgent)
	client := s.clients[0]
	if d.SkipVerify {
		client = s.clients[1]
	}
	start := time.Now()
	resp, err := client.c.Do(req)
	if err != nil {
		var refused *outbound.RefusedError
		if errors.As(err, &refused) {
			j.Log.Error("refused by the outbound policy", "error", refused.Error())
			return jobs.Permanent(refused)
		}
		j.Log.Warn("the receiver could not be reached", "error", scrub(err, d))
		return errors.New(scrub(err, d))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	elapsed := time.Since(start).Round(time.Millisecond)
	text := printable(answer)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		j.Log.Info("delivered", "status", resp.StatusCode, "took", elapsed)
		return nil
	}
	err = fmt.Errorf("the receiver answered %s: %s", resp.Status, text)
	j.Log.Warn("the receiver refused the delivery", "status", resp.StatusCode, "took", elapsed, "answer", text)
	if permanentStatus(resp.StatusCode) {
		return jobs.Permanent(err)
	}
	return err
}

// permanentStatus is a status that retrying will not change: a client
// error other than a timeout, a conflict of the moment or a rate limit.
func permanentStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return code >= 400 && code < 500
}

// scrub removes what must not be logged from an error's text: Go's URL
// errors quote the whole address, query included.
func scrub(err error, d delivery) string {
	s := err.Error()
	if d.Address != "" {
		s = strings.ReplaceAll(s, d.Address, redactURL(d.Address))
	}
	if d.AuthHeader != "" {
		s = strings.ReplaceAll(s, d.AuthHeader, "xxxxx")
	}
	return s
}

// printable is a receiver's answer fit for a log line.
func printable(b []byte) string {
	b = bytes.TrimSpace(b)
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%d bytes of binary data)", len(b))
	}
	s := strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' {
			return ' '
		}
		return r
	}, string(b))
	if len(b) == maxAnswer {
		s += "… (cut)"
	}
	return s
}
