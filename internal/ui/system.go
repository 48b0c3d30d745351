package ui

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
)

// The Administration pages of the system's services: groups, registries
// and replication, interrogation services (scanners, scan of all),
// garbage collection, the LDAP test. Each calls the service the API's
// endpoint of the same name calls (package api), with the same subject.

// Scanners is what the interrogation services page asks of registry-side
// scanning: the scanners' registrations and the scan of all artifacts.
type Scanners interface {
	scanapi.Scanners
	scanapi.ScanAll
}

// SetScanners plugs registry-side scanning's administration in, once it
// is built (after the UI). Call it before serving.
func (s *Server) SetScanners(sc Scanners) { s.scanners = sc }

// adminAvailable reports whether this server has the service of an
// Administration page.
func (s *Server) adminAvailable(page string) bool {
	switch page {
	case "jobs":
		return s.svc.Jobs != nil
	case "registries", "replication":
		return s.svc.Replication != nil
	case "gc":
		return s.svc.GC != nil
	case "interrogation":
		return s.scanners != nil
	}
	return true
}

// need answers 404 for a page whose service this server lacks.
func (s *Server) need(page string, h handlerFunc) handlerFunc {
	return func(c *call) error {
		if !s.adminAvailable(page) {
			return notFound("no " + page + " in this server")
		}
		return h(c)
	}
}

func (s *Server) adminRoutes() {
	s.handle("GET /admin/groups", s.adminGroups)
	s.handle("POST /admin/groups", s.adminCreateGroup)
	s.handle("POST /admin/groups/{gid}/delete", s.adminDeleteGroup)

	s.handle("GET /admin/registries", s.need("registries", s.adminRegistries))
	s.handle("POST /admin/registries", s.need("registries", s.adminCreateRegistry))
	s.handle("POST /admin/registries/ping", s.need("registries", s.adminPingRegistry))
	s.handle("POST /admin/registries/{id}", s.need("registries", s.adminChangeRegistry))

	s.handle("GET /admin/replication", s.need("replication", s.adminReplication))
	s.handle("POST /admin/replication", s.need("replication", s.adminCreatePolicy))
	s.handle("GET /admin/replication/policies/{id}", s.need("replication", s.adminEditPolicy))
	s.handle("POST /admin/replication/policies/{id}", s.need("replication", s.adminChangePolicy))
	s.handle("GET /admin/replication/executions/{id}", s.need("replication", s.adminExecution))
	s.handle("POST /admin/replication/executions/{id}/stop", s.need("replication", s.adminStopExecution))
	s.handle("GET /admin/replication/executions/{id}/tasks/{tid}/log", s.need("replication", s.adminTaskLog))

	s.handle("GET /admin/interrogation", s.need("interrogation", s.adminInterrogation))
	s.handle("POST /admin/scanners", s.need("interrogation", s.adminCreateScanner))
	s.handle("POST /admin/scanners/{uuid}", s.need("interrogation", s.adminChangeScanner))
	s.handle("POST /admin/scan-all", s.need("interrogation", s.adminScanAll))

	s.handle("GET /admin/gc", s.need("gc", s.adminGC))
	s.handle("POST /admin/gc", s.need("gc", s.adminGCAction))
	s.handle("GET /admin/gc/{id}/log", s.need("gc", s.adminGCLog))

	s.handle("POST /admin/configuration/ldap-ping", s.adminLDAPPing)
	s.handle("POST /profile/cli-secret", s.regenerateCLISecret)
}

// pathID reads a numeric path value.
func (c *call) pathID(name, what string) (int64, error) {
	id, err := strconv.ParseInt(c.r.PathValue(name), 10, 64)
	if err != nil || id < 1 {
		return 0, notFound("no " + what + " " + c.r.PathValue(name))
	}
	return id, nil
}

// text answers a log as plain text: never rendered as HTML, whatever it
// holds (nosniff is set on every response).
func (c *call) text(b []byte) error {
	h := c.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(http.StatusOK)
	if c.r.Method != http.MethodHead {
		c.w.Write(b)
	}
	return nil
}

// refused reports whether a test's error is the service refusing the
// user (answered as an error page) rather than what the test found about
// the remote end (shown as the test's result).
func refused(err error) bool { return errors.Is(err, errdefs.ErrDenied) }

// withData merges extra into data.
func withData(data, extra map[string]any) map[string]any {
	for k, v := range extra {
		data[k] = v
	}
	return data
}
