package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/dockerarchive"
	"github.com/lading-dev/lading/internal/tarfs"
)

// The docker-daemon transport talks to the Docker Engine API: it reads an
// image with GET /images/{name}/get (a docker-archive stream) and writes one
// with POST /images/load. Nothing else of the engine is used.

const defaultDockerHost = "unix:///var/run/docker.sock"

// daemonClient is a minimal Engine API client.
type daemonClient struct {
	host string // for messages
	base string // URL prefix
	hc   *http.Client
}

func newDaemonClient(o *options) (*daemonClient, error) {
	host := o.daemonHost
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = defaultDockerHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("docker host %q: %w", host, err))
	}
	c := &daemonClient{host: host}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if _, err := os.Stat(sock); err != nil {
			return nil, errdefs.Unavailable(fmt.Errorf("no Docker daemon at %s (%v); start one or set DOCKER_HOST", host, err))
		}
		c.base = "http://docker"
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		}}
	case "tcp", "http":
		c.base = "http://" + u.Host
		c.hc = &http.Client{Transport: o.transport}
	case "https":
		c.base = "https://" + u.Host
		c.hc = &http.Client{Transport: o.transport}
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("docker host %q: want unix://, tcp:// or https://", host))
	}
	return c, nil
}

func (c *daemonClient) do(ctx context.Context, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, errdefs.Unavailable(fmt.Errorf("Docker daemon at %s: %w", c.host, err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var m struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &m) == nil && m.Message != "" {
			msg = m.Message
		}
		err := fmt.Errorf("Docker daemon at %s: %s %s: %s", c.host, method, path, msg)
		if resp.StatusCode == http.StatusNotFound {
			return nil, errdefs.NotFound(err)
		}
		return nil, err
	}
	return resp, nil
}

func openDaemon(ctx context.Context, ref Reference, o *options) (*Source, error) {
	c, err := newDaemonClient(o)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodGet, "/images/"+url.PathEscape(ref.Name)+"/get", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	a, err := tarfs.FromReader(resp.Body, "docker-daemon:"+ref.Name, tarfs.WithTempDir(o.tmpDir))
	if err != nil {
		return nil, err
	}
	da, err := dockerarchive.Open(a, "docker-daemon:"+ref.Name)
	if err != nil {
		a.Close()
		return nil, err
	}
	img, err := da.Image(0)
	if err != nil {
		a.Close()
		return nil, err
	}
	return &Source{Artifact: Artifact{Image: img}, Ref: ref, Names: []string{ref.Name}, closers: []io.Closer{a}}, nil
}

func writeDaemon(ctx context.Context, dst Reference, art Artifact, o *options) (v1.Descriptor, error) {
	c, err := newDaemonClient(o)
	if err != nil {
		return v1.Descriptor{}, err
	}
	img := art.Image
	if img == nil {
		if img, err = art.Select(o.platform); err != nil {
			return v1.Descriptor{}, err
		}
	}
	// The archive streams through a pipe into the request body. Whatever
	// ends the load (done, refused, cancelled), the writer is stopped and
	// waited for before returning: it must not outlive the call.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(dockerarchive.Write(ctx, pw,
			[]dockerarchive.Named{{Image: img, Tags: []string{FamiliarName(dst.Name)}}},
			dockerarchive.WithTempDir(o.tmpDir), dockerarchive.WithProgress(o.progress)))
	}()
	defer func() {
		cancel()
		pr.CloseWithError(errors.New("the Docker daemon stopped reading"))
		<-written
	}()
	resp, err := c.do(ctx, http.MethodPost, "/images/load?quiet=1", pr, "application/x-tar")
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return v1.Descriptor{}, fmt.Errorf("Docker daemon at %s: load: %w", c.host, err)
		}
		if msg.ErrorDetail != nil {
			return v1.Descriptor{}, fmt.Errorf("Docker daemon at %s: load: %s", c.host, msg.ErrorDetail.Message)
		}
	}
	return Artifact{Image: img}.Descriptor()
}
