package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/inspect"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are the parsed templates: each page file parsed over the layout
// and the shared partials, so that every page defines its own "content".
type pages struct {
	byName map[string]*template.Template
}

func parsePages(st *static) (*pages, error) {
	base, err := template.New("base").Funcs(funcs(st)).ParseFS(templateFS, "templates/_*.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pg := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, err
		}
		pg.byName[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	return pg, nil
}

// view is what every page's template receives.
type view struct {
	Title string
	// User is the logged-in user's name, "" for anonymous visitors.
	User  string
	CSRF  string
	Sys   systemPerms
	Nav   string
	Flash string
	// Banner is the administrators' banner_message.
	Banner  string
	Version string
	// Data is the page's own.
	Data any
}

// FragmentHeader names, in a request from the UI's script (assets/ui.js),
// the element of the page it will replace. When the page has a fragment
// of that name (see fragments) the answer is that fragment alone, else the
// whole page, from which the script picks the element.
const FragmentHeader = "X-Lading-Fragment"

// fragments are the templates that render one element of a page on
// their own, named after the element's id.
var fragments = map[string]bool{"analysis": true, "artifact-list": true, "project-list": true}

// render writes page with data, or only the fragment a script asked for
// (FragmentHeader).
func (c *call) render(status int, page, title string, data any) error {
	t, ok := c.s.pages.byName[page]
	if !ok {
		return fmt.Errorf("ui: no page %q", page)
	}
	v := view{Title: title, CSRF: c.csrf, Data: data, Version: c.s.opt.Version, Nav: page}
	if c.who.Authenticated() {
		v.User = c.who.Name
	}
	if m, ok := data.(map[string]any); ok {
		m["CSRF"] = c.csrf
	}
	name := "layout"
	if target := c.r.Header.Get(FragmentHeader); fragments[target] && t.Lookup(target) != nil {
		name = target
	} else {
		name = "layout"
		v.Sys = c.systemPerms()
		v.Flash = c.takeFlash()
		if st, err := c.s.svc.Settings.Get(c.ctx); err == nil {
			v.Banner = st.BannerMessage
		}
	}
	var buf bytes.Buffer
	var arg any = v
	if name != "layout" {
		arg = data
	}
	if err := t.ExecuteTemplate(&buf, name, arg); err != nil {
		return fmt.Errorf("ui: rendering %s: %w", page, err)
	}
	h := c.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Server-Timing", fmt.Sprintf("render;dur=%.2f", float64(time.Since(c.start).Microseconds())/1000))
	c.w.WriteHeader(status)
	if c.r.Method != http.MethodHead {
		c.w.Write(buf.Bytes())
	}
	return nil
}

func notFound(msg string) error { return errdefs.NotFound(errors.New(msg)) }

// status maps an error class to an HTTP status, as the API does.
func status(err error) int {
	switch {
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsInvalidArgument(err), errors.Is(err, errdefs.ErrCorrupt), errors.Is(err, errdefs.ErrUnsupported):
		return http.StatusBadRequest
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrDenied):
		return http.StatusForbidden
	case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrAlreadyExists):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		return http.StatusPreconditionFailed
	case errors.Is(err, errdefs.ErrThrottled):
		return http.StatusTooManyRequests
	case errors.Is(err, errdefs.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

// fail renders an error page. An anonymous visitor refused a page is sent
// to the login form instead.
func (s *Server) fail(c *call, err error) {
	st := status(err)
	if st == http.StatusUnauthorized && c.r.Method == http.MethodGet && !c.who.Authenticated() {
		c.redirect("/login?next=" + url.QueryEscape(c.r.URL.RequestURI()))
		return
	}
	msg := err.Error()
	if st >= 500 {
		s.log.Error("UI request failed", "request_id", c.id, "method", c.r.Method, "path", c.r.URL.Path, "error", err)
		msg = "Something went wrong on the server (request " + c.id + ")."
	}
	if rerr := c.render(st, "error", http.StatusText(st), map[string]any{"Status": st, "Message": msg}); rerr != nil {
		http.Error(c.w, msg, st)
	}
}

// funcs are the templates' helpers.
func funcs(st *static) template.FuncMap {
	m := template.FuncMap{
		"asset": st.url,
		"bytes": humanBytes,
		"when":  when,
		"short": shortDigest,
		"join":  strings.Join,
		"pathq": url.PathEscape,
		"query": url.QueryEscape,
		"add":   func(a, b int) int { return a + b },
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
		"lower":      strings.ToLower,
		"statusText": http.StatusText,
		"rolename":   roleName,
		"int":        func(r access.Role) int { return int(r) },
		"repopath": func(full string) string {
			_, rest, _ := strings.Cut(full, "/")
			return rest
		},
		"expires": func(unix int64) string {
			if unix < 0 {
				return "never"
			}
			return when(time.Unix(unix, 0))
		},
		"robotpolicies": func() any { return robotPolicies },
		"sortoptions":   func() any { return sortOptions },
		"list":          func(v ...string) []string { return v },
		"json": func(v any) string {
			b, _ := json.Marshal(v)
			return string(b)
		},
		"layer": func(ls []inspect.Layer, i int) *inspect.Layer {
			if i >= 0 && i < len(ls) {
				return &ls[i]
			}
			return nil
		},
		"sevbar": newSevBar,
		"sevs":   func() []string { return severities },
	}
	for k, f := range projectFuncs() {
		m[k] = f
	}
	return m
}

// sevBar is a stacked bar of finding counts, widths out of 100.
type sevBar struct {
	Total    int
	Label    string
	Segments []segment
}

type segment struct {
	Severity string
	Count    int
	X, W     int
}

func newSevBar(counts map[string]int) sevBar {
	var b sevBar
	for _, s := range severities {
		b.Total += counts[s]
	}
	if b.Total == 0 {
		return b
	}
	var parts []string
	x := 0
	for _, s := range severities {
		n := counts[s]
		if n == 0 {
			continue
		}
		w := max(n*100/b.Total, 2)
		if x+w > 100 {
			w = 100 - x
		}
		b.Segments = append(b.Segments, segment{Severity: s, Count: n, X: x, W: w})
		x += w
		parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(s)))
	}
	b.Label = "Vulnerabilities: " + strings.Join(parts, ", ")
	return b
}

// humanBytes writes a size in binary units.
func humanBytes(n int64) string {
	switch {
	case n < 0:
		return "unlimited"
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// when writes a time as UTC, "—" for none.
func when(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// shortDigest is "sha256:0123456789ab".
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return alg + ":" + hex[:12]
}
